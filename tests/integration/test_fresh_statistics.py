"""On a fresh schema the aggregator analyzes its tables itself once it has applied a few thousand
events, so its batch statements are planned on the tables as they are, not on empty ones."""

from __future__ import annotations

import pytest

from services.aggregator.consumer import ANALYZE_AFTER_EVENTS
from services.infra.kafka_admin import ensure_topics
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.factories import received
from tests.in_process import produce, running_aggregator

pytestmark = pytest.mark.integration


async def test_the_tables_are_analyzed_after_the_first_mark(db_schema: str) -> None:
    topic, dlq = unique("events"), unique("dlq")
    await ensure_topics(KAFKA, {topic: 2, dlq: 1})
    async with running_aggregator(
        kafka_bootstrap_servers=KAFKA,
        events_topic=topic,
        dead_letter_topic=dlq,
        consumer_group=unique("g"),
        database_url=DATABASE_URL,
        database_schema=db_schema,
        events_partitions=2,
    ) as (_, pool):

        async def analyzed() -> set[str]:
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = $1 AND last_analyze IS NOT NULL",
                    db_schema,
                )
            return {r["relname"] for r in rows}

        async def all_analyzed() -> bool:
            # One ANALYZE statement covers the tables one after another, and each table's statistics
            # become visible on their own: wait for all of them, not for the first.
            return {"aggregate_states", "event_identities", "daily_counts"} <= await analyzed()

        assert await analyzed() == set()  # not yet (autovacuum's analyses are last_autoanalyze)
        await produce(KAFKA, topic, [received(f"st-{i}") for i in range(ANALYZE_AFTER_EVENTS[0] + 100)])
        await eventually(all_analyzed, timeout=60, interval=0.2, what="the tables analyzed")
        async with pool.acquire() as conn:
            states = await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'aggregate_states'::regclass")
        assert states > 0  # the planner now knows the table is not empty
