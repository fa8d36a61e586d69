"""The aggregator beside a Quix Streams exactly-once peer on the same topic (a script, not a test).

One run of this script generates N events (the mix of benchmarks/aggregator_bench.py: dossier
lifecycles, documents, procedures, 2% of dossiers with a corrected `received`, 1% resent
duplicates), loads them once into a fresh 12-partition topic, then for each of `--runs` rounds
consumes the whole topic with

- the aggregator, `python -m services.aggregator` on a fresh schema and consumer group: done when
  its `consumer_positions` reach the topic's end offsets;
- the peer, benchmarks/peer_app.py (Quix Streams, `processing_guarantee="exactly-once"`) with its
  own consumer group and state folder: done when its committed offsets reach the end offsets of the
  events topic and of its repartition topic;

one after the other, never at once: on 2 cores two consumers running together would take each
other's CPU, and the rates would measure the scheduler. The order alternates between rounds (the
aggregator first in odd rounds) so neither always reads the topic first. For each it prints the
events/s from spawn to the whole topic consumed, CPU µs per event of its process (utime + stime of
all its threads, /proc/<pid>/stat), peak RSS, and the CPU of PostgreSQL and of the Kafka broker
during its run (both shared: other clients' work counts there too); then the medians of the rounds.

The subset both compute, compared after every round (exit 1 if any round differs):

- deduplication by identity (source, id): a resent event counts once;
- per dossier, the `received` fact (unit, local day of `received_at`, channel) and the `resolved`
  fact (local day of `resolved_at`), each the one of the event with the greatest (time, id,
  source), whatever the arrival order; a later `received` (a correction) moves the dossier's counts
  from the old unit, day or channel to the new;
- counts per (unit, local day, Asia/Ho_Chi_Minh): `received` and `received_online` on the received
  day, `resolved` on the resolved day under the dossier's unit, a dossier counting only once its
  `received` is known (our `daily_counts` columns of the same names).

What the peer does not do, and the aggregator does on the same events: the other 30 columns of
daily_counts (channels direct and postal, on time and late with due-date changes, withdrawn,
digitization, fees and online payments, ratings, documents and signatures, the v2 counters); the
point-in-time levels (in progress, overdue, published procedures) with their exact instants; the
Decision 766 cohorts, per-procedure days, years and periods; units resolved through the registry;
identity conflicts (same identity, other content) and undecodable or invalid events sent to the
dead-letter topic (the peer keeps the first and has no validation); the event models (the peer
reads plain JSON); and the positions stored with the effects in PostgreSQL, where the reporting API
reads them. The peer's state and counts stay in RocksDB, its changelog topics and a counts topic.
Its dedupe is per message key: the intake keys every event by its subject, so a resent event lands
on the same key.

The peer runs in its own environment, `.local/peer-venv`, made here from the `bench` dependency
group of pyproject.toml: Quix Streams pins pydantic and pydantic-settings below the versions the
services pin, so the two cannot share one install.

Usage: python benchmarks/peer_bench.py --events 1000000 --runs 3 [--keep]
Needs Kafka and PostgreSQL (deploy/kafka.sh start, deploy/postgres.sh start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from aggregator_bench import (  # noqa: E402
    DATABASE_URL,
    KAFKA,
    PARTITIONS,
    POLL_SECONDS,
    _load,
    _proc_cpu_seconds,
    _proc_status,
    cleanup,
    ensure_topics,
    generate,
    poll_until,
    produce,
    run_subprocess,
    topic_ends,
)

PEER_APP = REPO / "benchmarks" / "peer_app.py"
PEER_VENV = REPO / ".local" / "peer-venv"
COUNTERS = ("received", "received_online", "resolved")
# How long one consumer may take for the whole topic before the run is abandoned.
RUN_LIMIT_SECONDS = 3600.0

Counts = dict[tuple[str, str], tuple[int, ...]]


# --- the peer's environment -----------------------------------------------------------------------


def peer_requirements() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as pyproject:
        requirements: list[str] = tomllib.load(pyproject)["dependency-groups"]["bench"]
    return requirements


def peer_python(venv: Path) -> Path:
    """The peer environment's interpreter, created or brought to the pinned requirements."""
    python = venv / "bin" / "python"
    requirements = peer_requirements()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    if any(requirement.lower() not in installed for requirement in requirements):
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


