"""Runs real services for tests: an in-process aggregator, the intake app, topic inspection."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.app import create_app as create_aggregator_app
from services.aggregator.config import AggregatorSettings
from services.aggregator.consumer import EventConsumer
from services.aggregator.migrate import apply_migrations
from services.aggregator.store import AggregatorStore, open_pool
from services.infra.kafka_admin import ensure_topics, topic_partitions
from services.intake.app import create_app as create_intake_app
from services.intake.config import IntakeSettings
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS


@asynccontextmanager
async def running_aggregator(**settings: Any) -> AsyncIterator[tuple[AggregatorSettings, asyncpg.Pool]]:
    """An aggregator instance running in this event loop until the block ends."""
    from aiokafka import AIOKafkaProducer

    config = AggregatorSettings(**settings)
    pool = await open_pool(config)
    async with pool.acquire() as conn:
        await apply_migrations(conn, config.database_schema)
    await ensure_topics(
        config.kafka_bootstrap_servers, {config.events_topic: config.events_partitions, config.dead_letter_topic: 1}
    )
    producer = AIOKafkaProducer(bootstrap_servers=config.kafka_bootstrap_servers, enable_idempotence=True)
    await producer.start()
    consumer = EventConsumer(
        config,
        AggregatorStore(pool, config.database_schema, exact_levels_since=config.exact_level_changes_since),
        producer,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield config, pool
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=30)
        await producer.stop()
        await pool.close()


@asynccontextmanager
async def _served(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served in this event loop (lifespan included) behind an httpx client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def intake_client(**settings: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The intake app served in-process behind an httpx client."""
    return _served(create_intake_app(IntakeSettings(**settings)), "http://intake")


def aggregator_app(**settings: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The aggregator's app (consumer and health routes) in this event loop, behind an httpx client."""
    return _served(create_aggregator_app(AggregatorSettings(**settings)), "http://aggregator")


def metric_values(text: str, name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> list[float]:
    """The values of the samples called `name` in a Prometheus text exposition, filtered by labels."""
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and where(sample.labels)
    ]


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        offsets = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


async def read_records(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topic, from the beginning to the current end."""
    ends = await end_offsets(bootstrap, topic)
    found: list[ConsumerRecord[bytes, bytes]] = []
    wanted = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
    if not wanted:
        return found
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        remaining = {tp: ends[tp.partition] for tp in wanted}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                found.extend(records)
                if records and records[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
        return found
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value in the topic, from the beginning to the current end."""
    return [r.value for r in await read_records(bootstrap, topic) if r.value is not None]


async def positions_caught_up(pool: asyncpg.Pool, topic: str, ends: dict[int, int]) -> bool:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT partition, next_offset FROM consumer_positions WHERE topic = $1", topic)
    stored = {r["partition"]: r["next_offset"] for r in rows}
    return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)


async def daily_counts_table(pool: asyncpg.Pool) -> Counter[tuple[str, str, date]]:
    """The aggregator's daily_counts as (unit, counter, day) -> count, zero cells left out."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM daily_counts")
    table: Counter[tuple[str, str, date]] = Counter()
    for row in rows:
        for counter in ALL_COUNTERS:
            if row[counter]:
                table[(row["unit"], counter, row["day"])] += row[counter]
    return table


def _roll_up_differences_sql() -> str:
    """Rows of the monthly roll-ups that differ from the sums of the rows they roll up (both ways)."""
    month = "day - extract(day FROM day)::int + 1"
    daily = ", ".join(ALL_COUNTERS)
    daily_sums = ", ".join(f"sum({c})::bigint" for c in ALL_COUNTERS)
    cohort = ", ".join(COHORT_COUNTERS)
    cohort_sums = ", ".join(f"sum({c})::bigint" for c in COHORT_COUNTERS)
    summed_daily = f"SELECT unit, {month} AS month, {daily_sums} FROM daily_counts GROUP BY 1, 2"
    summed_cohorts = f"SELECT unit, {month} AS month, {cohort_sums} FROM cohort_changes GROUP BY 1, 2"
    stored_daily = f"SELECT unit, month, {daily} FROM monthly_counts"
    stored_cohorts = f"SELECT unit, month, {cohort} FROM monthly_cohorts"
    counted = " OR ".join(f"c.{name} <> 0" for name in COHORT_COUNTERS)
    # last_at must be at or after every instant with a count in its month (a bound: see 0004).
    late_rows = (
        "SELECT 1 FROM cohort_changes AS c LEFT JOIN monthly_cohorts AS m "
        "ON m.unit = c.unit AND m.month = c.day - extract(day FROM c.day)::int + 1 "
        f"WHERE ({counted}) AND (m.last_at IS NULL OR m.last_at < c.at)"
    )
    return f"""SELECT
    (SELECT count(*) FROM (({summed_daily} EXCEPT ALL {stored_daily})
                           UNION ALL ({stored_daily} EXCEPT ALL {summed_daily})) AS d) AS monthly_counts,
    (SELECT count(*) FROM (({summed_cohorts} EXCEPT ALL {stored_cohorts})
                           UNION ALL ({stored_cohorts} EXCEPT ALL {summed_cohorts})) AS c) AS monthly_cohorts,
    (SELECT count(*) FROM ({late_rows}) AS l) AS cohort_rows_after_last_at,
    (SELECT count(*) FROM monthly_counts) AS months"""


async def roll_up_differences(pool: asyncpg.Pool) -> dict[str, int]:
    """How many monthly roll-up rows differ from the daily and cohort rows they sum (read in one
    snapshot), and how many months there are (so that a test sees it compared something)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(_roll_up_differences_sql())
    assert row is not None
    return dict(row)


async def overlapping_periods(pool: asyncpg.Pool) -> int:
    """Pairs of stored periods of one procedure that both hold at some instant (the per-procedure
    query of the reporting service counts each procedure once on the premise that there are none)."""
    async with pool.acquire() as conn:
        value = await conn.fetchval(
            "SELECT count(*) FROM procedure_periods AS a JOIN procedure_periods AS b "
            "ON a.unit = b.unit AND a.procedure_code = b.procedure_code AND a.n > 0 AND b.n > 0 "
            "AND (a.starts_at, a.ends_at, a.online, a.fee_bearing) < (b.starts_at, b.ends_at, b.online, b.fee_bearing) "
            "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
        )
    return int(value)


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Publish events as the intake does: canonical JSON, keyed by subject, idempotent producer."""
    from aiokafka import AIOKafkaProducer

    from shared.events import encode_event, event_adapter

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=20)
    await producer.start()
    try:
        futures = []
        for raw in events:
            model = event_adapter.validate_python(raw, strict=False)
            futures.append(await producer.send(topic, value=encode_event(model), key=model.subject.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
