"""The aggregator's batch pipeline end to end without I/O: records -> batch -> lanes -> plan -> rows.

The database's part is played by dicts: the digests it stores and the states it holds.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.structs import ConsumerRecord

from services.aggregator.domain import AggregateKey, State
from services.aggregator.lanes import CLASSIFIED_ERRORS, Failure, LaneApplier, LaneOutcome, classify
from services.aggregator.pipeline import (
    DIGEST_BYTES,
    HASH_BYTES,
    DeadLetterKind,
    IncomingEvent,
    Records,
    build_batch,
    exact_levels_from,
    first_sightings,
    identity_key,
    identity_pairs,
    keyed_events,
    plan_rows,
    split_into_lanes,
    unstorable_letter,
    without_stored,
)
from services.aggregator.store import EventDataError, PositionConflict, StoreError
from tests.factories import received, resolved

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _poll(events: dict[int, list[dict[str, Any]]]) -> Records:
    """One poll: each partition's events as records keyed by their subject, from offset 0."""
    return {
        TopicPartition("events", partition): [
            ConsumerRecord(
                "events", partition, offset, 0, 0, e["subject"].encode(), json.dumps(e).encode(), None, 1, 1, []
            )
            for offset, e in enumerate(partition_events)
        ]
        for partition, partition_events in events.items()
    }


def _fresh(records: Records, stored: dict[bytes, bytes]) -> tuple[list[IncomingEvent], int, list[Any]]:
    batch = build_batch("events", records, dict.fromkeys(p.partition for p in records))
    return without_stored(first_sightings(batch.events), stored)


def test_a_poll_becomes_the_rows_of_its_figures() -> None:
    first = received("d-1", at="2023-03-01T08:00:00+07:00", channel="online")
    records = _poll({0: [first, resolved("d-1", at="2023-03-05T10:00:00+07:00")], 1: [received("d-2")]})
    lanes = split_into_lanes(records, 2)
    assert len(lanes) == 2

    states: dict[AggregateKey, State] = {}
    daily: dict[tuple[str, date], dict[str, int]] = {}
    for lane in lanes:
        fresh, duplicates, conflicts = _fresh(lane, {})
        assert (duplicates, conflicts) == (0, [])
        keyed = keyed_events(fresh)
        rows = plan_rows(keyed, {key: states[key] for key in states if key[1] in keyed.keys_by_kind[key[0]]})
        states.update(rows.states)
        for row in rows.daily():
            counts = daily.setdefault((row["unit"], row["day"]), {})
            for name, value in row.items():
                if name not in ("unit", "day"):
                    counts[name] = counts.get(name, 0) + value

    assert set(states) == {("dossier", "d-1"), ("dossier", "d-2")}
    on_first = daily[("my-hao.minh-duc", date(2023, 3, 1))]
    assert on_first["received"] == 2 and on_first["received_online"] == 2
    assert daily[("my-hao.minh-duc", date(2023, 3, 5))]["resolved"] == 1


def test_a_stored_state_is_replaced_and_only_the_difference_is_written() -> None:
    (fresh, _, _) = _fresh(_poll({0: [received("d-1")]}), {})
    before = plan_rows(keyed_events(fresh), {})
    (later, _, _) = _fresh(_poll({0: [resolved("d-1", at="2023-03-05T10:00:00+07:00")]}), {})

    after = plan_rows(keyed_events(later), before.states)

    assert set(after.states) == {("dossier", "d-1")}
    rows = {(row["unit"], row["day"]): row for row in after.daily()}
    assert rows[("my-hao.minh-duc", date(2023, 3, 5))]["resolved"] == 1
    assert all(row.get("received", 0) == 0 for row in rows.values())  # counted before, not again


def test_repeats_within_the_batch_and_stored_identities_are_duplicates_or_conflicts() -> None:
    event = received("d-1", id_="e-1")
    changed = {**event, "data": {**event["data"], "channel": "direct"}}
    other = received("d-2", id_="e-2")
    batch = build_batch("events", _poll({0: [event, event, changed], 1: [other]}), {0: None, 1: None})

    sightings = first_sightings(batch.events)
    assert sightings.duplicates == 1
    assert [(c.partition, c.offset, c.kind) for c in sightings.conflicts] == [(0, 2, DeadLetterKind.IDENTITY_CONFLICT)]
    keys = sightings.ordered_keys()
    assert keys == sorted(keys) and len(identity_pairs(sightings, keys)) == 2 * (HASH_BYTES + DIGEST_BYTES)

    stored = {identity_key(other["source"], "e-2"): b"another content!"}
    fresh, duplicates, conflicts = without_stored(sightings, stored)
    assert [item.event.id for item in fresh] == ["e-1"]
    assert duplicates == 1
    assert [(c.partition, c.offset) for c in conflicts] == [(0, 2), (1, 0)]


