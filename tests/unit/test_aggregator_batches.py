"""How the aggregator cuts a poll into lanes and batches, and what it sends to PostgreSQL (no I/O)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from services.aggregator.config import AggregatorSettings
from services.aggregator.consumer import EventConsumer
from services.aggregator.domain import Contributions
from services.aggregator.pipeline import Batch, BatchResult, Records, build_batch, daily_rows, split_into_lanes
from tests.factories import received


def _records(counts: dict[int, int], first_offset: int = 0) -> Records:
    records: Records = {}
    for partition, count in counts.items():
        tp = TopicPartition("events", partition)
        records[tp] = [
            ConsumerRecord("events", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])
            for offset in range(first_offset, first_offset + count)
        ]
    return records


@given(
    counts=st.dictionaries(st.integers(0, 11), st.integers(1, 50), min_size=1, max_size=12),
    lanes=st.integers(1, 6),
)
def test_every_partition_goes_to_exactly_one_lane(counts: dict[int, int], lanes: int) -> None:
    records = _records(counts)
    split = split_into_lanes(records, lanes)
    assert 1 <= len(split) <= lanes
    assert all(split)  # no empty lane
    seen = [tp for lane in split for tp in lane]
    assert sorted(seen, key=lambda tp: tp.partition) == sorted(records, key=lambda tp: tp.partition)
    for lane in split:
        for tp, lane_records in lane.items():
            assert lane_records is records[tp]


def test_lanes_are_balanced_by_records() -> None:
    split = split_into_lanes(_records({0: 100, 1: 60, 2: 50, 3: 10}), 2)
    loads = sorted(sum(len(r) for r in lane.values()) for lane in split)
    assert loads == [110, 110]  # 100 + 10 and 60 + 50


def test_a_batch_starts_at_the_stored_position_and_dead_letters_records_that_are_not_keyed_events() -> None:
    records = _records({0: 3, 1: 2})
    event = json.dumps(received("lane-1")).encode()
    values = {(0, 0): event, (0, 1): event, (0, 2): event, (1, 0): event, (1, 1): b"not json"}
    keys = {(0, 2): b"lane-2"}  # not the subject
    for tp, partition_records in records.items():
        records[tp] = [
            replace(r, value=values[(tp.partition, r.offset)], key=keys.get((tp.partition, r.offset), b"lane-1"))
            for r in partition_records
        ]
    batch = build_batch("events", records, {0: 1, 1: None})
    assert batch.ranges == {0: (1, 3), 1: (None, 2)}
    assert [(item.partition, item.offset) for item in batch.events] == [(0, 1), (1, 0)]
    letters = {(letter.partition, letter.offset): letter.reason for letter in batch.undecodable}
    assert set(letters) == {(0, 2), (1, 1)}
    assert "not the event's subject 'lane-1'" in letters[(0, 2)]
    assert "not a valid event" in letters[(1, 1)]


def test_daily_rows_put_level_changes_on_their_local_day_and_drop_rows_that_cancel() -> None:
    late_evening_utc = datetime(2023, 3, 1, 18, 30, tzinfo=UTC)  # 01:30 on 2 March in Vietnam
    delta = Contributions(
        daily={("u1", "received", date(2023, 3, 2)): 2, ("u2", "received", date(2023, 3, 1)): 1},
        levels={
            ("u1", "in_progress", late_evening_utc): 1,
            ("u2", "in_progress", datetime(2023, 3, 1, 1, 0, tzinfo=UTC)): 1,
            ("u2", "in_progress", datetime(2023, 3, 1, 9, 0, tzinfo=UTC)): -1,
            ("u3", "in_progress", datetime(2023, 3, 1, 1, 0, tzinfo=UTC)): 1,
            ("u3", "in_progress", datetime(2023, 3, 1, 9, 0, tzinfo=UTC)): -1,
        },
    )
    rows = {(row["unit"], row["day"]): row for row in daily_rows(delta)}
    assert rows[("u1", date(2023, 3, 2))] == {"unit": "u1", "day": date(2023, 3, 2), "received": 2, "in_progress": 1}
    assert rows[("u2", date(2023, 3, 1))]["in_progress"] == 0  # kept: received changes on that day
    assert ("u3", date(2023, 3, 1)) not in rows  # +1 and -1 on one day: nothing to write
    assert len(rows) == 2


class _ForgettingStore:
    """Applies each batch at once; the first one sees a rebalance take the other lanes' partitions."""

    def __init__(self) -> None:
        self.consumer: EventConsumer | None = None
        self.batches: list[Batch] = []

    async def apply_batch(self, batch: Batch, publish: object) -> BatchResult:
        if not self.batches and self.consumer is not None:
            self.consumer.forget([TopicPartition("events", p) for p in range(12) if p not in batch.ranges])
        self.batches.append(batch)
        return BatchResult(applied=len(batch.events), duplicates=0, dead_letters=[])


async def test_a_rebalance_during_one_lane_does_not_break_the_other_lanes() -> None:
    event = json.dumps(received("lane-1")).encode()
    records = {
        tp: [replace(r, value=event, key=b"lane-1") for r in partition_records]
        for tp, partition_records in _records({0: 3, 1: 2, 2: 2}).items()
    }
    store = _ForgettingStore()
    settings = AggregatorSettings(events_topic="events", apply_lanes=3)
    consumer = EventConsumer(settings, store, None)  # type: ignore[arg-type]  # no dead letters here
    store.consumer = consumer
    consumer._positions.update({0: None, 1: 0, 2: None})  # as synced on assignment

    try:
        assert await consumer._apply(records)
    finally:
        await consumer._consumer.stop()  # never started: no connection was made
    assert sorted(p for batch in store.batches for p in batch.ranges) == [0, 1, 2]
    assert sum(len(batch.events) for batch in store.batches) == 7
