"""Throughput of the aggregator against the raw Kafka consumption rate (a script, not a test).

1. Generates N events of a realistic mix (dossier lifecycles, documents, procedures, a few
   corrections and resent duplicates), time-ordered, and loads them into a fresh 12-partition topic
   with an idempotent, batching producer.
2. (a) Raw rate: a plain consumer reads the topic to its end, no processing: the ceiling.
   (a') The same with each record decoded by the event models.
3. (b) The aggregator as a subprocess (`python -m services.aggregator`) on a fresh schema, from the
   start of the topic until its stored positions reach the end offsets: events/s applied, the
   ratio to the raw rate, peak RSS (VmHWM) and CPU time of the process.
4. Optionally (--phases) the same in-process with timers around decode / plan / database, and
   (--profile FILE) under cProfile.
5. Table sizes of the aggregator's schema (indexes and TOAST included), in bytes per event.

Usage: python benchmarks/aggregator_bench.py --events 200000 [--phases] [--profile out.prof] [--keep]
       [--checkpoints 1000000,4000000] [--runs 3] [--against /path/to/other/tree] [--no-raw]
With --runs N the aggregator applies the one topic N times, each into a fresh schema (dropped after
its sizes are read); --against runs another source tree in each round too, the two in alternating
order; then the medians of each tree.
Needs Kafka and PostgreSQL (deploy/kafka.sh start, deploy/postgres.sh start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import io
import os
import pstats
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from services.aggregator import lanes as lanes_module  # noqa: E402
from services.aggregator import store as store_module  # noqa: E402
from services.aggregator.config import AggregatorSettings  # noqa: E402
from services.aggregator.consumer import EventConsumer  # noqa: E402
from services.aggregator.migrate import apply_migrations  # noqa: E402
from services.aggregator.store import AggregatorStore, open_pool  # noqa: E402
from services.infra.kafka_admin import ensure_topics  # noqa: E402
from services.infra.polling import poll_until  # noqa: E402
from shared.events import decode_event  # noqa: E402

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://tthc:tthc@127.0.0.1:5433/tthc")
PARTITIONS = 12
VN = timezone(timedelta(hours=7))
START = datetime(2023, 1, 1, tzinfo=VN).timestamp()
YEAR = 365 * 86400
SOURCE = "urn:vn:bench:motcua"
UNITS = [f"unit-{n:02d}" for n in range(40)]
# How often the benchmark polls the aggregator's positions: the resolution of its timings.
POLL_SECONDS = 0.05


# --- generating events ----------------------------------------------------------------------------


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, VN).isoformat()


def _envelope(ident: str, epoch: float, subject: str, type_: str, data: str) -> bytes:
    # The canonical form `shared.events.encode_event` publishes (same field order).
    return (
        f'{{"specversion":"1.0","id":"{ident}","source":"{SOURCE}","time":"{_ts(epoch)}","subject":"{subject}",'
        f'"datacontenttype":null,"type":"{type_}","data":{{{data}}}}}'
    ).encode()


def generate(count: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """About `count` (key, value) records, time-ordered, dossier events first in number."""
    rng = random.Random(seed)
    timed: list[tuple[float, bytes, bytes]] = []
    n = 0

    def add(epoch: float, subject: str, type_: str, data: str) -> None:
        nonlocal n
        n += 1
        timed.append((epoch, subject.encode(), _envelope(f"ev-{n}", epoch, subject, type_, data)))

    dossier = document = 0
    while len(timed) < count:
        roll = rng.random()
        t0 = START + rng.random() * YEAR
        unit = rng.choice(UNITS)
        if roll < 0.88:  # a dossier's life: about 4.6 events
            dossier += 1
            did = f"hs-{dossier}"
            p = "dossier"
            due = t0 + rng.randrange(3, 20) * 86400
            fee = rng.random() < 0.4
            received = (
                f'"dossier_id":"{did}","unit":"{unit}","procedure_code":"1.00{rng.randrange(300)}",'
                f'"channel":"{rng.choice(["online", "online", "direct", "postal"])}","received_at":"{_ts(t0)}",'
                f'"due_at":"{_ts(due)}","fee_required":{"true" if fee else "false"},"digitization_required":true'
            )
            add(t0, did, f"vn.gov.tthc.{p}.received", received)
            if rng.random() < 0.02:  # a correction of the received facts
                add(t0 + 3600, did, f"vn.gov.tthc.{p}.received", received.replace('"online"', '"direct"'))
            if rng.random() < 0.8:
                add(
                    t0 + 600,
                    did,
                    f"vn.gov.tthc.{p}.components_digitized",
                    f'"dossier_id":"{did}","digitized_at":"{_ts(t0 + 600)}"',
                )
            if fee and rng.random() < 0.85:
                method = "online" if rng.random() < 0.5 else "offline"
                add(t0 + 900, did, f"vn.gov.tthc.{p}.paid",
                    f'"dossier_id":"{did}","paid_at":"{_ts(t0 + 900)}","method":"{method}",'
                    '"amount_vnd":50000')  # fmt: skip
            if rng.random() < 0.05:
                due += 5 * 86400
                add(t0 + 86400, did, f"vn.gov.tthc.{p}.due_changed", f'"dossier_id":"{did}","due_at":"{_ts(due)}"')
            if rng.random() < 0.85:
                done = t0 + rng.random() * 25 * 86400
                add(done, did, f"vn.gov.tthc.{p}.resolved",
                    f'"dossier_id":"{did}","resolved_at":"{_ts(done)}","outcome":"approved",'
                    f'"result_digitization_required":true')  # fmt: skip
                if rng.random() < 0.6:
                    add(done + 300, did, f"vn.gov.tthc.{p}.result_digitized",
                        f'"dossier_id":"{did}","digitized_at":"{_ts(done + 300)}"')  # fmt: skip
                if rng.random() < 0.25:
                    rating = rng.choice(["very_satisfied", "satisfied", "dissatisfied"])
                    add(done + 7200, did, f"vn.gov.tthc.{p}.rated",
                        f'"dossier_id":"{did}","rated_at":"{_ts(done + 7200)}","rating":"{rating}"')  # fmt: skip
            elif rng.random() < 0.2:
                add(t0 + 86400, did, f"vn.gov.tthc.{p}.withdrawn",
                    f'"dossier_id":"{did}","withdrawn_at":"{_ts(t0 + 86400)}"')  # fmt: skip
        elif roll < 0.995:  # a document: about 2.4 events
            document += 1
            doc = f"vb-{document}"
            add(t0, doc, "vn.gov.qlvb.document.registered",
                f'"document_id":"{doc}","unit":"{unit}","direction":"{rng.choice(["incoming", "outgoing"])}",'
                f'"registered_at":"{_ts(t0)}","electronic":true,'
                f'"confidential":{"true" if rng.random() < 0.03 else "false"}')  # fmt: skip
            for signer, share in (("organization", 0.8), ("leader", 0.6)):
                if rng.random() < share:
                    add(t0 + 1800, doc, "vn.gov.qlvb.document.signed",
                        f'"document_id":"{doc}","signed_at":"{_ts(t0 + 1800)}","signer":"{signer}"')  # fmt: skip
        else:  # a procedure catalogue change
            code = f"2.00{rng.randrange(500)}"
            if rng.random() < 0.8:
                level = rng.choice(["info", "partial_online", "full_online"])
                add(t0, code, "vn.gov.tthc.procedure.published",
                    f'"procedure_code":"{code}","unit":"{unit}","service_level":"{level}",'
                    f'"published_at":"{_ts(t0)}"')  # fmt: skip
            else:
                add(t0, code, "vn.gov.tthc.procedure.unpublished",
                    f'"procedure_code":"{code}","unit":"{unit}","unpublished_at":"{_ts(t0)}"')  # fmt: skip
    timed.sort(key=lambda item: item[0])
    del timed[count - count // 100 :]
    for index in rng.sample(range(len(timed)), count // 100):  # 1% resent, minutes to days later
        epoch, key, value = timed[index]
        timed.append((epoch + rng.expovariate(1 / 86400), key, value))
    timed.sort(key=lambda item: item[0])
    return [(key, value) for _t, key, value in timed]


# --- Kafka ----------------------------------------------------------------------------------------


async def produce(topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        enable_idempotence=True,
        linger_ms=20,  # large batches: the load is a bulk import
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def topic_ends(topic: str) -> dict[int, int]:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: end for tp, end in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def raw_consume(topic: str, ends: dict[int, int], decode: bool) -> tuple[float, int, int]:
    """Seconds to read the topic to its end with a plain consumer (no group); records and bytes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA, enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp.partition] > 0}
        count = size = 0
        started = time.perf_counter()
        while remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                count += len(records)
                for record in records:
                    size += len(record.value or b"")
                    if decode:
                        decode_event(record.value or b"")
                if records and records[-1].offset + 1 >= ends[tp.partition]:
                    remaining.discard(tp)
        return time.perf_counter() - started, count, size
    finally:
        await consumer.stop()


