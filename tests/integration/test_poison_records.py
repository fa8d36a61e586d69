"""No record on the topic stops a partition (contract §6): poison is dead-lettered with its reason
and the valid events after it are counted; a PostgreSQL restart dead-letters nothing.

The records are produced straight to Kafka, as a writer other than the intake could: the intake
would refuse most of them with a 422.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from services.infra.kafka_admin import ensure_topics
from shared.topics import DEAD_LETTER_REASON_HEADER
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.factories import received
from tests.in_process import end_offsets, positions_caught_up, running_aggregator
from tests.infra import private_postgres
from tests.integration.test_dead_letters import dead_letters
from tests.subprocesses import free_port

pytestmark = pytest.mark.integration

# A dossier id PostgreSQL refuses in this test's schema (a check constraint the test adds): it
# stands for any value the server cannot store, a class 23 error on the event's own data.
REFUSED = "refused-by-the-server"


def _with(event: dict[str, Any], path: str, value: Any) -> bytes:
    """The event as JSON with one attribute (`data.x` for a data field) set to `value`."""
    copy = json.loads(json.dumps(event))
    target = copy
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    target[last] = value
    return json.dumps(copy).encode()


def poison_records() -> list[tuple[str, bytes, bytes]]:
    """(what, record key, value) of every kind of poison, each keyed like the dossier it names."""
    base = received("pz-poison")
    records = [
        ("NUL in id", _with(base, "id", "evt\u0000x")),
        ("NUL in source", _with(base, "source", "urn:vn:test\u0000")),
        ("NUL in dossier_id", _with(base, "data.dossier_id", "pz\u0000poison")),
        ("NUL in procedure_code", _with(base, "data.procedure_code", "1.00\u00001612")),
        ("year 1 time", _with(base, "time", "0001-01-01T00:00:00+07:00")),
        ("year 1 received_at", _with(base, "data.received_at", "0001-01-01T00:00:00+07:00")),
        ("year 9999 due_at", _with(base, "data.due_at", "9999-12-31T23:59:59-12:00")),
        ("invalid JSON", b'{"specversion": "1.0", "id": '),
        ("wrong type", _with(base, "data.channel", 42)),
        ("wrong type of data", _with(base, "data", [1, 2])),
        ("refused by PostgreSQL", json.dumps(received(REFUSED)).encode()),
    ]
    return [(what, (REFUSED if "PostgreSQL" in what else "pz-poison").encode(), value) for what, value in records]


async def refuse_in_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            f"ALTER TABLE aggregate_states ADD CONSTRAINT refuses_a_dossier CHECK (strpos(key, '{REFUSED}') = 0)"
        )


def failed_batches() -> float:
    return REGISTRY.get_sample_value("tthc_aggregator_batches_total", {"outcome": "failed"}) or 0.0


async def _produce(topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key, partition=0)
    finally:
        await producer.stop()


async def _received_total(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT coalesce(sum(received), 0) FROM daily_counts"))


async def test_each_poison_is_dead_lettered_with_its_reason_and_the_valid_event_after_it_is_counted(
    db_schema: str,
) -> None:
    topic, dlq = unique("events"), unique("dlq")
    await ensure_topics(KAFKA, {topic: 1, dlq: 1})
    poison = poison_records()
    records: list[tuple[bytes, bytes]] = []
    for i, (_what, key, value) in enumerate(poison):
        records.append((key, value))
        valid = received(f"pz-valid-{i}")
        records.append((valid["subject"].encode(), json.dumps(valid).encode()))
    failed_before = failed_batches()

    async with running_aggregator(
        kafka_bootstrap_servers=KAFKA,
        events_topic=topic,
        dead_letter_topic=dlq,
        consumer_group=unique("g"),
        database_url=DATABASE_URL,
        database_schema=db_schema,
        events_partitions=1,
    ) as (_, pool):
        await refuse_in_schema(pool)
        await _produce(topic, records)
        ends = await end_offsets(KAFKA, topic)
        await eventually(lambda: positions_caught_up(pool, topic, ends), timeout=30, what="the partition goes on")
        assert await _received_total(pool) == len(poison)  # every valid event, nothing of the poison

    letters = await eventually(lambda: _at_least(dlq, len(poison)), timeout=30, what=f"{len(poison)} dead letters")
    by_value = {value: headers[DEAD_LETTER_REASON_HEADER].decode() for value, headers in letters}
    assert len(letters) == len(poison)
    for what, _key, value in poison:
        assert value in by_value, f"{what} was not dead-lettered"
        expected = "refused the event" if "PostgreSQL" in what else "not a valid event"
        assert expected in by_value[value], (what, by_value[value])
    assert "refuses_a_dossier" in by_value[poison[-1][2]]  # the server's own words name the constraint
    assert failed_batches() == failed_before  # no batch was retried: none blocked the partition


async def test_a_postgresql_restart_in_the_middle_dead_letters_nothing() -> None:
    server, url = private_postgres(free_port())
    try:
        topic, dlq = unique("events"), unique("dlq")
        await ensure_topics(KAFKA, {topic: 1, dlq: 1})
        valid = [received(f"pr-{i}") for i in range(400)]
        refused = received(REFUSED)
        first = [(e["subject"].encode(), json.dumps(e).encode()) for e in valid[:200]]
        second = [(e["subject"].encode(), json.dumps(e).encode()) for e in valid[200:]]
        async with running_aggregator(
            kafka_bootstrap_servers=KAFKA,
            events_topic=topic,
            dead_letter_topic=dlq,
            consumer_group=unique("g"),
            database_url=url,
            database_schema="tthc",
            events_partitions=1,
            max_batch_records=50,
            retry_max_seconds=1.0,
        ) as (_, pool):
            await refuse_in_schema(pool)
            await _produce(topic, [*first, (REFUSED.encode(), json.dumps(refused).encode())])
            await eventually(lambda: _received_at_least(pool, 100), timeout=30, what="part of the stream applied")
            server.restart()
            await _produce(topic, second)
            ends = await end_offsets(KAFKA, topic)
            await eventually(lambda: _caught_up(pool, topic, ends), timeout=90, what="catch-up after restart")
            assert await _received_total(pool) == len(valid)
        letters = await eventually(lambda: _at_least(dlq, 1), timeout=30, what="the refused event's dead letter")
        # Nothing else; the same letter twice would be allowed (dead letters are published at least
        # once: a restart between their publication and the commit repeats them).
        assert {value for value, _ in letters} == {json.dumps(refused).encode()}
    finally:
        server.remove()


async def _received_at_least(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return await _received_total(pool) >= n
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _caught_up(pool: asyncpg.Pool, topic: str, ends: dict[int, int]) -> bool:
    try:
        return await positions_caught_up(pool, topic, ends)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False  # the pool's connections of before the restart


async def _at_least(dlq: str, n: int) -> list[tuple[bytes | None, dict[str, bytes]]] | None:
    letters = await dead_letters(dlq)
    return letters if len(letters) >= n else None
