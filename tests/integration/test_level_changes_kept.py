"""Exact level changes are stored from the start of yesterday on (`pipeline.exact_levels_from`):
the figures of whole days come from the daily rows, the figures of today from exact instants, and
the rows a day leaves behind are deleted (`level_cut`) without changing any figure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime

import asyncpg
import pytest

from services.aggregator.level_cut import drop_past_level_changes
from services.aggregator.migrate import apply_migrations
from services.aggregator.pipeline import Batch, DeadLetter, IncomingEvent
from services.aggregator.store import AggregatorStore
from services.reporting.queries import IndicatorQueries
from shared.events import decode_event
from shared.timezone import end_of_day
from tests.conftest import DATABASE_URL, eventually
from tests.factories import received, resolved

pytestmark = pytest.mark.integration

NOW = datetime.fromisoformat("2026-12-04T10:00:00+07:00")
UNIT = "my-hao.minh-duc"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _batch(events: list[dict[str, object]]) -> Batch:
    raws = [json.dumps(event).encode() for event in events]
    batch = Batch(topic="events", ranges={0: (None, len(raws))})
    batch.events = [IncomingEvent.of(decode_event(raw), raw, 0, offset) for offset, raw in enumerate(raws)]
    return batch


async def _no_dead_letters(letters: Sequence[DeadLetter]) -> None:
    raise AssertionError(f"unexpected dead letters {letters}")


async def test_past_days_come_from_the_daily_rows_and_today_from_exact_instants(db_schema: str) -> None:
    events = [
        # Received, overdue from 8 March 17:00, resolved 10 March 2023: long past.
        received("lc-a", at="2023-03-01T08:00:00+07:00", due_at="2023-03-08T17:00:00+07:00"),
        resolved("lc-a", at="2023-03-10T10:00:00+07:00"),
        # Received yesterday, due tomorrow; received today at 08:00.
        received("lc-b", at="2026-12-03T09:00:00+07:00", due_at="2026-12-05T17:00:00+07:00"),
        received("lc-c", at="2026-12-04T08:00:00+07:00", due_at=None),
    ]
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2, server_settings={"search_path": db_schema})
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, db_schema)
        store = AggregatorStore(pool, db_schema, clock=lambda: NOW)
        assert store.levels_kept_from() == _at("2026-12-03T00:00:00+07:00")
        assert (await store.apply_batch(_batch(events), _no_dead_letters)).applied == 4

        async def instants() -> list[str]:
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT at FROM level_changes ORDER BY at")
            return [r["at"].astimezone(NOW.tzinfo).isoformat() for r in rows]

        assert await instants() == [
            "2026-12-03T09:00:00+07:00",
            "2026-12-04T08:00:00+07:00",
            "2026-12-05T17:00:00.000001+07:00",
        ]

        queries = IndicatorQueries(pool)

        async def levels(as_of: datetime) -> tuple[int, int]:
            counts = (await queries.counts_by_unit([UNIT], date(2023, 1, 1), as_of.date(), as_of)).get(UNIT, {})
            return counts.get("in_progress", 0), counts.get("in_progress_overdue", 0)

        assert await levels(end_of_day(date(2023, 3, 5))) == (1, 0)
        assert await levels(end_of_day(date(2023, 3, 9))) == (1, 1)
        assert await levels(end_of_day(date(2023, 3, 10))) == (0, 0)
        assert await levels(end_of_day(date(2026, 12, 3))) == (1, 0)
        assert await levels(_at("2026-12-04T07:59:59.999999+07:00")) == (1, 0)  # today, before lc-c
        assert await levels(NOW) == (2, 0)

        # Two days on, the batches keep changes from 5 December: the earlier rows are deleted, and
        # the whole days still read the same from the daily rows.
        later = AggregatorStore(pool, db_schema, clock=lambda: _at("2026-12-06T09:00:00+07:00"))
        assert await later.drop_level_changes_before(later.levels_kept_from()) == 2
        assert await instants() == ["2026-12-05T17:00:00.000001+07:00"]
        assert await levels(end_of_day(date(2026, 12, 3))) == (1, 0)
        assert await levels(end_of_day(date(2026, 12, 4))) == (2, 0)
        assert await levels(end_of_day(date(2026, 12, 5))) == (2, 1)
        assert await levels(_at("2026-12-05T17:00:00.000001+07:00")) == (2, 1)
        assert await levels(_at("2026-12-05T17:00:00+07:00")) == (2, 0)
    finally:
        await pool.close()


async def test_the_rows_behind_the_cut_are_deleted_at_start_and_then_every_interval(db_schema: str) -> None:
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2, server_settings={"search_path": db_schema})
    now = [NOW]
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, db_schema)
            # Rows from before the cut, as an installation stored them before it had one.
            await conn.executemany(
                "INSERT INTO level_changes (unit, at, in_progress) VALUES ($1, $2, 1)",
                [(UNIT, _at("2023-03-01T08:00:00+07:00")), (UNIT, _at("2026-12-03T09:00:00+07:00"))],
            )
        store = AggregatorStore(pool, db_schema, clock=lambda: now[0])
        task = asyncio.create_task(drop_past_level_changes(store, interval_seconds=0.05))

        async def remaining() -> list[datetime]:
            async with pool.acquire() as conn:
                return [r["at"] for r in await conn.fetch("SELECT at FROM level_changes ORDER BY at")]

        try:
            await eventually(lambda: _equal(remaining, [_at("2026-12-03T09:00:00+07:00")]), what="the 2023 row deleted")
            now[0] = _at("2026-12-05T00:00:00+07:00")  # the day turns: yesterday is now 4 December
            await eventually(lambda: _equal(remaining, []), what="the row of 3 December deleted")
        finally:
            task.cancel()
    finally:
        await pool.close()


async def _equal(read: Callable[[], Awaitable[list[datetime]]], expected: list[datetime]) -> bool:
    return await read() == expected