# --- the aggregator -------------------------------------------------------------------------------


async def applied_offsets(conn: asyncpg.Connection, schema: str, topic: str) -> int | None:
    try:
        value = await conn.fetchval(
            f'SELECT coalesce(sum(next_offset), 0) FROM "{schema}".consumer_positions WHERE topic = $1', topic
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    return int(value)


@dataclass(frozen=True)
class Checkpoint:
    """The aggregator's stored position passed `applied` records at `at` (perf_counter); the sizes
    of the schema's tables then (indexes and TOAST included)."""

    applied: int
    at: float
    sizes: dict[str, int]


@dataclass
class Progress:
    spawned_at: float
    first_commit_at: float | None = None
    done_at: float | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)


async def relation_sizes(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT c.relname, pg_total_relation_size(c.oid) AS size FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
        schema,
    )
    return {r["relname"]: r["size"] for r in rows}


async def wait_applied(
    schema: str,
    topic: str,
    total: int,
    progress: Progress,
    alive: Callable[[], bool],
    limit_seconds: float,
    checkpoints: tuple[int, ...] = (),
) -> None:
    """Until the stored positions reach `total`; on the way, a Checkpoint as they pass each of
    `checkpoints` (the sizes are read without pausing the aggregator, a moment after)."""
    conn = await asyncpg.connect(DATABASE_URL)
    pending = sorted(c for c in checkpoints if c < total)

    async def done() -> bool:
        if not alive():
            raise RuntimeError("the aggregator stopped")
        applied = await applied_offsets(conn, schema, topic)
        now = time.perf_counter()
        if applied and progress.first_commit_at is None:
            progress.first_commit_at = now
        while pending and applied is not None and applied >= pending[0]:
            pending.pop(0)
            progress.checkpoints.append(Checkpoint(applied, now, await relation_sizes(conn, schema)))
        if applied is not None and applied >= total:
            progress.done_at = now
            return True
        return False

    try:
        await poll_until(done, within=limit_seconds, interval=POLL_SECONDS, what="the aggregator to apply every event")
    finally:
        await conn.close()


