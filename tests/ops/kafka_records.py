"""Reads a topic's records with their headers and keys, for the tests of the record format."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.in_process import end_offsets


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


async def read_records(bootstrap: str, topic: str) -> list[Record]:
    """Every record of the topic, from the beginning to the current end."""
    ends = await end_offsets(bootstrap, topic)
    wanted = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        remaining = {tp: ends[tp.partition] for tp in wanted}
        while remaining:
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records += [
                    Record(tp.partition, r.offset, r.key, r.value or b"", dict(r.headers), r.timestamp) for r in batch
                ]
                if batch and batch[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
        return records
    finally:
        await consumer.stop()
