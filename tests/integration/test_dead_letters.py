"""Records that cannot be applied go to the dead-letter topic with the reason; the partition goes on."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.infra.kafka_admin import ensure_topics
from shared.topics import DEAD_LETTER_ORIGIN_HEADER, DEAD_LETTER_REASON_HEADER
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.factories import received, resolved
from tests.in_process import end_offsets, positions_caught_up, running_aggregator

pytestmark = pytest.mark.integration


async def dead_letters(topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    ends = await end_offsets(KAFKA, topic)
    if not sum(ends.values()):
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = []
        while len(records) < ends[0]:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            records += batch.get(tp, [])
        return [(r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()


async def test_garbage_identity_conflicts_and_misrouted_events_are_dead_lettered(db_schema: str) -> None:
    topic, dlq = unique("events"), unique("dlq")
    await ensure_topics(KAFKA, {topic: 1, dlq: 1})
    original = received("dl-1")
    conflicting = {**original, "data": {**original["data"], "channel": "direct"}}
    records = [
        b"not json at all",
        json.dumps({"specversion": "1.0", "type": "vn.gov.unknown"}).encode(),
        json.dumps(original).encode(),
        json.dumps(original).encode(),  # an exact resend: a duplicate, not a dead letter
        json.dumps(conflicting).encode(),  # same source and id, other content
        json.dumps(resolved("dl-1")).encode(),
        json.dumps(received("dl-2")).encode(),  # sent with key dl-1: not keyed by its subject
    ]
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True)
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(topic, value=value, key=b"dl-1")
    finally:
        await producer.stop()

    ends = await end_offsets(KAFKA, topic)
    async with running_aggregator(
        kafka_bootstrap_servers=KAFKA,
        events_topic=topic,
        dead_letter_topic=dlq,
        consumer_group=unique("g"),
        database_url=DATABASE_URL,
        database_schema=db_schema,
        events_partitions=1,
    ) as (_, pool):
        await eventually(lambda: positions_caught_up(pool, topic, ends), what="aggregator catch-up")
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT sum(received) AS received, sum(received_online) AS online, "
                "sum(resolved) AS resolved FROM daily_counts"
            )
    assert dict(row) == {"received": 1, "online": 1, "resolved": 1}

    letters = await eventually(lambda: _four(dlq), what="four dead letters")
    # In record order (within a batch the store's identity conflicts follow the decoding failures).
    letters.sort(key=lambda letter: int(letter[1][DEAD_LETTER_ORIGIN_HEADER].decode().rsplit("/", 1)[1]))
    reasons = [headers[DEAD_LETTER_REASON_HEADER].decode() for _, headers in letters]
    assert [value for value, _ in letters] == [records[0], records[1], records[4], records[6]]
    assert "not a valid event" in reasons[0] and "not a valid event" in reasons[1]
    assert "identity conflict" in reasons[2]
    assert "is not the event's subject 'dl-2'" in reasons[3]
    assert [headers[DEAD_LETTER_ORIGIN_HEADER].decode() for _, headers in letters] == [
        f"{topic}/0/0",
        f"{topic}/0/1",
        f"{topic}/0/4",
        f"{topic}/0/6",
    ]


async def _four(dlq: str) -> list[tuple[bytes | None, dict[str, bytes]]] | None:
    letters = await dead_letters(dlq)
    return letters if len(letters) >= 4 else None