def _proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as status:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in status if ":" in line)}


def _proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every rate here."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _open_log(path: Path) -> BinaryIO:
    return path.open("wb")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every running postgres process, by pid (the database's share of the work)."""
    result: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            result[int(entry)] = _proc_cpu_seconds(int(entry))
        except OSError:
            continue
    return result


def _cpu_since(before: dict[int, float]) -> float:
    """CPU used since `before` by postgres processes still running (new backends count whole)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _postgres_cpu().items())


@dataclass
class AggregatorRun:
    seconds_from_spawn: float
    seconds_applying: float
    peak_rss_mb: float
    cpu_seconds: float
    postgres_cpu_seconds: float
    checkpoints: list[Checkpoint] = field(default_factory=list)
    first_commit_at: float = 0.0


async def run_subprocess(
    schema: str,
    topic: str,
    dlq: str,
    total: int,
    batch: int | None,
    code: Path = REPO,
    instances: int = 1,
    group: str | None = None,
    checkpoints: tuple[int, ...] = (),
) -> AggregatorRun:
    """`instances` aggregator processes in one consumer group (`group`, else a new name); RSS is the
    largest, CPU the sum."""
    group = group or f"bench-{uuid.uuid4().hex[:8]}"
    log_path = Path(tempfile.gettempdir()) / f"aggregator-bench-{schema}.log"
    postgres_before = _postgres_cpu()
    log_file = _open_log(log_path)
    processes: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(instances):
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
                "DATABASE_URL": DATABASE_URL,
                "EVENTS_TOPIC": topic,
                "DEAD_LETTER_TOPIC": dlq,
                "CONSUMER_GROUP": group,
                "DATABASE_SCHEMA": schema,
                "AGGREGATOR_PORT": str(_free_port()),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(code),
            }
            if batch:
                env["MAX_BATCH_RECORDS"] = str(batch)
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "services.aggregator", env=env, cwd=code, stdout=log_file, stderr=log_file
                )
            )
        progress = Progress(spawned_at=time.perf_counter())
        try:
            await wait_applied(
                schema,
                topic,
                total,
                progress,
                lambda: all(p.returncode is None for p in processes),
                limit_seconds=3600,
                checkpoints=checkpoints,
            )
            peak = max(int(_proc_status(p.pid)["VmHWM"].split()[0]) / 1024 for p in processes)
            cpu = sum(_proc_cpu_seconds(p.pid) for p in processes)
            postgres_cpu = _cpu_since(postgres_before)  # before its backends end with it
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()  # SIGTERM: the aggregator drains and stops
            for process in processes:
                try:
                    await asyncio.wait_for(process.wait(), timeout=30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        log_file.close()
    assert progress.done_at is not None and progress.first_commit_at is not None
    print(f"    aggregator log: {log_path}")
    return AggregatorRun(
        seconds_from_spawn=progress.done_at - progress.spawned_at,
        seconds_applying=progress.done_at - progress.first_commit_at,
        peak_rss_mb=peak,
        cpu_seconds=cpu,
        postgres_cpu_seconds=postgres_cpu,
        checkpoints=progress.checkpoints,
        first_commit_at=progress.first_commit_at,
    )


@dataclass
class PhaseTimer:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    batches: int = 0

    def sync(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def coro(self, name: str, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(func)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                if name == "apply_batch":
                    self.batches += 1

        return timed


# The steps of AggregatorStore.apply_batch timed by --phases (database round trips and the Python
# work around them); the rest of apply_batch is taking a connection, BEGIN and COMMIT.
STORE_STEPS = (
    "_claim_positions",
    "_record_identities",
    "_load_states",
    "_write_rows",
    "_advance_positions",
    "_write_daily",
)


async def run_in_process(
    schema: str, topic: str, dlq: str, total: int, batch: int | None, profile: str | None
) -> tuple[float, PhaseTimer]:
    """The consumer loop in this process with timers around its phases (monkeypatched wrappers)."""
    timer = PhaseTimer()
    patches = [
        (lanes_module, "build_batch", timer.sync("decode", lanes_module.build_batch)),
        (store_module, "plan_rows", timer.sync("plan", store_module.plan_rows)),
        (store_module, "dump_states", timer.sync("encode_state", store_module.dump_states)),
        (store_module, "load_state", timer.sync("decode_state", store_module.load_state)),
        (AggregatorStore, "apply_batch", timer.coro("apply_batch", AggregatorStore.apply_batch)),
        *((AggregatorStore, step, timer.coro(step, getattr(AggregatorStore, step))) for step in STORE_STEPS),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, wrapper in patches:
        setattr(owner, name, wrapper)
    overrides: dict[str, Any] = {"max_batch_records": batch} if batch else {}
    settings = AggregatorSettings(
        kafka_bootstrap_servers=KAFKA,
        database_url=DATABASE_URL,
        events_topic=topic,
        dead_letter_topic=dlq,
        consumer_group=f"bench-{uuid.uuid4().hex[:8]}",
        database_schema=schema,
        **overrides,
    )
    pool = await open_pool(settings)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True)
    profiler = cProfile.Profile() if profile else None
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, schema)
        await producer.start()
        consumer = EventConsumer(settings, AggregatorStore(pool, schema), producer)
        progress = Progress(spawned_at=time.perf_counter())
        if profiler:
            profiler.enable()
        task = asyncio.create_task(consumer.run())
        try:
            await wait_applied(schema, topic, total, progress, lambda: not task.done(), limit_seconds=3600)
        finally:
            if profiler:
                profiler.disable()
            consumer.stop()
            await asyncio.wait_for(task, timeout=60)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        await producer.stop()
        await pool.close()
    if profiler and profile:
        profiler.dump_stats(profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())
    assert progress.done_at is not None and progress.first_commit_at is not None
    return progress.done_at - progress.first_commit_at, timer


async def table_sizes(schema: str) -> list[tuple[str, int, int]]:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS size, c.reltuples::bigint AS rows "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY size DESC",
            schema,
        )
        sizes = []
        for r in rows:
            count = await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{r["relname"]}"')
            sizes.append((r["relname"], r["size"], count))
        return sizes
    finally:
        await conn.close()


def print_checkpoints(run: AggregatorRun) -> None:
    """The rate of each stretch between checkpoints and the bytes per event of each table at each."""
    previous_applied, previous_at = 0, run.first_commit_at
    for point in run.checkpoints:
        stretch = (point.applied - previous_applied) / max(point.at - previous_at, 1e-9)
        print(
            f"    at {point.applied:,} events ({point.at - run.first_commit_at:.0f} s): "
            f"{stretch:,.0f} events/s since {previous_applied:,}; bytes/event "
            + ", ".join(
                f"{name} {size / point.applied:.0f}"
                for name, size in sorted(point.sizes.items(), key=lambda kv: -kv[1])
            )
            + f"; all {sum(point.sizes.values()) / point.applied:.0f}"
        )
        previous_applied, previous_at = point.applied, point.at


def print_run(run: AggregatorRun, total: int, raw_rate: float, instances: int) -> None:
    rate = total / run.seconds_applying
    ratio = f"; ratio to raw {rate / raw_rate:.2f}" if raw_rate else ""
    print(
        f"    aggregator, {instances} process(es): {total:,} events applied in "
        f"{run.seconds_applying:.1f} s from its first commit ({run.seconds_from_spawn:.1f} s from spawn)\n"
        f"    = {rate:,.0f} events/s applied ({total / run.seconds_from_spawn:,.0f} from spawn){ratio}\n"
        f"    peak RSS {run.peak_rss_mb:.0f} MiB, aggregator CPU {run.cpu_seconds:.1f} s "
        f"({run.cpu_seconds / total * 1e6:.0f} µs/event), PostgreSQL CPU {run.postgres_cpu_seconds:.1f} s "
        f"({run.postgres_cpu_seconds / total * 1e6:.0f} µs/event); load average now {_load()}\n"
        f"    CPU bound on {os.cpu_count()} cores (aggregator and database CPU per event, nothing else "
        f"running): {total * (os.cpu_count() or 1) / (run.cpu_seconds + run.postgres_cpu_seconds):,.0f} events/s"
    )


def print_sizes(sizes: list[tuple[str, int, int]], total: int) -> None:
    for name, size, rows in sizes:
        print(f"    {name:22} {size / 2**20:9.1f} MiB {rows:>12,} rows {size / total:8.1f} bytes/event")
    everything = sum(size for _name, size, _rows in sizes)
    print(f"    {'all tables':22} {everything / 2**20:9.1f} MiB {'':>17} {everything / total:8.1f} bytes/event")


def print_medians(tree: Path, runs: list[AggregatorRun], total: int) -> None:
    """Medians over the runs of one source tree: the whole rate, each stretch's, CPU and bytes."""

    def median_of(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f} ({', '.join(f'{v:,.0f}' for v in values)})"

    print(f"medians of {len(runs)} runs, code {tree}:")
    print(f"    events/s applied {median_of([total / run.seconds_applying for run in runs])}")
    print(f"    aggregator CPU µs/event {median_of([run.cpu_seconds / total * 1e6 for run in runs])}")
    print(f"    PostgreSQL CPU µs/event {median_of([run.postgres_cpu_seconds / total * 1e6 for run in runs])}")
    for index, point in enumerate(runs[0].checkpoints):
        stretches, sizes = [], []
        for run in runs:
            previous = run.checkpoints[index - 1] if index else None
            applied_before = previous.applied if previous else 0
            at_before = previous.at if previous else run.first_commit_at
            here = run.checkpoints[index]
            stretches.append((here.applied - applied_before) / max(here.at - at_before, 1e-9))
            sizes.append(sum(here.sizes.values()) / here.applied)
        print(
            f"    at checkpoint {index + 1} (~{point.applied:,} events): stretch {median_of(stretches)} events/s, "
            f"all tables {median_of(sizes)} bytes/event"
        )
    if runs[0].checkpoints:
        last = [
            (total - run.checkpoints[-1].applied)
            / max(run.first_commit_at + run.seconds_applying - run.checkpoints[-1].at, 1e-9)
            for run in runs
        ]
        print(f"    from the last checkpoint to {total:,} events: stretch {median_of(last)} events/s")


async def cleanup(schemas: list[str], topics: list[str]) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


# --- main -----------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:10]
    topic, dlq = f"bench_events_{tag}", f"bench_dlq_{tag}"
    schema, phase_schema = f"bench_{tag}", f"bench_{tag}_inproc"
    schemas = [schema, phase_schema]
    print(f"topic {topic}, schema {schema}, {args.events:,} events, {PARTITIONS} partitions, load average {_load()}")
    started = time.perf_counter()
    records = generate(args.events, seed=args.seed)
    print(f"generated {len(records):,} records in {time.perf_counter() - started:.1f} s")
    await ensure_topics(KAFKA, {topic: PARTITIONS, dlq: 1})
    try:
        seconds = await produce(topic, records)
        size = sum(len(value) for _key, value in records)
        print(f"produced in {seconds:.1f} s: {len(records) / seconds:,.0f} records/s, {size / 2**20:.0f} MiB")
        del records
        ends = await topic_ends(topic)
        total = sum(ends.values())

        raw_rate = 0.0
        if not args.no_raw:
            raw_seconds, count, size = await raw_consume(topic, ends, decode=False)
            raw_rate = count / raw_seconds
            print(f"(a) raw consumption: {count:,} records in {raw_seconds:.1f} s = {raw_rate:,.0f} records/s")
            decode_seconds, count, _ = await raw_consume(topic, ends, decode=True)
            print(f"(a') consumption + decode: {count / decode_seconds:,.0f} records/s")

        checkpoints = tuple(int(c) for c in args.checkpoints.split(",") if c) if args.checkpoints else ()
        trees = [args.code] + ([args.against] if args.against else [])
        runs: dict[Path, list[AggregatorRun]] = {tree: [] for tree in trees}
        for round_ in range(args.runs):
            for tree in trees[round_ % len(trees) :] + trees[: round_ % len(trees)]:  # alternating order
                run_schema = schema if (args.runs, len(trees)) == (1, 1) else f"{schema}_{round_}_{trees.index(tree)}"
                print(f"(b) round {round_ + 1} of {args.runs}, code {tree}, schema {run_schema}")
                schemas.append(run_schema)
                run = await run_subprocess(
                    run_schema, topic, dlq, total, args.batch, tree, args.instances, checkpoints=checkpoints
                )
                runs[tree].append(run)
                print_run(run, total, raw_rate, args.instances)
                print_checkpoints(run)
                print_sizes(await table_sizes(run_schema), total)
                if not args.keep and run_schema != schema:
                    await cleanup([run_schema], [])
        if args.runs > 1 or len(trees) > 1:
            for tree in trees:
                print_medians(tree, runs[tree], total)

        if args.phases or args.profile:
            seconds, timer = await run_in_process(phase_schema, topic, dlq, total, args.batch, args.profile)
            phases = timer.seconds
            plan = phases["plan"]
            database = phases["apply_batch"] - phases["plan"] - phases["encode_state"] - phases["decode_state"]
            print(
                f"(c) in-process: {total / seconds:,.0f} events/s in {timer.batches} batches "
                f"({total / max(timer.batches, 1):,.0f} events/batch), peak RSS of this process "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB\n"
                f"    decode {phases['decode']:.1f} s, plan {plan:.1f} s, state decode {phases['decode_state']:.1f} s, "
                f"state encode {phases['encode_state']:.1f} s, database and rest of apply_batch {database:.1f} s, "
                f"other (Kafka fetch, loop) {seconds - phases['decode'] - phases['apply_batch']:.1f} s\n"
                "    apply_batch steps: "
                + ", ".join(f"{step.strip('_')} {phases[step]:.2f} s" for step in STORE_STEPS)
                + f", connection/begin/commit {phases['apply_batch'] - sum(phases[s] for s in STORE_STEPS):.2f} s"
            )
    finally:
        if args.keep:
            print(f"kept topic {topic} and schemas {', '.join(schemas)}")
        else:
            await cleanup(schemas, [topic, dlq])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=None, help="MAX_BATCH_RECORDS for the aggregator")
    parser.add_argument("--phases", action="store_true", help="also run in-process with per-phase timers")
    parser.add_argument("--profile", default=None, help="also run in-process under cProfile, stats to this file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--instances", type=int, default=1, help="aggregator processes in one consumer group")
    parser.add_argument(
        "--code", type=Path, default=REPO, help="run the aggregator subprocess from this source tree (A/B runs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the topic and schemas")
    parser.add_argument("--runs", type=int, default=1, help="aggregator runs over the one topic (fresh schema each)")
    parser.add_argument(
        "--against", type=Path, default=None, help="also run this source tree in each round, in alternating order"
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw consumption rates (a) and (a')")
    parser.add_argument(
        "--checkpoints",
        default=None,
        help="applied-event counts (comma-separated) at which to print the stretch's rate and the table sizes",
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(bench(parser.parse_args()))  # as the aggregator runs under uvicorn


if __name__ == "__main__":
    main()