# --- measuring a process --------------------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _broker_pid() -> int | None:
    """The Kafka broker's process (a JVM running kafka.Kafka) that listens on the benchmark's port."""
    inodes = _listening_inodes(int(KAFKA.rsplit(":", 1)[1]))
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if b"kafka.Kafka\0" not in cmdline.read():
                    continue
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                return int(entry)
        except OSError:
            continue
    return None


def _cpu_or_zero(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return _proc_cpu_seconds(pid)
    except OSError:
        return 0.0


@dataclass
class Run:
    name: str
    seconds: float  # from spawn to the whole topic consumed
    first_commit: float  # from spawn to the first progress committed (start-up, group join, first batch)
    input_done: float  # from spawn to the events topic's end committed (the peer's second step ends later)
    cpu_seconds: float
    peak_rss_mb: float
    broker_cpu_seconds: float
    postgres_cpu_seconds: float | None = None

    def line(self, total: int) -> str:
        postgres = (
            f", PostgreSQL {self.postgres_cpu_seconds / total * 1e6:.0f} µs/event"
            if self.postgres_cpu_seconds is not None
            else ""
        )
        return (
            f"{self.name:10} {total / self.seconds:9,.0f} events/s ({self.seconds:6.1f} s from spawn, "
            f"first commit at {self.first_commit:4.1f} s, events topic's end at {self.input_done:5.1f} s), "
            f"CPU {self.cpu_seconds / total * 1e6:5.1f} µs/event, peak RSS {self.peak_rss_mb:6.0f} MiB; "
            f"Kafka broker {self.broker_cpu_seconds / total * 1e6:.0f} µs/event{postgres}"
        )


# --- the aggregator -------------------------------------------------------------------------------


async def run_aggregator(schema: str, topic: str, dlq: str, group: str, total: int) -> Run:
    broker = _broker_pid()
    broker_before = _cpu_or_zero(broker)
    run = await run_subprocess(schema, topic, dlq, total, batch=None, group=group)
    return Run(
        "aggregator",
        run.seconds_from_spawn,
        run.seconds_from_spawn - run.seconds_applying,
        run.seconds_from_spawn,
        run.cpu_seconds,
        run.peak_rss_mb,
        _cpu_or_zero(broker) - broker_before,
        run.postgres_cpu_seconds,
    )


async def our_counts(schema: str) -> Counts:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(
            f'SELECT unit, day::text AS day, {", ".join(COUNTERS)} FROM "{schema}".daily_counts '
            + " WHERE "
            + " OR ".join(f"{c} <> 0" for c in COUNTERS)
        )
    finally:
        await conn.close()
    return {(r["unit"], r["day"]): tuple(r[c] for c in COUNTERS) for r in rows}


# --- the peer -------------------------------------------------------------------------------------


async def _end_offsets(partitions: list[TopicPartition], isolation_level: str) -> dict[TopicPartition, int]:
    """High watermarks (read_uncommitted) or last stable offsets (read_committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def wait_peer_done(
    admin: AIOKafkaAdminClient, group: str, topic: str, ends: dict[int, int], process: asyncio.subprocess.Process
) -> tuple[float, float]:
    """Until the group's committed offsets reach the end of the events topic, then of its repartition
    topic. The latter is final once the former is committed: the peer writes its repartition records
    in the transaction that commits the input offsets. Every transaction leaves a commit marker as the
    last record of each partition it wrote, which the peer's consumer never commits past, so the
    repartition topic is consumed when the group's offset is one short of the high watermark (and
    no transaction is open there: the last stable offset is the high watermark)."""
    total = sum(ends.values())
    started = time.perf_counter()
    first_commit: list[float] = []
    input_done: list[float] = []

    async def done() -> bool:
        if process.returncode is not None:
            raise RuntimeError(f"the peer stopped with code {process.returncode}")
        committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
        consumed = sum(offset for tp, offset in committed.items() if tp.topic == topic)
        if consumed and not first_commit:
            first_commit.append(time.perf_counter() - started)
        if consumed < total:
            return False
        if not input_done:
            input_done.append(time.perf_counter() - started)
        repartition = sorted({tp.topic for tp in committed if tp.topic.startswith("repartition__")})
        if not repartition:
            return False
        partitions = [TopicPartition(name, p) for name in repartition for p in range(PARTITIONS)]
        marks = await _end_offsets(partitions, "read_uncommitted")
        stable = await _end_offsets(partitions, "read_committed")
        return all(stable[tp] == mark and committed.get(tp, 0) >= mark - 1 for tp, mark in marks.items() if mark)

    await poll_until(done, within=RUN_LIMIT_SECONDS, interval=POLL_SECONDS, what="the peer to consume every event")
    return first_commit[0], input_done[0]


async def run_peer(python: Path, topic: str, counts_topic: str, group: str, ends: dict[int, int]) -> Run:
    state_dir = tempfile.mkdtemp(prefix=f"peer-bench-{group}-")
    log_path = Path(tempfile.gettempdir()) / f"peer-bench-{group}.log"
    broker = _broker_pid()
    broker_before = _cpu_or_zero(broker)
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        with log_path.open("wb") as log:
            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": KAFKA}
            env.pop("PYTHONPATH", None)
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                str(python),
                str(PEER_APP),
                "run",
                "--topic",
                topic,
                "--counts-topic",
                counts_topic,
                "--group",
                group,
                "--state-dir",
                state_dir,
                env=env,
                stdout=log,
                stderr=log,
            )
            started_polling = time.perf_counter()
            try:
                first_commit, input_done = await wait_peer_done(admin, group, topic, ends, process)
                seconds = time.perf_counter() - started
                first_commit += started_polling - started
                input_done += started_polling - started
                cpu = _proc_cpu_seconds(process.pid)
                peak = int(_proc_status(process.pid)["VmHWM"].split()[0]) / 1024
                broker_cpu = _cpu_or_zero(broker) - broker_before
            finally:
                if process.returncode is None:
                    process.terminate()  # SIGTERM: Quix Streams closes its checkpoint and stops
                try:
                    await asyncio.wait_for(process.wait(), timeout=60)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        await admin.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    print(f"    peer log: {log_path}")
    return Run("peer", seconds, first_commit, input_done, cpu, peak, broker_cpu)


async def peer_counts(counts_topic: str) -> Counts:
    """The latest committed message per (unit, day) of the peer's counts topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(counts_topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # the last stable offsets: all is committed
        counts: Counts = {}

        async def read_to_end() -> bool:
            for records in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                for record in records:
                    value = json.loads(record.value or b"null")
                    counts[(value["unit"], value["day"])] = tuple(value[c] for c in COUNTERS)
            positions = [await consumer.position(tp) for tp in partitions]
            return all(position >= ends[tp] for position, tp in zip(positions, partitions, strict=True))

        await poll_until(read_to_end, within=300, interval=0, what="the peer's counts topic")
    finally:
        await consumer.stop()
    return {key: value for key, value in counts.items() if any(value)}


