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
from services.reporting.month_parts import first_of_month, window_parts
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS, DAILY_COUNTERS, LEVEL_COUNTERS
from shared.timezone import end_of_day, local_day, start_of_day

CountsByUnit = dict[str, dict[str, int]]
P = ParamSpec("P")
R = TypeVar("R")
Conn = asyncpg.Connection | PoolConnectionProxy


# Whole months come from the monthly roll-ups, the days at the window's edges from daily_counts
# (month_parts). Plain aggregates rather than one with a FILTER per column: a third less time on a
# year of a province (every FILTER is evaluated for every row and column).
def _window_sql() -> str:
    cols = ", ".join(DAILY_COUNTERS)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in DAILY_COUNTERS)
    return f"""SELECT unit, {sums} FROM (
    SELECT unit, {cols} FROM monthly_counts WHERE unit = ANY($1::text[]) AND month BETWEEN $2 AND $3
    UNION ALL
    SELECT unit, {cols} FROM daily_counts WHERE unit = ANY($1::text[]) AND day BETWEEN $4 AND $5
    UNION ALL
    SELECT unit, {cols} FROM daily_counts WHERE unit = ANY($1::text[]) AND day BETWEEN $6 AND $7
) AS parts GROUP BY unit"""


# The level counters through a day ($3): the months before its month ($2) and its month's days.
def _levels_sql() -> str:
    cols = ", ".join(LEVEL_COUNTERS)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in LEVEL_COUNTERS)
    return f"""SELECT unit, {sums} FROM (
    SELECT unit, {cols} FROM monthly_counts WHERE unit = ANY($1::text[]) AND month < $2
    UNION ALL
    SELECT unit, {cols} FROM daily_counts WHERE unit = ANY($1::text[]) AND day BETWEEN $2 AND $3
) AS parts GROUP BY unit"""


def _partial_day_sql() -> str:
    levels = ", ".join(f"sum({c})::bigint AS {c}" for c in LEVEL_COUNTERS)
    return (
        f"SELECT unit, {levels} FROM level_changes WHERE unit = ANY($1::text[]) AND at >= $2 AND at <= $3 GROUP BY unit"
    )


def _monthly_sql() -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in DAILY_COUNTERS)
    return (
        f"SELECT extract(month FROM month)::int AS month, {sums} FROM monthly_counts "
        "WHERE unit = ANY($1::text[]) AND month BETWEEN $2 AND $3 GROUP BY 1"
    )


# The cohort changes of the window's days known at as_of ($8): a whole month from its roll-up when
# its latest change is known by then, else from its exact rows; the edge days from exact rows.
def _cohorts_sql() -> str:
    cols = ", ".join(COHORT_COUNTERS)
    exact = ", ".join(f"c.{c}" for c in COHORT_COUNTERS)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COHORT_COUNTERS)
    return f"""SELECT unit, {sums} FROM (
    SELECT unit, {cols} FROM monthly_cohorts
    WHERE unit = ANY($1::text[]) AND month BETWEEN $2 AND $3 AND last_at <= $8
    UNION ALL
    SELECT c.unit, {exact} FROM monthly_cohorts AS m
    JOIN cohort_changes AS c ON c.unit = m.unit AND c.day >= m.month AND c.day < (m.month + interval '1 month')::date
    WHERE m.unit = ANY($1::text[]) AND m.month BETWEEN $2 AND $3 AND m.last_at > $8 AND c.at <= $8
    UNION ALL
    SELECT unit, {cols} FROM cohort_changes WHERE unit = ANY($1::text[]) AND day BETWEEN $4 AND $5 AND at <= $8
    UNION ALL
    SELECT unit, {cols} FROM cohort_changes WHERE unit = ANY($1::text[]) AND day BETWEEN $6 AND $7 AND at <= $8
) AS parts GROUP BY unit"""


def _parts_args(start: date, end: date) -> tuple[date, ...]:
    """$2 to $7 of the window and cohort queries: the whole months, the head and the tail."""
    parts = window_parts(start, end)
    return (*parts.months, *parts.head, *parts.tail)


# The procedures of the units ($1) published at as_of ($2), with their flags. Periods are a set
# (`n` is 1 for a period a procedure's state holds, 0 for one a correction replaced), and one
# state's periods never overlap (aggregator domain, `_published_periods`): at most one row per
# procedure holds at as_of. MATERIALIZED: joined with the year rows by hashing, where the planner
# would otherwise probe the years' key once per procedure (twice as slow for a province).
_PUBLISHED = """published AS MATERIALIZED (
    SELECT unit, procedure_code, online, fee_bearing
    FROM procedure_periods
    WHERE unit = ANY($1::text[]) AND n > 0 AND starts_at <= $2 AND ends_at > $2
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
# bitmap with the window's mask of that year. The general case, any number of years ($3, $4).
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


# The usual windows lie in one year ($3, its mask $4: a day, a month, a year to date) or two ($3,
# $4 and $5, $6: the last 365 days): each procedure is joined with its row of each year, and a
# bitmap is tested only for procedures with the flag (benchmarks/reporting_bench.py).
def _procedures_used_in_one_year_sql() -> str:
    def used(counter: str) -> str:
        return f"bit_count(y.{counter} & $4::text::bit(366)) > 0"

    return f"""
