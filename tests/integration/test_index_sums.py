"""The Decision 766 sums read in one snapshot, whether the per-procedure query runs on a second
connection that imports it or after the others on the same one, and whether the window lies in one
year or spans two (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import asyncpg
import pytest

from services.aggregator.migrate import apply_migrations
from services.reporting.queries import IndicatorQueries
from shared.timezone import end_of_day, start_of_day
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 2)
MONTH = DAY.replace(day=1)


async def _fill(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO daily_counts (unit, day, received, synced) VALUES ('a', $1, 5, 4)", DAY)
    await conn.execute(
        "INSERT INTO cohort_changes (unit, day, at, handled_ended, handled_ended_on_time) VALUES ('a', $1, $2, 3, 2)",
        DAY,
        start_of_day(DAY) + timedelta(hours=9),
    )
    # Their monthly roll-ups, as the aggregator keeps them beside.
    await conn.execute("INSERT INTO monthly_counts (unit, month, received, synced) VALUES ('a', $1, 5, 4)", MONTH)
    await conn.execute(
        "INSERT INTO monthly_cohorts (unit, month, last_at, handled_ended, handled_ended_on_time) "
        "VALUES ('a', $1, $2, 3, 2)",
        MONTH,
        start_of_day(DAY) + timedelta(hours=9),
    )
    mask = "0" * (DAY.timetuple().tm_yday - 1) + "1" + "0" * (366 - DAY.timetuple().tm_yday)
    zeros = "0" * 366
    for code, online in (("p1", True), ("p2", True), ("p3", False)):
        await conn.execute(
            "INSERT INTO procedure_periods (unit, procedure_code, starts_at, ends_at, online, fee_bearing, n) "
            "VALUES ('a', $1, $2, 'infinity', $3, true, 1)",
            code,
            datetime(2026, 1, 1, tzinfo=start_of_day(DAY).tzinfo),
            online,
        )
        await conn.execute(
            "INSERT INTO procedure_years (unit, procedure_code, year, received_online, fee_synced, paid_online) "
            "VALUES ('a', $1, 2026, $2::text::bit(366), $3::text::bit(366), $3::text::bit(366))",
            code,
            mask if code != "p2" else zeros,
            mask,
        )
    # p2 received online on 15 December 2025 only: used in a window across the new year, not in 2026.
    december = "0" * 348 + "1" + "0" * 17
    await conn.execute(
        "INSERT INTO procedure_years (unit, procedure_code, year, received_online, fee_synced, paid_online) "
        "VALUES ('a', 'p2', 2025, $1::text::bit(366), $2::text::bit(366), $2::text::bit(366))",
        december,
        "0" * 366,
    )


@pytest.fixture
async def filled(db_schema: str) -> str:
    """A migrated schema holding a unit's counters, one cohort row and three procedures."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await apply_migrations(conn, db_schema)
        await conn.execute(f'SET search_path TO "{db_schema}"')
        await _fill(conn)
    finally:
        await conn.close()
    return db_schema


async def test_the_sums_are_the_same_with_one_connection_or_two(filled: str) -> None:
    db_schema = filled
    sums = []
    # One connection: no helper for the procedures query, it waits its turn; two: one helper; four:
    # the procedures query split in two (unit "b" has no rows).
    for size in (1, 2, 4):
        pool = await asyncpg.create_pool(
            DATABASE_URL, min_size=1, max_size=size, server_settings={"search_path": db_schema}
        )
        try:
            results = await asyncio.gather(
                *(IndicatorQueries(pool).index_sums(["a", "b"], DAY, DAY, end_of_day(DAY)) for _ in range(3))
            )
        finally:
            await pool.close()
        assert results[0] == results[1] == results[2]
        sums.append(results[0])
    assert sums[0] == sums[1] == sums[2]
    a = sums[0]["a"]
    assert (a["received"], a["synced"], a["handled_ended"], a["handled_ended_on_time"]) == (5, 4, 3, 2)
    assert a["procedures_online_used"] == 1  # p1: online and used; p2 online, not used; p3 not online
    assert a["procedures_fee_bearing_with_fee_data"] == 3 and a["procedures_fee_bearing_paid_online"] == 3


async def test_a_window_across_two_years_sees_the_days_of_both(filled: str) -> None:
    db_schema = filled
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2, server_settings={"search_path": db_schema})
    try:
        queries = IndicatorQueries(pool)
        across = await queries.index_sums(["a"], date(2025, 12, 1), DAY, end_of_day(DAY))
        december = await queries.index_sums(["a"], date(2025, 12, 1), date(2025, 12, 31), end_of_day(DAY))
        january = await queries.index_sums(["a"], date(2026, 1, 1), date(2026, 1, 31), end_of_day(DAY))
    finally:
        await pool.close()
    assert across["a"]["procedures_online_used"] == 2  # p1 in March 2026, p2 in December 2025
    assert december["a"]["procedures_online_used"] == 1  # p2 only (one-year query)
    assert january["a"].get("procedures_online_used", 0) == 0
    assert across["a"]["procedures_fee_bearing_with_fee_data"] == 3
