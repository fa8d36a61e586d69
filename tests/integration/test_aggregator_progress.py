"""A lagging or stuck aggregator is visible: the lag per partition rises and falls during a burst,
and `/readyz` fails while a partition cannot move (its position row locked by another session)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from services.infra.kafka_admin import ensure_topics
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.factories import received
from tests.in_process import aggregator_app, metric_values, produce

pytestmark = pytest.mark.integration


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Total lag, max oldest-unapplied age and stalled partitions, as /metrics reports them."""
    text = (await client.get("/metrics")).text
    return {
        "lag": sum(metric_values(text, "tthc_aggregator_partition_lag_records")),
        "age": max(metric_values(text, "tthc_aggregator_oldest_unapplied_age_seconds"), default=0.0),
        "stalled": sum(metric_values(text, "tthc_aggregator_stalled_partitions")),
    }


async def test_lag_rises_and_falls_and_readyz_fails_while_a_partition_is_blocked(db_schema: str) -> None:
    topic, dlq = unique("events"), unique("dlq")
    partitions = 3
    await ensure_topics(KAFKA, {topic: partitions, dlq: 1})
    backlog = [received(f"lag-{i}") for i in range(6000)]
    await produce(KAFKA, topic, backlog)  # waiting before the aggregator starts: a burst to catch up on
    settings = {
        "kafka_bootstrap_servers": KAFKA,
        "events_topic": topic,
        "dead_letter_topic": dlq,
        "consumer_group": unique("g"),
        "database_url": DATABASE_URL,
        "database_schema": db_schema,
        "events_partitions": partitions,
        "max_batch_records": 300,  # several polls to drain the backlog
        "stall_after_seconds": 2.0,
    }
    async with aggregator_app(**settings) as client:
        seen: list[float] = []

        async def drained() -> bool:
            figures = await scrape(client)
            seen.append(figures["lag"])
            return bool(max(seen) > 0 and figures["lag"] == 0 and figures["age"] == 0)

        await eventually(drained, timeout=60, interval=0.02, what="lag seen above 0, then back to 0")
        assert max(seen) >= 300, seen  # at least a poll's worth was behind at some scrape
        await eventually(lambda: _ready(client), timeout=30, what="ready once caught up")

        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": db_schema})
        try:
            async with conn.transaction():
                # Another session holds the position row of partition 0: the aggregator's next batch
                # on it waits for the lock, as behind a hung transaction.
                await conn.execute(
                    "SELECT * FROM consumer_positions WHERE topic = $1 AND partition = 0 FOR UPDATE", topic
                )
                blocked = [
                    e for e in (received(f"blocked-{i}") for i in range(40)) if _partition_of(e, partitions) == 0
                ]
                await produce(KAFKA, topic, blocked)
                answer = await eventually(lambda: _not_ready(client), timeout=30, what="/readyz failing")
                assert "[0]" in answer["status"], answer
                figures = await scrape(client)
                assert figures["stalled"] == 1 and figures["lag"] >= 1 and figures["age"] >= 2.0, figures
        finally:
            await conn.close()
        await eventually(lambda: _ready(client), timeout=30, what="ready again once the lock is gone")
        figures = await scrape(client)
        assert figures == {"lag": 0.0, "age": 0.0, "stalled": 0.0}


def _partition_of(event: dict[str, Any], partitions: int) -> int:
    """The partition Kafka's default partitioner gives the event's key (murmur2, as aiokafka)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(event["subject"].encode()) & 0x7FFFFFFF) % partitions


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def _not_ready(client: httpx.AsyncClient) -> dict[str, str] | None:
    response = await client.get("/readyz")
    return json.loads(response.text) if response.status_code == 503 else None