WITH {_PUBLISHED}
{_counts_of_used(used)}
FROM published AS p
JOIN procedure_years AS y ON y.unit = p.unit AND y.procedure_code = p.procedure_code AND y.year = $3
WHERE y.unit = ANY($1::text[])
GROUP BY p.unit
"""


def _procedures_used_in_two_years_sql() -> str:
    def used(counter: str) -> str:
        return (
            f"coalesce(bit_count(a.{counter} & $4::text::bit(366)), 0) "
            f"+ coalesce(bit_count(b.{counter} & $6::text::bit(366)), 0) > 0"
        )

    return f"""
WITH {_PUBLISHED}
{_counts_of_used(used)}
FROM published AS p
LEFT JOIN procedure_years AS a
    ON a.unit = p.unit AND a.procedure_code = p.procedure_code AND a.year = $3 AND a.unit = ANY($1::text[])
LEFT JOIN procedure_years AS b
    ON b.unit = p.unit AND b.procedure_code = p.procedure_code AND b.year = $5 AND b.unit = ANY($1::text[])
GROUP BY p.unit
"""


def _procedures_query(as_of: datetime, start: date, end: date) -> tuple[str, tuple[object, ...]]:
    """The per-procedure query for the window and its arguments after the units."""
    masks = year_masks(start, end)
    if len(masks) == 1:
        ((year, mask),) = masks
        return _PROCEDURES_USED_IN_ONE_YEAR, (as_of, year, mask)
    if len(masks) == 2:
        (first, first_mask), (second, second_mask) = masks
        return _PROCEDURES_USED_IN_TWO_YEARS, (as_of, first, first_mask, second, second_mask)
    years, year_mask_texts = zip(*masks, strict=True)
    return _PROCEDURES_USED, (as_of, list(years), list(year_mask_texts))


_WINDOW = _window_sql()
_COHORTS = _cohorts_sql()
_PROCEDURES_USED = _procedures_used_sql()
_PROCEDURES_USED_IN_ONE_YEAR = _procedures_used_in_one_year_sql()
_PROCEDURES_USED_IN_TWO_YEARS = _procedures_used_in_two_years_sql()
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

        The per-procedure query (the heaviest: every procedure of the units) runs alongside the
        counter queries, split by units over up to PROCEDURE_PARTS more connections that import
        the first one's snapshot, as far as the pool has connections to spare
        (`_spare_connections`); without one, after them on the first connection.
        """
        procedures_sql, procedures_args = _procedures_query(as_of, start, end)
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")

            async def counters() -> tuple[CountsByUnit, list[asyncpg.Record]]:
                return await _counts(conn, units, start, end, as_of), await conn.fetch(
                    _COHORTS, units, *_parts_args(start, end), as_of
                )

            helpers = await self._spare_connections(min(PROCEDURE_PARTS, len(units)))
            if not helpers:
                result, cohorts = await counters()
                procedures = await conn.fetch(procedures_sql, units, *procedures_args)
            else:

                async def procedure_rows() -> list[asyncpg.Record]:
                    parts = await asyncio.gather(
                        *(
                            _fetch_in_snapshot(helper, snapshot, procedures_sql, (part, *procedures_args))
                            for helper, part in zip(helpers, _split(units, len(helpers)), strict=True)
                        )
                    )
                    return [row for part in parts for row in part]

                try:
                    (result, cohorts), procedures = await asyncio.gather(counters(), procedure_rows())
                finally:
                    # Without a timeout, release would reset the connection within the acquire's.
                    for helper in helpers:
                        await self._pool.release(helper, timeout=_RELEASE_TIMEOUT)
        for rows in (cohorts, procedures):
            for r in rows:
                counts = result.setdefault(r["unit"], dict.fromkeys(ALL_COUNTERS, 0))
                for name, value in r.items():
                    if name != "unit":
                        counts[name] = counts.get(name, 0) + (value or 0)
        return result

    async def _spare_connections(self, wanted: int) -> list[asyncpg.pool.PoolConnectionProxy]:
        """Up to `wanted` more connections, each only if the pool has one idle or room for one
        (never waits on other requests: under load each request keeps to one connection)."""
        helpers: list[asyncpg.pool.PoolConnectionProxy] = []
        pool = self._pool
        while len(helpers) < wanted and (pool.get_idle_size() or pool.get_size() < pool.get_max_size()):
            try:
                helpers.append(await pool.acquire(timeout=_HELPER_WAIT))
            except TimeoutError:
                break
        return helpers

    @_translated
    async def monthly_counts(self, units: list[str], year: int) -> dict[int, dict[str, int]]:
        """Daily counters summed per calendar month of `year` (months without counts are absent)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_MONTHLY, units, date(year, 1, 1), date(year, 12, 1))
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
# Into how many parts index_sums splits the per-procedure query (by units), at most.
PROCEDURE_PARTS = 2
_RELEASE_TIMEOUT = 30.0
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


def _split(units: list[str], parts: int) -> list[list[str]]:
    """`units` dealt into `parts` non-empty lists (parts <= len(units)): neighbours, often of one
    district, go to different parts."""
    return [units[i::parts] for i in range(parts)]


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
    window = await conn.fetch(_WINDOW, units, *_parts_args(start, end))
    levels = await conn.fetch(_LEVELS, units, first_of_month(level_days_through), level_days_through)
    partial = [] if whole_day else await conn.fetch(_PARTIAL_DAY, units, start_of_day(as_of_day), as_of)
    result: CountsByUnit = {}
    for rows in (window, levels, partial):
        for r in rows:
            counts = result.setdefault(r["unit"], dict.fromkeys(ALL_COUNTERS, 0))
            for counter, value in r.items():
                if counter != "unit":
                    counts[counter] += value or 0
    return result
