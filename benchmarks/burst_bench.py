"""Freshness after a burst on a fresh stack: the delay from the last 202 to complete figures (a script).

Each run starts from nothing, as `make up` on an empty database does: a schema that does not exist
yet, a new events topic, a new consumer group and free ports. It starts the real aggregator, intake
and reporting (two workers, as deploy/services.sh) as processes, posts the Mỹ Hào 2023 scenario
(83,039 events) through the intake while the aggregator consumes them, and measures from the last
202 response:

- applied: the aggregator's last commit (its `tthc_aggregator_last_applied_timestamp_seconds`),
  once its applied and duplicate counters account for every event posted;
- figures: the reporting API shows exactly the scenario's figures for the town and the four pilot
  communes (the check `python -m scenario` makes, polled every 0.1 s).

It prints both per run and their medians. Nothing of the shared stack is touched: its own schema,
topics, group and ports, dropped and deleted afterwards (unless --keep).

Usage: python benchmarks/burst_bench.py [--runs 5] [--code OTHER_TREE]
(--code runs the services from another source tree, for a before/after comparison.)
Needs Kafka and PostgreSQL (deploy/kafka.sh start, deploy/postgres.sh start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from scenario.__main__ import DEV_READ_TOKEN, UNITS, Targets, indicators_url, wait_for_figures  # noqa: E402
from scenario.client import post_events  # noqa: E402
from scenario.expected import Window, expected_figures  # noqa: E402
from scenario.generate import generate_events  # noqa: E402
from scenario.plan import load_scenario  # noqa: E402

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://tthc:tthc@127.0.0.1:5433/tthc")
READY_SECONDS = 90.0
# How long the aggregator may take to report the counters once the figures show (a scrape).
METRICS_SECONDS = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every delay here."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass
class Stack:
    """The three services on their own schema, topics, group and ports."""

    code: Path
    log_dir: Path
    tag: str

    def __post_init__(self) -> None:
        self.schema = f"burst_{self.tag}"
        self.topic = f"burst_events_{self.tag}"
        self.dead_letter_topic = f"burst_dlq_{self.tag}"
        self.ports = {name: _free_port() for name in ("aggregator", "intake", "reporting")}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "DATABASE_URL": DATABASE_URL,
            "DATABASE_SCHEMA": self.schema,
            "EVENTS_TOPIC": self.topic,
            "DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "CONSUMER_GROUP": f"burst-{self.tag}",
            "AGGREGATOR_PORT": str(self.ports["aggregator"]),
            "INTAKE_PORT": str(self.ports["intake"]),
            "REPORTING_PORT": str(self.ports["reporting"]),
            "REPORTING_WORKERS": os.environ.get("REPORTING_WORKERS", "2"),  # as deploy/services.sh
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(self.code),
        }

    def start(self, name: str) -> None:
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=self.code,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped as a group: the reporting workers too
            )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log_dir / f'{name}.log'}")
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:
                self.processes[name].wait(0.1)  # doubles as the polling interval
            except subprocess.TimeoutExpired:
                continue
        raise RuntimeError(f"{name} not ready in {READY_SECONDS:.0f} s; see {self.log_dir / f'{name}.log'}")

    def stop(self) -> None:
        for name in ("reporting", "intake", "aggregator"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)  # each service drains and stops
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def running(code: Path, keep: bool) -> Iterator[Stack]:
    log_dir = Path(tempfile.mkdtemp(prefix="burst-bench-"))
    stack = Stack(code, log_dir, uuid.uuid4().hex[:10])
    failed = True
    try:
        for name in ("aggregator", "intake", "reporting"):  # the aggregator creates schema and topics
            stack.start(name)
        yield stack
        failed = False
    finally:
        stack.stop()
        if keep:
            print(f"    kept schema {stack.schema}, topic {stack.topic}; logs in {log_dir}")
        else:
            asyncio.run(_cleanup(stack))
            if failed:
                print(f"    the services' logs: {log_dir}")
            else:
                shutil.rmtree(log_dir)


async def _cleanup(stack: Stack) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{stack.schema}" CASCADE')
    finally:
        await conn.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.delete_topics([stack.topic, stack.dead_letter_topic])
    finally:
        await admin.close()


def _metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tthc_aggregator_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _aggregator_done(stack: Stack, posted: int) -> Mapping[str, float]:
    """The aggregator's counters once they account for every posted event."""
    deadline = time.monotonic() + METRICS_SECONDS
    while True:
        values = _metrics(httpx.get(f"{stack.url('aggregator')}/metrics", timeout=5).text)
        consumed = sum(
            values.get(name, 0.0)
            for name in (
                "tthc_aggregator_events_applied_total",
                "tthc_aggregator_duplicates_total",
                "tthc_aggregator_dead_letters_total",
            )
        )
        if consumed >= posted or time.monotonic() >= deadline:
            return values
        time.sleep(0.1)


