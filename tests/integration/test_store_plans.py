"""The aggregator's pool plans every statement for the tables as they are, never with a cached
generic plan: on a fresh stack that plan would be the one PostgreSQL made for empty tables."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from services.aggregator.app import open_pool
from services.aggregator.config import AggregatorSettings
from services.aggregator.migrate import apply_migrations
from services.aggregator.store import AggregatorStore, Batch, DeadLetter, IncomingEvent
from shared.events import decode_event
from tests.conftest import DATABASE_URL
from tests.factories import received

pytestmark = pytest.mark.integration

# PostgreSQL considers a generic plan from a prepared statement's sixth execution on.
BATCHES = 8


async def _no_letters(letters: Sequence[DeadLetter]) -> None:
    raise AssertionError(f"unexpected dead letters: {letters}")


async def test_repeated_batches_on_a_fresh_schema_get_custom_plans_only(db_schema: str) -> None:
    settings = AggregatorSettings(database_url=DATABASE_URL, database_schema=db_schema, db_pool_size=1)
    pool = await open_pool(settings)  # one connection: every batch reuses its prepared statements
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, db_schema)
        store = AggregatorStore(pool, db_schema)
        start: int | None = None
        for number in range(BATCHES):
            raws = [json.dumps(received(f"plan-{number}-{i}")).encode() for i in range(3)]
            end = (start or 0) + len(raws)
            batch = Batch(topic="events", ranges={0: (start, end)})
            batch.events = [
                IncomingEvent.of(decode_event(raw), raw, 0, (start or 0) + i) for i, raw in enumerate(raws)
            ]
            result = await store.apply_batch(batch, _no_letters)
            assert result.applied == len(raws)
            start = end
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            # A statement without parameters has one plan whatever the mode: those are left out.
            plans = await conn.fetch(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE NOT from_sql AND cardinality(parameter_types) > 0"
            )
    finally:
        await pool.close()
    states = [p for p in plans if "FROM aggregate_states" in p["statement"]]
    assert states and all(p["custom_plans"] >= BATCHES for p in states), plans
    assert [p["statement"] for p in plans if p["generic_plans"]] == []
