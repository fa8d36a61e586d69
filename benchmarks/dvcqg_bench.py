"""Throughput of the DVCQG synchronisation adapter through HTTP: records/s and events/s (a script).

Starts the real aggregator, intake and reporting as processes on a fresh schema, topics, group and
ports (as benchmarks/burst_bench.py does, with its `running`), encodes the Mỹ Hào 2023 scenario's
dossiers as the one-stop systems' DVCQG requests (`scenario.dvcqg`: about 51,000 records in about
1,100 requests of at most 100 records, personal data included), and posts them to
`POST /v1/adapters/dvcqg` one request after another, as `python -m scenario --via dvcqg` does, while
the aggregator consumes. Each run posts the whole set again (the intake does the same work for a
re-sent record; the aggregator sees duplicates). A 202 means Kafka has every derived event.

It prints per run and the median: records/s and derived events/s, and, for comparison, the same
requests through the adapter's pure part in this process (parsing, mapping, checking; no HTTP, no
Kafka). No assertion: figures to read. Nothing of the shared stack is touched.

Usage: python benchmarks/dvcqg_bench.py [--runs 5] [--keep]
Needs Kafka and PostgreSQL (deploy/kafka.sh start, deploy/postgres.sh start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):  # run as a script from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from burst_bench import running  # noqa: E402

from scenario.client import post_dvcqg  # noqa: E402
from scenario.dvcqg import Encoded, encode  # noqa: E402
from scenario.generate import generate_events  # noqa: E402
from scenario.plan import load_scenario  # noqa: E402
from services.intake.dvcqg import events_from_request  # noqa: E402
from shared.units import UnitRegistry  # noqa: E402


@dataclass(frozen=True)
class Run:
    seconds: float
    records: int
    events: int

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


def in_process(encoded: Encoded, registry: UnitRegistry) -> Run:
    """The adapter's pure part alone: what the intake's CPU does per request before Kafka."""

    def resolve(organ: str, day: date) -> str | None:
        entry = registry.resolve_organ(organ, day)
        return None if entry is None else entry.code

    now = datetime.now(UTC)
    events = 0
    started = time.perf_counter()
    for request in encoded.requests:
        derived = events_from_request(
            request.body,
            source=request.params["source"],
            organ_code=request.params.get("MaDinhDanhDV"),
            resolve_organ=resolve,
            now=now,
        )
        events += len(derived.events)
    return Run(time.perf_counter() - started, encoded.records, events)


def _line(label: str, run: Run) -> str:
    return (
        f"{label}: {run.records:,} records -> {run.events:,} events in {run.seconds:.2f} s: "
        f"{run.records_per_second:,.0f} records/s, {run.events_per_second:,.0f} events/s"
    )


def _median(label: str, runs: list[Run]) -> str:
    records = statistics.median(run.records_per_second for run in runs)
    events = statistics.median(run.events_per_second for run in runs)
    spread = f"min {min(r.records_per_second for r in runs):,.0f}, max {max(r.records_per_second for r in runs):,.0f}"
    return f"median of {len(runs)} {label}: {records:,.0f} records/s ({spread}), {events:,.0f} events/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--keep", action="store_true", help="keep schemas, topics and logs")
    args = parser.parse_args()

    registry = UnitRegistry.load(None)
    encoded = encode(generate_events(load_scenario(), args.seed), registry, args.seed)
    sizes = [len(request.body) for request in encoded.requests]
    print(
        f"{encoded.records:,} DVCQG records of {encoded.dossiers:,} dossiers in {len(encoded.requests):,} requests "
        f"(median body {statistics.median(sizes) / 1024:,.0f} KiB); {os.cpu_count()} cores, "
        f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    pure = [in_process(encoded, registry) for _ in range(args.runs)]
    for number, run in enumerate(pure, start=1):
        print(_line(f"in process, run {number}", run))
    http: list[Run] = []
    with running(REPO, args.keep) as stack:
        for number in range(1, args.runs + 1):
            stats = post_dvcqg(encoded.requests, stack.url("intake"))
            run = Run(stats.seconds, stats.records, stats.events)
            http.append(run)
            print(_line(f"through HTTP, run {number}", run) + f"; {stats.retries} retries")
    print(_median("in process", pure))
    print(_median("through HTTP", http))


if __name__ == "__main__":
    main()
