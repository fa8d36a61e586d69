"""Benchmark of the roll-up across reorganizations (not a test): prints its figures.

    .venv/bin/python benchmarks/units_bench.py [--runs 3] [--queries 100]

It loads the shipped Hưng Yên registry (505 entries: provinces 33 and 34 with their districts and
communes until 30 June 2025, the 104 units of the merged province from 1 July 2025) and counters for
every entry on every day it exists from 1 January 2023 to 30 November 2026 (daily counts and a
level change per entry and day, as the aggregator stores them) straight into a dedicated schema,
starts one reporting process with that registry and measures sequential GET /v1/indicators
(p50, p99, each the median of `--runs` runs):

1. province 33 over 2023-01-01..2026-11-30 in today's tree (the merged province: every stored key)
   and in the tree of 30 June 2025 (the old province 33: its own area), and both old roots together;
2. Phường Mỹ Hào (12103, today's tree: the ward and its four predecessors, 5 stored keys) against
   Phường Bần Yên Nhân (12103 in the tree of 2024-12-31: 1 stored key) over the same window;
3. the cost of the roll-up itself: building a tree of the registry and the stored keys of every
   unit (done once per tree and process, then cached).

Everything stays on 127.0.0.1; the schema and the process are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.reporting_bench import (  # noqa: E402
    DATABASE_URL,
    TOKEN,
    Connection,
    clean_up,
    percentile,
    roll_up_months,
    start_reporting,
)
from services.aggregator.migrate import apply_migrations  # noqa: E402
from shared.counters import DAILY_COUNTERS, LEVEL_COUNTERS  # noqa: E402
from shared.timezone import start_of_day  # noqa: E402
from shared.units import HUNG_YEN_UNITS_RESOURCE, UnitRegistry  # noqa: E402

UNITS_FILE = REPO / "shared" / "data" / HUNG_YEN_UNITS_RESOURCE
FIRST, LAST = date(2023, 1, 1), date(2026, 11, 30)
NEW_TREE, OLD_TREE, OLD_WARD_TREE = date(2026, 11, 30), date(2025, 6, 30), date(2024, 12, 31)


async def load_counters(conn: asyncpg.Connection, registry: UnitRegistry) -> int:
    rng = random.Random(2025)
    rows, changes = [], []
    for entry in registry.entries:
        day = max(FIRST, entry.valid_from or FIRST)
        end = min(LAST + timedelta(days=1), entry.valid_to or date.max)
        while day < end:
            daily = [rng.randint(0, 20) for _ in DAILY_COUNTERS]
            rows.append((entry.key, day, *daily))
            at = start_of_day(day) + timedelta(hours=9)
            changes.append((entry.key, at, *(rng.randint(-1, 2) for _ in LEVEL_COUNTERS)))
            day += timedelta(days=1)
    await conn.copy_records_to_table("daily_counts", records=rows, columns=["unit", "day", *DAILY_COUNTERS])
    await conn.copy_records_to_table("level_changes", records=changes, columns=["unit", "at", *LEVEL_COUNTERS])
    await roll_up_months(conn)
    await conn.execute(
        "INSERT INTO consumer_positions (topic, partition, next_offset, applied_at) VALUES ('bench', 0, 1, now())"
    )
    await conn.execute("ANALYZE")
    return len(rows)


async def latencies(port: int, unit: str, tree: date, queries: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, dossiers received) of sequential queries for the unit over the whole window."""
    target = f"/v1/indicators?unit={unit}&tree={tree}&from={FIRST}&to={LAST}"
    conn = await Connection.open(port)
    measured: list[float] = []
    try:
        status, _, body = await conn.get(target, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body[:300]
        received = int(json.loads(body)["dossiers"]["received"])
        for _ in range(queries):
            started = time.perf_counter()
            status, _, _ = await conn.get(target, {"Authorization": f"Bearer {TOKEN}"})
            measured.append(time.perf_counter() - started)
            assert status == 200
    finally:
        await conn.close()
    return percentile(measured, 0.5) * 1000, percentile(measured, 0.99) * 1000, received


async def measure(port: int, label: str, unit: str, tree: date, keys: int, runs: int, queries: int) -> int:
    results = [await latencies(port, unit, tree, queries) for _ in range(runs)]
    p50 = statistics.median(r[0] for r in results)
    p99 = statistics.median(r[1] for r in results)
    print(
        f"{label:<58} {keys:>4} keys  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"[runs p99: {', '.join(f'{r[1]:.1f}' for r in results)}]"
    )
    return results[0][2]


def roll_up_cost(runs: int) -> None:
    raw = UNITS_FILE.read_bytes()
    loads, trees = [], []
    for _ in range(runs):
        started = time.perf_counter()
        registry = UnitRegistry.from_json(raw)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        for day in (OLD_WARD_TREE, NEW_TREE):
            tree = registry.tree(day)
            for code in tree.units:
                tree.stored_keys(code, "subtree")
        trees.append(time.perf_counter() - started)
    print(
        f"\nroll-up cost: loading and validating the registry {statistics.median(loads) * 1000:.1f} ms; "
        f"building the trees of {OLD_WARD_TREE} and {NEW_TREE} with every unit's stored keys "
        f"{statistics.median(trees) * 1000:.1f} ms (once per tree and process, then cached)"
    )


async def main(runs: int, queries: int) -> None:
    registry = UnitRegistry.load(UNITS_FILE)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    workdir = Path(tempfile.mkdtemp(prefix="units-bench-"))
    admin = await asyncpg.connect(DATABASE_URL)
    process: subprocess.Popen[bytes] | None = None
    try:
        await apply_migrations(admin, schema)
        await admin.execute(f'SET search_path TO "{schema}"')
        started = time.perf_counter()
        rows = await load_counters(admin, registry)
        print(
            f"data: {len(registry.entries)} registry entries, {rows:,} daily_counts rows and as many level "
            f"changes ({FIRST}..{LAST}) in {time.perf_counter() - started:.1f} s; schema {schema}"
        )
        process, port = start_reporting(schema, UNITS_FILE, workdir / "reporting.log")
        print(f"reporting: pid {process.pid}, port {port}; {queries} sequential queries, median of {runs} run(s)\n")
        new, old, ward_tree = registry.tree(NEW_TREE), registry.tree(OLD_TREE), registry.tree(OLD_WARD_TREE)
        merged_keys = len(new.stored_keys("33"))
        merged = await measure(
            port, f"province 33, tree {NEW_TREE} (merged province)", "33", NEW_TREE, merged_keys, runs, queries
        )
        old_totals = 0
        for root in ("33", "34"):
            old_totals += await measure(
                port, f"province {root}, tree {OLD_TREE}", root, OLD_TREE, len(old.stored_keys(root)), runs, queries
            )
        await measure(
            port, f"Phường Mỹ Hào 12103, tree {NEW_TREE} (self: 5 keys)", "12103", NEW_TREE,
            len(new.stored_keys("12103", "self")), runs, queries,
        )  # fmt: skip
        await measure(
            port, f"Phường Bần Yên Nhân 12103, tree {OLD_WARD_TREE}", "12103", OLD_WARD_TREE,
            len(ward_tree.stored_keys("12103", "self")), runs, queries,
        )  # fmt: skip
        same = "the same" if merged == old_totals else "DIFFERENT"
        print(f"\nreceived: merged province {merged:,}; old provinces 33 + 34 {old_totals:,} ({same})")
        roll_up_cost(runs)
    finally:
        await clean_up(process, admin, schema)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100)
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.runs, args.queries))
