"""The read side: plain SQL over the counter tables the aggregator owns."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from shared.counters import DAILY_COUNTERS, LEVEL_COUNTERS
from shared.timezone import end_of_day, local_day, start_of_day

CountsByUnit = dict[str, dict[str, int]]


def _counts_sql() -> str:
    window = ", ".join(
        f"coalesce(sum({c}) FILTER (WHERE day BETWEEN $2 AND $3), 0)::bigint AS {c}" for c in DAILY_COUNTERS
    )
    levels = ", ".join(f"coalesce(sum({c}) FILTER (WHERE day <= $4), 0)::bigint AS {c}" for c in LEVEL_COUNTERS)
    return (
        f"SELECT unit, {window}, {levels} FROM daily_counts "
        "WHERE unit = ANY($1::text[]) AND (day BETWEEN $2 AND $3 OR day <= $4) GROUP BY unit"
    )


def _partial_day_sql() -> str:
    levels = ", ".join(f"sum({c})::bigint AS {c}" for c in LEVEL_COUNTERS)
    return (
        f"SELECT unit, {levels} FROM level_changes WHERE unit = ANY($1::text[]) AND at >= $2 AND at <= $3 GROUP BY unit"
    )


_COUNTS = _counts_sql()
_PARTIAL_DAY = _partial_day_sql()


class IndicatorQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def counts_by_unit(self, units: list[str], start: date, end: date, as_of: datetime) -> CountsByUnit:
        """Window counters over days [start, end] and level counters at `as_of`, per unit."""
        as_of_day = local_day(as_of)
        whole_day = as_of == end_of_day(as_of_day)
        # Level changes of whole days come from the daily table; a partial day from exact instants.
        level_days_through = as_of_day if whole_day else as_of_day - timedelta(days=1)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_COUNTS, units, start, end, level_days_through)
            partial = [] if whole_day else await conn.fetch(_PARTIAL_DAY, units, start_of_day(as_of_day), as_of)
        result: CountsByUnit = {r["unit"]: {k: v for k, v in r.items() if k != "unit"} for r in rows}
        for r in partial:
            counts = result.setdefault(r["unit"], dict.fromkeys(DAILY_COUNTERS + LEVEL_COUNTERS, 0))
            for counter in LEVEL_COUNTERS:
                counts[counter] += r[counter] or 0
        return result

    async def last_applied_at(self) -> datetime | None:
        async with self._pool.acquire() as conn:
            value: datetime | None = await conn.fetchval("SELECT max(applied_at) FROM consumer_positions")
        return value

    async def ping(self) -> None:
        async with self._pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1 FROM schema_migrations LIMIT 1")
