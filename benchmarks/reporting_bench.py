"""Benchmark of the reporting service (not a test): prints its figures.

    .venv/bin/python benchmarks/reporting_bench.py [--runs 3] [--quick]

It generates a 100-unit tree (UNITS_FILE) and a year of counters (100 units x 365 days in
daily_counts, plus level changes) straight into a dedicated schema, starts one reporting
process on a free loopback port, and measures:

1. GET /v1/snapshot: requests/s, p50 and p99 with 50 concurrent keep-alive clients, without and
   with If-None-Match (304): at saturation (closed loop: each client sends its next request as
   soon as the answer arrives) and paced (each client every 100 ms: 500 requests/s);
2. GET /v1/indicators over the whole province and a 365-day window: p50 and p99;
3. SSE: how many clients one process holds while a change still reaches every one of them
   within 1 s (the change is committed the way the aggregator does: counters and the consumer
   position in one transaction; the time is measured from that commit);
4. GET /v1/index766 over the whole province and a 365-day window (the Decision 766 tables too:
   cohorts, 200 procedures per unit with their days, year bitmaps and publication periods):
   p50 and p99. `--index766` measures only this.

Each figure is the median of `--runs` runs. Everything stays on 127.0.0.1; every loop is
bounded; the schema and the process are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.aggregator.migrate import apply_migrations  # noqa: E402
from shared.counters import (  # noqa: E402
    ALL_COUNTERS,
    COHORT_COUNTERS,
    DAILY_COUNTERS,
    LEVEL_COUNTERS,
    PROCEDURE_DAILY_COUNTERS,
)
from shared.timezone import LOCAL_TZ, local_day, start_of_day  # noqa: E402

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://tthc:tthc@127.0.0.1:5433/tthc")
TOKEN = "dev-read-token"
HOST = "127.0.0.1"

SNAPSHOT_CLIENTS = 50
SNAPSHOT_REQUESTS_PER_CLIENT = 200  # 10,000 requests per run
# Paced load: 50 screens each revalidating every 100 ms (500 req/s, ten times what 50 IOC screens
# polling every second send), to measure latency below saturation.
PACED_INTERVAL = 0.1
PACED_REQUESTS_PER_CLIENT = 100
PROVINCE_QUERIES = 200
SSE_STEPS = (500, 1000, 2000, 3000, 4000)
SSE_DEADLINE = 1.0  # seconds: the freshness target
SSE_CONNECT_TIMEOUT = 60.0


# ---- data ------------------------------------------------------------------------------------


def unit_tree() -> list[dict[str, str | None]]:
    """One province, 9 districts, 90 communes: 100 units."""
    units: list[dict[str, str | None]] = [{"code": "tinh", "name": "Tỉnh Thử Nghiệm", "parent": None}]
    for d in range(9):
        district = f"tinh.h{d}"
        units.append({"code": district, "name": f"Huyện Số {d}", "parent": "tinh"})
        units += [{"code": f"{district}.x{c}", "name": f"Xã Số {d}-{c}", "parent": district} for c in range(10)]
    return units


async def load_counters(conn: asyncpg.Connection, units: Sequence[str], days: Sequence[date]) -> int:
    rng = random.Random(7)
    rows = []
    for unit in units:
        for day in days:
            daily = {name: rng.randint(0, 40) for name in DAILY_COUNTERS}
            # Consistent as the aggregator's counts are: a subset never exceeds its whole.
            daily["ratings_satisfied"] = rng.randint(0, daily["ratings"])
            daily["received_digitized"] = rng.randint(10, 40)
            levels = [rng.randint(0, 3) for _ in LEVEL_COUNTERS]  # net level changes of the day
            rows.append((unit, day, *daily.values(), *levels))
    await conn.copy_records_to_table("daily_counts", records=rows, columns=["unit", "day", *ALL_COUNTERS])
    # Level changes at exact instants: a few per unit and day, today's among them (partial day).
    changes = []
    for unit in units:
        for day in days:
            for hour in (8, 11, 15):
                at = start_of_day(day) + timedelta(hours=hour, minutes=rng.randint(0, 59))
                changes.append((unit, at, 1, *(0 for _ in LEVEL_COUNTERS[1:])))
    await conn.copy_records_to_table("level_changes", records=changes, columns=["unit", "at", *LEVEL_COUNTERS])
    await roll_up_months(conn)
    await conn.execute(
        "INSERT INTO consumer_positions (topic, partition, next_offset, applied_at) VALUES ('bench', 0, 1, now())"
    )
    return len(rows)


async def roll_up_months(conn: asyncpg.Connection) -> None:
    """The monthly roll-ups of the rows loaded straight into daily_counts and cohort_changes, as
    the aggregator keeps them (migration 0004)."""
    month = "day - extract(day FROM day)::int + 1"
    await conn.execute("TRUNCATE monthly_counts, monthly_cohorts")
    await conn.execute(
        f"INSERT INTO monthly_counts (unit, month, {', '.join(ALL_COUNTERS)}) "
        f"SELECT unit, {month}, {', '.join(f'sum({c})' for c in ALL_COUNTERS)} FROM daily_counts GROUP BY 1, 2"
    )
    await conn.execute(
        f"INSERT INTO monthly_cohorts (unit, month, last_at, {', '.join(COHORT_COUNTERS)}) "
        f"SELECT unit, {month}, max(at), {', '.join(f'sum({c})' for c in COHORT_COUNTERS)} "
        "FROM cohort_changes GROUP BY 1, 2"
    )


PROCEDURES_PER_UNIT = 200
PROCEDURE_ACTIVE_DAYS = 30  # days with dossiers of a procedure in the year


async def load_index_tables(conn: asyncpg.Connection, units: Sequence[str], days: Sequence[date]) -> int:
    """The Decision 766 tables for the same units and days; returns the number of procedures."""
    rng = random.Random(766)
    cohorts = []
    for unit in units:
        for day in days:
            at = start_of_day(day) + timedelta(hours=16)
            ended = rng.randint(0, 30)
            cohorts.append((unit, day, at, rng.randint(0, 2), ended, rng.randint(0, ended)))
    await conn.copy_records_to_table("cohort_changes", records=cohorts, columns=["unit", "day", "at", *COHORT_COUNTERS])
    procedure_days, periods = [], []
    years: dict[tuple[str, str, int], list[list[str]]] = {}
    published = start_of_day(min(days)) - timedelta(days=30)
    for unit in units:
        for n in range(PROCEDURES_PER_UNIT):
            code = f"1.{n:06d}"
            online, fee_bearing = rng.random() < 0.7, rng.random() < 0.35
            periods.append((unit, code, published, online, fee_bearing))
            for day in rng.sample(list(days), PROCEDURE_ACTIVE_DAYS):
                counts = (rng.randint(0, 3), rng.randint(0, 2) if fee_bearing else 0, rng.randint(0, 2))
                procedure_days.append((unit, code, day, *counts))
                bits = years.setdefault((unit, code, day.year), [["0"] * 366 for _ in PROCEDURE_DAILY_COUNTERS])
                for counter, value in enumerate(counts):
                    if value:
                        bits[counter][day.timetuple().tm_yday - 1] = "1"
    await conn.copy_records_to_table(
        "procedure_days", records=procedure_days, columns=["unit", "procedure_code", "day", *PROCEDURE_DAILY_COUNTERS]
    )
    await conn.executemany(
        f"INSERT INTO procedure_years (unit, procedure_code, year, {', '.join(PROCEDURE_DAILY_COUNTERS)}) "
        "VALUES ($1, $2, $3, $4::text::bit(366), $5::text::bit(366), $6::text::bit(366))",
        [(unit, code, year, *("".join(b) for b in bits)) for (unit, code, year), bits in years.items()],
    )
    await conn.executemany(
        "INSERT INTO procedure_periods (unit, procedure_code, starts_at, ends_at, online, fee_bearing, n) "
        "VALUES ($1, $2, $3, 'infinity', $4, $5, 1)",
        periods,
    )
    await roll_up_months(conn)
    await conn.execute("ANALYZE")
    return len(periods)


async def commit_change(conn: asyncpg.Connection, unit: str) -> float:
    """What an aggregator batch does: counters and position in one transaction. Returns its commit time."""
    today = local_day(datetime.now(UTC))
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO daily_counts (unit, day, received) VALUES ($1, $2, 1) "
            "ON CONFLICT (unit, day) DO UPDATE SET received = daily_counts.received + 1",
            unit,
            today,
        )
        await conn.execute(
            "INSERT INTO monthly_counts (unit, month, received) VALUES ($1, $2, 1) "
            "ON CONFLICT (unit, month) DO UPDATE SET received = monthly_counts.received + 1",
            unit,
            today.replace(day=1),
        )
        await conn.execute(
            "UPDATE consumer_positions SET next_offset = next_offset + 1, applied_at = clock_timestamp()"
        )
    return time.monotonic()


# ---- the service -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_reporting(
    schema: str, units_file: Path, log: Path, python: str = sys.executable, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_SCHEMA": schema,
        "UNITS_FILE": str(units_file),
        "REPORTING_PORT": str(port),
        "MAX_STREAMS": "5000",
        "LOG_LEVEL": "WARNING",
        "REPORTING_WORKERS": str(workers),
    }
    process = subprocess.Popen(
        [python, "-m", "services.reporting"],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"reporting exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # start-up polling interval
    raise RuntimeError("reporting not ready in 60 s")


# ---- a minimal keep-alive HTTP/1.1 client (the load generator must cost less than the server) --


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def get(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        lines = [f"GET {target} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.writer.write("\r\n".join(lines).encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        found = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        length = int(found.get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), found, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]


async def snapshot_load(port: int, conditional: bool) -> LoadResult:
    target = "/v1/snapshot?unit=tinh"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    probe = await Connection.open(port)
    _, headers, _ = await probe.get(target, auth)
    await probe.close()
    request_headers = {**auth, "If-None-Match": headers["etag"]} if conditional else auth
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        conn = await Connection.open(port)
        try:
            for _ in range(SNAPSHOT_REQUESTS_PER_CLIENT):
                started = time.perf_counter()
                status, _, _ = await conn.get(target, request_headers)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(SNAPSHOT_CLIENTS)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        len(latencies) / elapsed, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000, statuses
    )


async def snapshot_paced(port: int, conditional: bool) -> LoadResult:
    """Open loop: each client sends at fixed instants, whatever the answers' latency."""
    target = "/v1/snapshot?unit=tinh"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    probe = await Connection.open(port)
    _, headers, _ = await probe.get(target, auth)
    await probe.close()
    request_headers = {**auth, "If-None-Match": headers["etag"]} if conditional else auth
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(offset: float) -> None:
        conn = await Connection.open(port)
        try:
            await asyncio.sleep(offset)  # spread the clients over the interval (load shape)
            start = time.perf_counter()
            for i in range(PACED_REQUESTS_PER_CLIENT):
                sent = time.perf_counter()
                status, _, _ = await conn.get(target, request_headers)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
                await asyncio.sleep(max(0.0, start + (i + 1) * PACED_INTERVAL - time.perf_counter()))
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i * PACED_INTERVAL / SNAPSHOT_CLIENTS) for i in range(SNAPSHOT_CLIENTS)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        len(latencies) / elapsed, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000, statuses
    )