async def forget_groups(python: Path, admin_topics: list[str], groups: list[str]) -> None:
    """Delete the consumer groups (aiokafka's admin cannot); the peer's internal topics are named
    after its group, and join `admin_topics`."""
    forget = await asyncio.create_subprocess_exec(
        str(python), str(PEER_APP), "forget", "--group", *groups, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, errors = await forget.communicate()
    if forget.returncode:
        print(f"could not delete the consumer groups {', '.join(groups)}: {errors.decode()[-500:]}")
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        admin_topics.extend(name for name in await admin.list_topics() for g in groups if f"__{g}--" in name)
    finally:
        await admin.close()


# --- main -----------------------------------------------------------------------------------------


def compare(ours: Counts, theirs: Counts) -> list[str]:
    differences = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, peer = ours.get(key, (0, 0, 0)), theirs.get(key, (0, 0, 0))
        if mine != peer:
            differences.append(f"{key[0]} {key[1]}: aggregator {mine}, peer {peer} ({', '.join(COUNTERS)})")
    return differences


def summary(name: str, runs: list[Run], total: int) -> str:
    rates = [total / run.seconds for run in runs]
    cpu = [run.cpu_seconds / total * 1e6 for run in runs]
    rss = [run.peak_rss_mb for run in runs]
    return (
        f"{name:10} median {statistics.median(rates):9,.0f} events/s "
        f"(runs {', '.join(f'{r:,.0f}' for r in rates)}), CPU {statistics.median(cpu):.1f} µs/event "
        f"(runs {', '.join(f'{c:.1f}' for c in cpu)}), peak RSS {statistics.median(rss):.0f} MiB"
    )


async def bench(args: argparse.Namespace) -> int:
    python = peer_python(args.peer_venv)
    tag = uuid.uuid4().hex[:10]
    topic, dlq = f"peer_bench_events_{tag}", f"peer_bench_dlq_{tag}"
    print(f"topic {topic}, {args.events:,} events, {PARTITIONS} partitions, load average {_load()}")
    started = time.perf_counter()
    records = generate(args.events, seed=args.seed)
    print(f"generated {len(records):,} records in {time.perf_counter() - started:.1f} s")
    schemas: list[str] = []
    topics = [topic, dlq]
    groups: list[str] = []
    runs: dict[str, list[Run]] = {"aggregator": [], "peer": []}
    mismatched = 0
    await ensure_topics(KAFKA, {topic: PARTITIONS, dlq: 1})
    try:
        seconds = await produce(topic, records)
        print(f"produced in {seconds:.1f} s: {len(records) / seconds:,.0f} records/s")
        del records
        ends = await topic_ends(topic)
        total = sum(ends.values())
        for round_ in range(1, args.runs + 1):
            schema = f"peer_bench_{tag}_{round_}"
            group = f"peer-bench-{tag}-{round_}"
            aggregator_group = f"peer-bench-{tag}-{round_}-aggregator"
            counts_topic = f"peer_bench_counts_{tag}_{round_}"
            schemas.append(schema)
            groups.extend([group, aggregator_group])
            topics.append(counts_topic)
            await ensure_topics(KAFKA, {counts_topic: PARTITIONS})
            print(f"round {round_} of {args.runs}: load average {_load()}")
            order = ["aggregator", "peer"] if round_ % 2 else ["peer", "aggregator"]
            for name in order:
                if name == "aggregator":
                    run = await run_aggregator(schema, topic, dlq, aggregator_group, total)
                else:
                    run = await run_peer(python, topic, counts_topic, group, ends)
                runs[name].append(run)
                print(f"  {run.line(total)}")
            differences = compare(await our_counts(schema), await peer_counts(counts_topic))
            if differences:
                mismatched += 1
                print(f"  counts DIFFER on {len(differences)} (unit, day):")
                for line in differences[:10]:
                    print(f"    {line}")
            else:
                ours = await our_counts(schema)
                sums = [sum(value[i] for value in ours.values()) for i in range(len(COUNTERS))]
                print(
                    f"  counts equal on {len(ours):,} (unit, day): "
                    + ", ".join(f"{c} {s:,}" for c, s in zip(COUNTERS, sums, strict=True))
                )
        print(f"medians of {args.runs} round(s), {total:,} events:")
        for name, measured in runs.items():
            print(f"  {summary(name, measured, total)}")
        agg, peer = (statistics.median(total / r.seconds for r in runs[n]) for n in ("aggregator", "peer"))
        print(
            f"  aggregator / peer: {agg / peer:.2f}x the rate; counts "
            + ("matched in every round" if not mismatched else f"DIFFERED in {mismatched} round(s)")
        )
    finally:
        await forget_groups(python, topics, groups)
        if args.keep:
            print(f"kept topics {', '.join(topics)} and schemas {', '.join(schemas)}")
        else:
            await cleanup(schemas, sorted(set(topics)))
    return 1 if mismatched else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help="the peer's environment (made if missing)")
    parser.add_argument("--keep", action="store_true", help="keep the topics and schemas")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also in a log file
    args = parser.parse_args()

    async def cancellable() -> int:
        # SIGTERM cancels the run, so the topics, schemas and groups are still removed.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(args)

    code = 130
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        code = uvloop.run(cancellable())
    sys.exit(code)


if __name__ == "__main__":
    main()
