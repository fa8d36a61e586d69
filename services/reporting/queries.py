"""The read side: plain SQL over the counter tables the aggregator owns.

The driver's errors stop here: an unreachable server, a broken connection or a missing schema
come out as the service's own DatabaseUnavailable (retriable: the API answers 503).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ParamSpec, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.reporting.errors import DatabaseUnavailable
from services.reporting.index766_inputs import PROCEDURE_SUMS, year_masks
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS, DAILY_COUNTERS, LEVEL_COUNTERS
from shared.timezone import end_of_day, local_day, start_of_day

CountsByUnit = dict[str, dict[str, int]]
P = ParamSpec("P")
R = TypeVar("R")
Conn = asyncpg.Connection | PoolConnectionProxy


# Two plain aggregates rather than one with a FILTER per column: a third less time on a year of
# a province (every FILTER is evaluated for every row and column).
def _window_sql() -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in DAILY_COUNTERS)
    return f"SELECT unit, {sums} FROM daily_counts WHERE unit = ANY($1::text[]) AND day BETWEEN $2 AND $3 GROUP BY unit"


def _levels_sql() -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in LEVEL_COUNTERS)
    return f"SELECT unit, {sums} FROM daily_counts WHERE unit = ANY($1::text[]) AND day <= $2 GROUP BY unit"


def _partial_day_sql() -> str:
    levels = ", ".join(f"sum({c})::bigint AS {c}" for c in LEVEL_COUNTERS)
    return (
        f"SELECT unit, {levels} FROM level_changes WHERE unit = ANY($1::text[]) AND at >= $2 AND at <= $3 GROUP BY unit"
    )


def _monthly_sql() -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in DAILY_COUNTERS)
    return (
        f"SELECT extract(month FROM day)::int AS month, {sums} FROM daily_counts "
        "WHERE unit = ANY($1::text[]) AND day BETWEEN $2 AND $3 GROUP BY 1"
    )


def _cohorts_sql() -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COHORT_COUNTERS)
    return (
        f"SELECT unit, {sums} FROM cohort_changes "
        "WHERE unit = ANY($1::text[]) AND day BETWEEN $2 AND $3 AND at <= $4 GROUP BY unit"
    )


# The procedures of the units ($1) published at as_of ($2), with their flags (a set of periods:
# any period holding at as_of counts).
_PUBLISHED = """published AS (
    SELECT unit, procedure_code, bool_or(online) AS online, bool_or(fee_bearing) AS fee_bearing
    FROM procedure_periods
    WHERE unit = ANY($1::text[]) AND n > 0 AND starts_at <= $2 AND ends_at > $2
    GROUP BY unit, procedure_code
)"""


def _counts_of_used(used: Callable[[str], str]) -> str:
    """Per unit, the published procedures with each flag for which `used(counter)` holds."""
    online, fee_data, paid = PROCEDURE_SUMS
    return f"""SELECT p.unit,
       count(*) FILTER (WHERE p.online AND {used("received_online")})::bigint AS {online},
       count(*) FILTER (WHERE p.fee_bearing AND {used("fee_synced")})::bigint AS {fee_data},
       count(*) FILTER (WHERE p.fee_bearing AND {used("paid_online")})::bigint AS {paid}"""


# Decision 766, 3.2 and 3.5: per stored unit, the procedures published at as_of ($2) with the flag
# that had at least one such dossier on a day of the window: one AND of each procedure's year
# bitmap with the window's mask of that year ($3, $4).
def _procedures_used_sql() -> str:
    def used(counter: str) -> str:
        return (
            "EXISTS (SELECT 1 FROM procedure_years AS y JOIN masks AS m ON y.year = m.year "
            "WHERE y.unit = p.unit AND y.procedure_code = p.procedure_code "
            f"AND bit_count(y.{counter} & m.mask) > 0)"
        )

    return f"""