async def province_year(port: int, path: str = "/v1/indicators", year_to_date: bool = False) -> LoadResult:
    """Sequential queries over the province for the last 365 days (or the calendar year to date)."""
    today = local_day(datetime.now(UTC))
    start = today.replace(month=1, day=1) if year_to_date else today - timedelta(days=364)
    target = f"{path}?unit=tinh&from={start.isoformat()}&to={today.isoformat()}"
    conn = await Connection.open(port)
    latencies: list[float] = []
    try:
        status, _, body = await conn.get(target, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body[:300]
        checked = json.loads(body)
        if path == "/v1/indicators":
            assert checked["dossiers"]["received"] > 0, body[:300]
        else:
            assert checked["computable_points"] > 0 and len(checked["ranking"]) == 9, body[:300]
        started = time.perf_counter()
        for _ in range(PROVINCE_QUERIES):
            t0 = time.perf_counter()
            status, _, _ = await conn.get(target, {"Authorization": f"Bearer {TOKEN}"})
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    return LoadResult(len(latencies) / elapsed, p50, p99, {})


# ---- SSE -------------------------------------------------------------------------------------


class Progress:
    """Sets `done` once every client has received its second message (the change)."""

    def __init__(self, clients: int) -> None:
        self.remaining = clients
        self.done = asyncio.Event()

    def second_message(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class SSEClient:
    """Records when each message id arrives (monotonic clock)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.ids: list[str] = []
        self.arrived: dict[str, float] = {}
        self.first = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write(
            f"GET /v1/stream?unit=tinh&access_token={TOKEN} HTTP/1.1\r\nHost: {HOST}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                ident = line[4:].strip().decode()
                self.arrived[ident] = time.monotonic()
                self.ids.append(ident)
                self.first.set()
                if len(self.ids) == 2:
                    self.progress.second_message()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


async def sse_step(port: int, conn: asyncpg.Connection, clients: int) -> tuple[int, float, float, float]:
    """Connect `clients` streams, commit one change, return (delivered, p50, p99, max) seconds."""
    progress = Progress(clients)
    population = [SSEClient(progress) for _ in range(clients)]
    try:
        for index, client in enumerate(population):
            client.task = asyncio.create_task(client.run(port))
            if index % 100 == 99:
                await asyncio.sleep(0.05)  # pace the connection burst (accept backlog), not synchronization
        await asyncio.wait_for(asyncio.gather(*(c.first.wait() for c in population)), SSE_CONNECT_TIMEOUT)
        # The hub publishes a channel at most once a second: start from a quiet channel.
        await asyncio.sleep(1.1)  # rate-limit window of the service, not synchronization
        committed = await commit_change(conn, "tinh.h0.x0")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.done.wait(), 5.0)
        delays = [c.arrived[c.ids[1]] - committed for c in population if len(c.ids) >= 2]
        if not delays:
            return 0, float("inf"), float("inf"), float("inf")
        return len(delays), percentile(delays, 0.5), percentile(delays, 0.99), max(delays)
    finally:
        await asyncio.gather(*(c.close() for c in population), return_exceptions=True)


# ---- main ------------------------------------------------------------------------------------


def median_of(runs: Sequence[LoadResult]) -> LoadResult:
    return LoadResult(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        runs[-1].statuses,
    )


async def repeat(runs: int, measure: Callable[[], Awaitable[LoadResult]]) -> tuple[LoadResult, list[LoadResult]]:
    results = [await measure() for _ in range(runs)]
    return median_of(results), results


async def index_section(port: int, runs: int) -> None:
    # The IOC's window is the calendar year to date (one year of bitmaps); the last 365 days span
    # two years, which takes the general per-procedure query.
    for year_to_date, label in ((True, "the year to date"), (False, "the last 365 days")):
        result, all_runs = await repeat(
            runs,
            lambda ytd=year_to_date: province_year(port, "/v1/index766", ytd),  # type: ignore[misc]
        )
        print(
            f"index766, province (100 units, {PROCEDURES_PER_UNIT * 100:,} procedures), {label}: "
            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms [{PROVINCE_QUERIES} sequential queries; "
            f"runs p99: {', '.join(f'{r.p99_ms:.1f}' for r in all_runs)}]"
        )


async def main(runs: int, quick: bool, python: str, index_only: bool) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000), hard))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    workdir = Path(tempfile.mkdtemp(prefix="reporting-bench-"))
    units = unit_tree()
    units_file = workdir / "units.json"
    units_file.write_text(json.dumps(units, ensure_ascii=False))
    today = local_day(datetime.now(LOCAL_TZ))
    days = [today - timedelta(days=i) for i in range(365)]
    admin = await asyncpg.connect(DATABASE_URL)
    process: subprocess.Popen[bytes] | None = None
    try:
        await apply_migrations(admin, schema)
        await admin.execute(f'SET search_path TO "{schema}"')
        t0 = time.perf_counter()
        rows = await load_counters(admin, [str(u["code"]) for u in units], days)
        procedures = await load_index_tables(admin, [str(u["code"]) for u in units], days)
        print(
            f"data: {len(units)} units x {len(days)} days = {rows} daily_counts rows "
            f"(+{rows * 3} level_changes, {rows} cohort rows, {procedures:,} procedures with "
            f"{procedures * PROCEDURE_ACTIVE_DAYS:,} procedure days) in {time.perf_counter() - t0:.1f} s; "
            f"schema {schema}"
        )
        process, port = start_reporting(schema, units_file, workdir / "reporting.log", python)
        print(f"reporting: pid {process.pid}, port {port}, {python}; median of {runs} run(s)\n")
        if index_only:
            await index_section(port, runs)
            return

        for conditional in (False, True):
            label = "snapshot with If-None-Match (304)" if conditional else "snapshot without If-None-Match (200)"
            result, all_runs = await repeat(runs, lambda c=conditional: snapshot_load(port, c))  # type: ignore[misc]
            print(
                f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms "
                f"[{SNAPSHOT_CLIENTS} clients, statuses {result.statuses}; runs p99: "
                f"{', '.join(f'{r.p99_ms:.1f}' for r in all_runs)}]"
            )

        for conditional in (False, True):
            label = "paced, with If-None-Match (304)" if conditional else "paced, without If-None-Match (200)"
            result, all_runs = await repeat(runs, lambda c=conditional: snapshot_paced(port, c))  # type: ignore[misc]
            print(
                f"snapshot {label}: {result.rps:,.0f} req/s offered, p50 {result.p50_ms:.1f} ms, "
                f"p99 {result.p99_ms:.1f} ms [{SNAPSHOT_CLIENTS} clients x 1 request / "
                f"{PACED_INTERVAL * 1000:.0f} ms; runs p99: {', '.join(f'{r.p99_ms:.1f}' for r in all_runs)}]"
            )

        if shutil.which("wrk"):
            await wrk_section(schema, units_file, workdir, python, runs)

        result, all_runs = await repeat(runs, lambda: province_year(port))
        print(
            f"indicators, province (100 units) x 365 days: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms "
            f"[{PROVINCE_QUERIES} sequential queries; runs p99: {', '.join(f'{r.p99_ms:.1f}' for r in all_runs)}]"
        )

        await index_section(port, runs)

        held = 0
        for clients in SSE_STEPS[:2] if quick else SSE_STEPS:
            outcomes = [await sse_step(port, admin, clients) for _ in range(runs)]
            delivered = min(o[0] for o in outcomes)
            p50 = statistics.median(o[1] for o in outcomes)
            p99 = statistics.median(o[2] for o in outcomes)
            worst = statistics.median(o[3] for o in outcomes)
            ok = delivered == clients and worst < SSE_DEADLINE
            print(
                f"SSE {clients} clients: delivered {delivered}/{clients}, after commit p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms -> {'within 1 s' if ok else 'NOT within 1 s'}"
            )
            if not ok:
                break
            held = clients
        print(f"\nSSE clients held by one process with updates within 1 s: >= {held}")
    finally:
        await clean_up(process, admin, schema)


async def clean_up(process: subprocess.Popen[bytes] | None, admin: asyncpg.Connection, schema: str) -> None:
    """Stops the reporting process (SIGTERM, then SIGKILL after 30 s) and drops the schema."""
    if process is not None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await admin.close()


def wrk_snapshot(port: int, conditional: bool) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of wrk: 50 keep-alive connections, 10 s, closed loop."""
    url = f"http://{HOST}:{port}/v1/snapshot?unit=tinh"
    headers = ["-H", f"Authorization: Bearer {TOKEN}"]
    if conditional:
        etag = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).headers["etag"]
        headers += ["-H", f"If-None-Match: {etag}"]
    done = subprocess.run(
        ["wrk", "-t2", f"-c{SNAPSHOT_CLIENTS}", "-d10s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    def millis(label: str) -> float:
        value = re.search(rf"{label}%\s+([0-9.]+)(us|ms|s)", done.stdout)
        assert value, done.stdout
        return float(value[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[value[2]]

    rps = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    assert rps, done.stdout
    return float(rps[1]), millis("50"), millis("99")


async def wrk_section(schema: str, units_file: Path, workdir: Path, python: str, runs: int) -> None:
    """Snapshot load from wrk (a C client that costs the server little) on two reporting workers."""
    process, port = start_reporting(schema, units_file, workdir / "reporting-workers.log", python, workers=2)
    try:
        for conditional in (False, True):
            results = [wrk_snapshot(port, conditional) for _ in range(runs)]
            label = "304, If-None-Match" if conditional else "200"
            print(
                f"snapshot via wrk, 2 workers, {label}: {statistics.median(r[0] for r in results):,.0f} req/s, "
                f"p50 {statistics.median(r[1] for r in results):.1f} ms, "
                f"p99 {statistics.median(r[2] for r in results):.1f} ms "
                f"[{SNAPSHOT_CLIENTS} connections; runs p99: {', '.join(f'{r[2]:.1f}' for r in results)}]"
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--quick", action="store_true", help="SSE up to 1,000 clients only")
    parser.add_argument("--index766", action="store_true", help="only GET /v1/index766 for a province-year")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter of the service (e.g. one with uvloop and httptools)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    asyncio.run(main(max(1, arguments.runs), arguments.quick, arguments.python, arguments.index766))
