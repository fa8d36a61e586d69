"""A batch refused for an event's data is split until the offending records stand alone (no I/O).

The store here refuses any batch holding a chosen event, as PostgreSQL refuses a value it cannot
store; the real refusal on a real server is tested in tests/integration/test_poison_records.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from services.aggregator.config import AggregatorSettings
from services.aggregator.consumer import EventConsumer
from services.aggregator.pipeline import (
    Batch,
    BatchResult,
    DeadLetter,
    DeadLetterKind,
    Records,
    fresh_records,
    record_count,
    split_in_two,
)
from services.aggregator.store import EventDataError, StoreError
from tests.factories import received
from tests.unit.test_aggregator_batches import _records


@given(
    st.dictionaries(st.integers(0, 11), st.integers(1, 40), min_size=1, max_size=12).filter(
        lambda counts: sum(counts.values()) > 1
    )
)
def test_a_split_keeps_every_record_once_in_order_and_neither_part_is_empty(counts: dict[int, int]) -> None:
    records = _records(counts)
    first, second = split_in_two(records)
    assert record_count(first) and record_count(second)
    assert record_count(first) + record_count(second) == record_count(records)
    for tp in records:
        joined = first.get(tp, []) + second.get(tp, [])
        assert [r.offset for r in joined] == [r.offset for r in records[tp]]


def test_fresh_records_start_at_the_position() -> None:
    records = _records({0: 5, 1: 3})
    fresh = fresh_records(records, {0: 3, 1: None})
    assert [r.offset for r in fresh[TopicPartition("events", 0)]] == [3, 4]
    assert len(fresh[TopicPartition("events", 1)]) == 3
    assert fresh_records(records, {0: 5, 1: 3}) == {}


class _RefusingStore:
    """Commits batches like the real store (positions must follow on); refuses any holding a poison."""

    def __init__(self, poison: set[tuple[int, int]], world_failures: int = 0) -> None:
        self.poison = poison
        self.world_failures = world_failures
        self.positions: dict[int, int | None] = {}
        self.applied: list[tuple[int, int]] = []
        self.letters: list[DeadLetter] = []
        self.transactions = 0

    async def apply_batch(self, batch: Batch, publish: object) -> BatchResult:
        self.transactions += 1
        for partition, (start, _end) in batch.ranges.items():
            assert self.positions.get(partition) == start, "a part must start where the last one ended"
        if self.world_failures:
            self.world_failures -= 1
            raise StoreError("database unavailable")
        offered = {(e.partition, e.offset) for e in batch.events}
        if offered & self.poison:
            raise EventDataError("CheckViolationError: refused")
        for partition, (_start, end) in batch.ranges.items():
            self.positions[partition] = end
        self.applied += sorted(offered)
        self.letters += batch.undecodable
        return BatchResult(len(batch.events), 0, list(batch.undecodable))


def _event_records(counts: dict[int, int]) -> Records:
    out: Records = {}
    for tp, partition_records in _records(counts).items():
        out[tp] = []
        for r in partition_records:
            subject = f"d-{tp.partition}-{r.offset}"
            event = json.dumps(received(subject, id_=f"e-{tp.partition}-{r.offset}")).encode()
            out[tp].append(replace(r, value=event, key=subject.encode()))
    return out


async def _apply(store: _RefusingStore, records: Records, lanes: int = 2) -> bool:
    consumer = EventConsumer(AggregatorSettings(events_topic="events", apply_lanes=lanes), store, None)  # type: ignore[arg-type]
    consumer._positions.update({tp.partition: None for tp in records})
    try:
        return await consumer._apply(records)
    finally:
        await consumer._consumer.stop()  # never started: no connection was made


async def test_each_poison_is_dead_lettered_alone_and_every_other_record_is_applied() -> None:
    records = _event_records({0: 64, 1: 20, 2: 7})
    poison = {(0, 17), (0, 18), (1, 0), (2, 6)}
    store = _RefusingStore(poison)

    assert await _apply(store, records)

    everything = {(tp.partition, r.offset) for tp, rs in records.items() for r in rs}
    assert set(store.applied) == everything - poison
    assert {(letter.partition, letter.offset) for letter in store.letters} == poison
    assert all(
        letter.kind is DeadLetterKind.UNSTORABLE and "CheckViolation" in letter.reason for letter in store.letters
    )
    assert store.positions == {0: 64, 1: 20, 2: 7}
    # Halving: far fewer transactions than one per record.
    assert store.transactions < 40


async def test_a_failure_about_the_world_while_splitting_dead_letters_nothing_more() -> None:
    records = _event_records({0: 16})
    store = _RefusingStore({(0, 9)}, world_failures=0)
    calls = 0
    original = store.apply_batch

    async def failing_after_the_first_split(batch: Batch, publish: object) -> BatchResult:
        nonlocal calls
        calls += 1
        if calls == 3:  # the whole batch, its first half (applied), then the database goes away
            raise StoreError("database unavailable")
        return await original(batch, publish)

    store.apply_batch = failing_after_the_first_split  # type: ignore[method-assign]
    assert not await _apply(store, records, lanes=1)
    assert store.letters == []
    assert store.positions == {0: 8}  # the first half stays applied; the rest is fetched again