@dataclass(frozen=True)
class Run:
    posted_seconds: float
    events_per_second: float
    applied_delay: float
    figures_delay: float
    batches: int
    batch_seconds: float


def one_run(
    code: Path,
    events: list[dict[str, Any]],
    targets: Mapping[str, Targets],
    window: Window,
    timeout: float,
    batch_size: int,
    keep: bool,
) -> Run:
    with (
        running(code, keep) as stack,
        httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {DEV_READ_TOKEN}"}) as http,
    ):
        # As `python -m scenario` does: the figures before posting, here of the empty store.
        for unit in targets:
            http.get(indicators_url(stack.url("reporting"), unit, window)).raise_for_status()
        stats = post_events(events, stack.url("intake"), batch_size=batch_size)
        outcome = wait_for_figures(
            http, stack.url("reporting"), window, targets, stats.last_accepted_monotonic, timeout
        )
        if outcome.delay is None:
            raise RuntimeError(f"the figures did not show within {timeout:.0f} s: {outcome.problems}")
        values = _aggregator_done(stack, len(events))
        if not values.get("tthc_aggregator_events_applied_total"):
            raise RuntimeError("the aggregator applied no events")
        return Run(
            posted_seconds=stats.seconds,
            events_per_second=stats.events_per_second,
            applied_delay=values["tthc_aggregator_last_applied_timestamp_seconds"] - stats.last_accepted_at.timestamp(),
            figures_delay=outcome.delay,
            batches=int(values.get('tthc_aggregator_batches_total{outcome="applied"}', 0)),
            batch_seconds=values.get("tthc_aggregator_batch_seconds_sum", 0.0),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--batch-size", type=int, default=500, help="events per POST (python -m scenario's default)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the figures")
    parser.add_argument("--code", type=Path, default=REPO, help="run the services from this source tree")
    parser.add_argument("--keep", action="store_true", help="keep schemas, topics and logs")
    args = parser.parse_args()

    scenario = load_scenario()
    window = Window.of(scenario)
    events = generate_events(scenario, args.seed)
    expected = expected_figures(scenario, args.seed, events)
    targets = {unit: Targets.of(expected[unit], None) for unit in UNITS}
    print(f"{len(events):,} events, services from {args.code}, {os.cpu_count()} cores, load average {_load()}")
    runs: list[Run] = []
    for number in range(1, args.runs + 1):
        run = one_run(args.code, events, targets, window, args.timeout, args.batch_size, args.keep)
        runs.append(run)
        print(
            f"run {number}: posted in {run.posted_seconds:.1f} s ({run.events_per_second:,.0f} events/s); "
            f"after the last 202: applied {run.applied_delay:.2f} s, figures {run.figures_delay:.2f} s; "
            f"{run.batches} batches, {run.batch_seconds:.1f} s in batches; load average {_load()}"
        )
    print(
        f"median of {len(runs)}: applied {statistics.median(r.applied_delay for r in runs):.2f} s, "
        f"figures {statistics.median(r.figures_delay for r in runs):.2f} s after the last 202 "
        f"(figures: min {min(r.figures_delay for r in runs):.2f}, max {max(r.figures_delay for r in runs):.2f})"
    )


if __name__ == "__main__":
    main()