WITH masks AS (SELECT year, mask::bit(366) AS mask FROM unnest($3::int[], $4::text[]) AS m(year, mask)),
{_PUBLISHED}
{_counts_of_used(used)}
FROM published AS p GROUP BY p.unit
"""


# The same for a window within one year ($3, its mask $4), the usual case (a day, a month, a year
# to date): a procedure has at most one year row, so the rows are joined and counted per unit with
# no grouping per procedure, and a bitmap is tested only for procedures with the flag (a third of
# the time of the general query for a province-year, benchmarks/reporting_bench.py).
def _procedures_used_in_one_year_sql() -> str:
    def used(counter: str) -> str:
        return f"bit_count(y.{counter} & $4::text::bit(366)) > 0"

    return f"""
WITH {_PUBLISHED}
{_counts_of_used(used)}
FROM published AS p
JOIN procedure_years AS y ON y.unit = p.unit AND y.procedure_code = p.procedure_code AND y.year = $3
GROUP BY p.unit
"""


_WINDOW = _window_sql()
_COHORTS = _cohorts_sql()
_PROCEDURES_USED = _procedures_used_sql()
_PROCEDURES_USED_IN_ONE_YEAR = _procedures_used_in_one_year_sql()
_LEVELS = _levels_sql()
_PARTIAL_DAY = _partial_day_sql()
_MONTHLY = _monthly_sql()
# Every committed batch of the aggregator advances at least one partition's next_offset and
# stamps applied_at in the same transaction as its counter writes, so this triple changes with
# every change of the counters (a replay that rewinds offsets still moves applied_at).
_CHANGE_MARKER = (
    "SELECT count(*)::bigint AS positions, coalesce(sum(next_offset), 0)::bigint AS offsets, "
    "max(applied_at) AS last_applied_at FROM consumer_positions"
)
# The first instant after `$2` at which a level figure of these units changes by time alone.
_NEXT_LEVEL_CHANGE = "SELECT min(at) FROM level_changes WHERE unit = ANY($1::text[]) AND at > $2"


@dataclass(frozen=True)
class ChangeMarker:
    """Changes whenever the aggregator commits a batch (see _CHANGE_MARKER)."""

    positions: int
    offsets: int
    last_applied_at: datetime | None


@dataclass(frozen=True)
class ConsistentCounts:
    """Counts, the change marker and the next level change, read in one database snapshot."""

    counts: CountsByUnit
    marker: ChangeMarker
    next_level_change: datetime | None


# What says the database cannot answer now (rather than a bug in a query): connections refused or
# dropped, timeouts, a server starting or stopping, the tables not (yet) created.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.UndefinedTableError,
)


@contextmanager
def _unavailable_as(errors: tuple[type[BaseException], ...] = _UNAVAILABLE) -> Iterator[None]:
    try:
        yield
    except errors as exc:
        raise DatabaseUnavailable(f"database not reachable: {exc}") from exc


def _translated(query: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The query, raising DatabaseUnavailable instead of the driver's unavailability errors."""

    @functools.wraps(query)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        with _unavailable_as():
            return await query(*args, **kwargs)

    return translated


class IndicatorQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @_translated
    async def counts_by_unit(self, units: list[str], start: date, end: date, as_of: datetime) -> CountsByUnit:
        """Window counters over days [start, end] and level counters at `as_of`, per unit."""
        async with self._pool.acquire() as conn:
            return await _counts(conn, units, start, end, as_of)

    @_translated
    async def consistent_counts(self, units: list[str], start: date, end: date, as_of: datetime) -> ConsistentCounts:
        """`counts_by_unit`, the change marker and the next level change after `as_of`, all as of one instant."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            marker = await _marker(conn)
            counts = await _counts(conn, units, start, end, as_of)
            next_change: datetime | None = await conn.fetchval(_NEXT_LEVEL_CHANGE, units, as_of)
        return ConsistentCounts(counts, marker, next_change)

    @_translated
    async def index_sums(self, units: list[str], start: date, end: date, as_of: datetime) -> CountsByUnit:
        """Per stored unit, every sum the Decision 766 index needs (index766_inputs), in one snapshot.

        The per-procedure query (the heaviest: every procedure of the units) runs on a second
        connection that imports the first one's snapshot, alongside the counter queries, when the
        pool has a connection to spare (`_spare_connection`); otherwise after them on the first.
        """
        years, masks = zip(*year_masks(start, end), strict=True)
        if len(years) == 1:
            procedures_sql, procedures_args = _PROCEDURES_USED_IN_ONE_YEAR, (units, as_of, years[0], masks[0])
        else:
            procedures_sql, procedures_args = _PROCEDURES_USED, (units, as_of, list(years), list(masks))
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")

            async def counters() -> tuple[CountsByUnit, list[asyncpg.Record]]:
                return await _counts(conn, units, start, end, as_of), await conn.fetch(
                    _COHORTS, units, start, end, as_of
                )

            helper = await self._spare_connection()
            if helper is None:
                result, cohorts = await counters()
                procedures = await conn.fetch(procedures_sql, *procedures_args)
            else:
                try:
                    (result, cohorts), procedures = await asyncio.gather(
                        counters(), _fetch_in_snapshot(helper, snapshot, procedures_sql, procedures_args)
                    )
                finally:
                    # Without a timeout, release would reset the connection within the acquire's.
                    await self._pool.release(helper, timeout=_RELEASE_TIMEOUT)
        for rows in (cohorts, procedures):
            for r in rows:
                counts = result.setdefault(r["unit"], dict.fromkeys(ALL_COUNTERS, 0))
                for name, value in r.items():
                    if name != "unit":
                        counts[name] = counts.get(name, 0) + (value or 0)
        return result

    async def _spare_connection(self) -> asyncpg.pool.PoolConnectionProxy | None:
        """A second connection if the pool has one idle or room for one, else None (never waits on
        other requests: under load each request keeps to one connection)."""
        pool = self._pool
        if not pool.get_idle_size() and pool.get_size() >= pool.get_max_size():
            return None
        try:
            return await pool.acquire(timeout=_HELPER_WAIT)
        except TimeoutError:
            return None

    @_translated
    async def monthly_counts(self, units: list[str], year: int) -> dict[int, dict[str, int]]:
        """Daily counters summed per calendar month of `year` (months without counts are absent)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_MONTHLY, units, date(year, 1, 1), date(year, 12, 31))
        return {r["month"]: {c: r[c] or 0 for c in DAILY_COUNTERS} for r in rows}

    @_translated
    async def change_marker(self) -> ChangeMarker:
        async with self._pool.acquire() as conn:
            return await _marker(conn)

    async def last_applied_at(self) -> datetime | None:
        return (await self.change_marker()).last_applied_at

    async def ping(self) -> None:
        """Raises DatabaseUnavailable unless the server answers and the schema exists."""
        with _unavailable_as((*_UNAVAILABLE, asyncpg.PostgresError)):
            async with self._pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1 FROM schema_migrations LIMIT 1")


# How long index_sums waits for a spare connection (one being opened) before using only its own.
_HELPER_WAIT = 0.05
_RELEASE_TIMEOUT = 30.0
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def _fetch_in_snapshot(conn: Conn, snapshot: str, query: str, args: tuple[object, ...]) -> list[asyncpg.Record]:
    """Run `query` in a read-only transaction that sees exactly the exported `snapshot`."""
    if not _SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"not a snapshot identifier: {snapshot!r}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        return await conn.fetch(query, *args)


async def _marker(conn: Conn) -> ChangeMarker:
    row = await conn.fetchrow(_CHANGE_MARKER)
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return ChangeMarker(row["positions"], row["offsets"], row["last_applied_at"])


async def _counts(conn: Conn, units: list[str], start: date, end: date, as_of: datetime) -> CountsByUnit:
    as_of_day = local_day(as_of)
    whole_day = as_of == end_of_day(as_of_day)
    # Level changes of whole days come from the daily table; a partial day from exact instants.
    level_days_through = as_of_day if whole_day else as_of_day - timedelta(days=1)
    window = await conn.fetch(_WINDOW, units, start, end)
    levels = await conn.fetch(_LEVELS, units, level_days_through)
    partial = [] if whole_day else await conn.fetch(_PARTIAL_DAY, units, start_of_day(as_of_day), as_of)
    result: CountsByUnit = {}
    for rows in (window, levels, partial):
        for r in rows:
            counts = result.setdefault(r["unit"], dict.fromkeys(ALL_COUNTERS, 0))
            for counter, value in r.items():
                if counter != "unit":
                    counts[counter] += value or 0
    return result