def test_nothing_fresh_plans_nothing() -> None:
    rows = plan_rows(keyed_events([]), {})
    assert rows.states == {} and rows.daily() == [] and rows.levels(EPOCH) == [] and rows.procedure_days() == []


@pytest.mark.parametrize(
    ("now", "kept_from"),
    [
        ("2026-12-04T01:00:00+07:00", "2026-12-03T00:00:00+07:00"),
        ("2026-12-03T16:59:59.999999+00:00", "2026-12-02T00:00:00+07:00"),  # 23:59:59.999999 local
        ("2026-12-03T17:00:00+00:00", "2026-12-03T00:00:00+07:00"),  # local midnight
    ],
)
def test_level_changes_are_kept_exact_from_the_start_of_yesterday(now: str, kept_from: str) -> None:
    assert exact_levels_from(datetime.fromisoformat(now)) == datetime.fromisoformat(kept_from)


def test_only_level_changes_from_the_cut_are_written_and_the_days_keep_them_all() -> None:
    # Received 1 March, overdue from 8 March 17:00, resolved 10 March: three instants of change.
    events = [received("d-1"), resolved("d-1", at="2023-03-10T10:00:00+07:00")]
    fresh, _duplicates, _conflicts = _fresh(_poll({0: events}), {})
    rows = plan_rows(keyed_events(fresh), {})
    instants = sorted({at for _unit, _counter, at, _value in rows.levels(EPOCH)})
    assert [at.isoformat() for at in instants] == [
        "2023-03-01T08:00:00+07:00",
        "2023-03-08T17:00:00.000001+07:00",
        "2023-03-10T10:00:00+07:00",
    ]
    cut = datetime.fromisoformat("2023-03-08T00:00:00+07:00")
    assert {at for _unit, _counter, at, _value in rows.levels(cut)} == set(instants[1:])
    assert rows.levels(datetime.fromisoformat("2023-03-11T00:00:00+07:00")) == []
    in_progress = {row["day"]: row.get("in_progress", 0) for row in rows.daily()}
    assert in_progress[date(2023, 3, 1)] == 1 and in_progress[date(2023, 3, 10)] == -1


def test_an_unstorable_record_is_dead_lettered_with_the_refusal() -> None:
    records = _poll({3: [received("d-9")]})
    letter = unstorable_letter(records, EventDataError("CheckViolationError: refused"))
    assert (letter.partition, letter.offset, letter.kind) == (3, 0, DeadLetterKind.UNSTORABLE)
    assert "CheckViolationError" in letter.reason and letter.value == records[TopicPartition("events", 3)][0].value


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (PositionConflict({0: (5, 7)}), Failure.REFUSED),
        (EventDataError("DataError: value out of range"), Failure.EVENT_DATA),
        (StoreError("database unavailable"), Failure.WORLD),
        (KafkaConnectionError(), Failure.WORLD),
        (TopicAuthorizationFailedError(), Failure.WORLD),  # not retriable for Kafka, but about the setup
        (ConnectionResetError(), Failure.WORLD),
        (TimeoutError(), Failure.WORLD),
    ],
)
def test_what_a_failure_is_about(error: StoreError, failure: Failure) -> None:
    assert classify(error) is failure


@pytest.mark.parametrize("defect", [KeyError("x"), TypeError("y"), AttributeError("z"), AssertionError()])
def test_other_exceptions_are_defects_the_loop_does_not_catch(defect: Exception) -> None:
    assert not isinstance(defect, CLASSIFIED_ERRORS)


class _FailingStore:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def apply_batch(self, batch: Any, publish: Any) -> Any:
        raise self.error


async def _nothing(*_: Any) -> None:
    return None


async def test_a_lane_fails_on_the_world_and_lets_a_defect_through() -> None:
    records = _poll({0: [received("d-1")]})
    world = LaneApplier("events", _FailingStore(StoreError("database unavailable")), _nothing, lambda *_: None)
    assert await world.apply(records, {0: None}) is LaneOutcome.FAILED
    assert isinstance(world.last_failure, StoreError)

    defect = LaneApplier("events", _FailingStore(KeyError("bug")), _nothing, lambda *_: None)
    with pytest.raises(KeyError):
        await defect.apply(records, {0: None})
