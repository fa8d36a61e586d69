"""The aggregator's batch pipeline, pure (no I/O): records -> decoded batch -> lanes -> plan -> rows to write.

1. `split_into_lanes` shares one poll's partitions among the lanes (each a transaction of its own).
2. `build_batch` decodes a lane's records into a `Batch`: events with their identity keys and
   digests, the records that are not keyed events (dead letters) and each partition's range.
3. `first_sightings` drops the batch's own repeats; `without_stored` then drops the identities
   the database knows already (duplicates, or identity conflicts when the content differs).
4. `plan_rows` plans the fresh events on their prior states (`planner.plan_keyed_batch`) and
   shapes the result as the rows the store writes (`BatchRows`).

The PostgreSQL adapter (`store.py`) runs steps 3 and 4 inside its transaction, between the
statements that read what they need; the Kafka adapter (`consumer.py`) runs steps 1 and 2, and
`split_in_two` when a batch is refused for an event's data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from hashlib import sha256
from typing import Any, NamedTuple

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from services.aggregator.domain import (
    AGGREGATE_KINDS,
    AggregateKey,
    Contributions,
    State,
    UnitResolver,
    aggregate_key,
    units_valid_forever,
)
from services.aggregator.planner import plan_keyed_batch
from shared.counters import ALL_COUNTERS, PROCEDURE_DAILY_COUNTERS
from shared.events import Event, decode_event
from shared.timezone import local_day, start_of_day

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]

# Identity keys and digests are 16 bytes (half a SHA-256): collisions are out of reach, rows small.
HASH_BYTES = 16  # an identity key (stored as uuid)
DIGEST_BYTES = 8  # a record's digest (stored as bigint)


def identity_key(source: str, ident: str) -> bytes:
    """The stored key of an event identity; migration 0002 computes the same in SQL."""
    encoded = source.encode()
    return sha256(len(encoded).to_bytes(4, "big") + encoded + ident.encode()).digest()[:HASH_BYTES]


def content_digest(raw: bytes) -> bytes:
    return sha256(raw).digest()[:DIGEST_BYTES]


class IncomingEvent(NamedTuple):
    """A decoded record (a named tuple: one is built per record, on the hot path)."""

    event: Event
    raw: bytes
    key: bytes  # identity_key of the event's (source, id)
    digest: bytes  # content_digest of the record
    partition: int
    offset: int

    @classmethod
    def of(cls, event: Event, raw: bytes, partition: int, offset: int) -> IncomingEvent:
        return cls(event, raw, identity_key(event.source, event.id), content_digest(raw), partition, offset)


class DeadLetterKind(enum.StrEnum):
    """Why a record is a dead letter, in a word: the `reason` label of the dead-letter metric."""

    NO_VALUE = "no_value"
    UNDECODABLE = "undecodable"  # not JSON, or not an event of the contract within its limits
    MISROUTED = "misrouted"  # not keyed by its subject
    IDENTITY_CONFLICT = "identity_conflict"
    UNSTORABLE = "unstorable"  # valid, but the database or the core refuses it (EventDataError)


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    kind: DeadLetterKind


@dataclass
class Batch:
    """What one lane of a poll delivered: decoded events, undecodable records and partition ranges."""

    topic: str
    events: list[IncomingEvent] = field(default_factory=list)
    undecodable: list[DeadLetter] = field(default_factory=list)
    # partition -> (position this batch starts from, or None if none stored; next offset after it)
    ranges: dict[int, tuple[int | None, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    applied: int
    duplicates: int
    dead_letters: list[DeadLetter]


# --- records -> lanes -> batches ---------------------------------------------------------------------


def split_into_lanes(records: Records, lanes: int) -> list[Records]:
    """Share a poll's partitions among at most `lanes` lanes, balancing their record counts."""
    loads = [0] * lanes
    split: list[Records] = [{} for _ in range(lanes)]
    for tp, partition_records in sorted(records.items(), key=lambda item: (-len(item[1]), item[0].partition)):
        lightest = loads.index(min(loads))
        split[lightest][tp] = partition_records
        loads[lightest] += len(partition_records)
    return [lane for lane in split if lane]


def fresh_records(records: Records, positions: Mapping[int, int | None]) -> Records:
    """The records at or after their partition's position: those a batch would apply."""
    fresh = {}
    for tp, partition_records in records.items():
        start = positions.get(tp.partition)
        kept = [r for r in partition_records if start is None or r.offset >= start]
        if kept:
            fresh[tp] = kept
    return fresh


def build_batch(topic: str, records: Records, positions: Mapping[int, int | None]) -> Batch:
    """Decode the records of one lane; records before a partition's position are stale, dropped.

    Records that are not events, or not keyed by their subject (as the intake keys them), are
    dead letters.
    """
    batch = Batch(topic=topic)
    for tp, fresh in fresh_records(records, positions).items():
        start = positions[tp.partition]
        batch.ranges[tp.partition] = (start, fresh[-1].offset + 1)
        for record in fresh:
            raw = record.value
            if raw is None:
                batch.undecodable.append(
                    DeadLetter(
                        tp.partition, record.offset, record.key, raw, "record has no value", DeadLetterKind.NO_VALUE
                    )
                )
                continue
            try:
                event = decode_event(raw)
            except ValidationError as exc:
                reason = f"not a valid event: {exc}"[:2000]
                batch.undecodable.append(
                    DeadLetter(tp.partition, record.offset, record.key, raw, reason, DeadLetterKind.UNDECODABLE)
                )
                continue
            if record.key != event.subject.encode():
                # Keyed by subject, all events of an aggregate share a partition: lanes and
                # instances, which own partitions, then never write one state concurrently.
                reason = f"record key {record.key!r} is not the event's subject {event.subject!r}"[:2000]
                batch.undecodable.append(
                    DeadLetter(tp.partition, record.offset, record.key, raw, reason, DeadLetterKind.MISROUTED)
                )
                continue
            batch.events.append(IncomingEvent.of(event, raw, tp.partition, record.offset))
    return batch


def split_in_two(records: Records) -> tuple[Records, Records]:
    """Two parts of a batch refused for an event's data, to apply one after the other.

    Several partitions are split into two groups of partitions; one partition into its first and
    second runs of records, so that applying the first run and then the second keeps its offsets
    contiguous. Neither part is empty when the batch holds more than one record.
    """
    if len(records) > 1:
        ordered = sorted(records.items(), key=lambda item: item[0].partition)
        middle = len(ordered) // 2
        return dict(ordered[:middle]), dict(ordered[middle:])
    ((tp, partition_records),) = records.items()
    middle = len(partition_records) // 2
    return {tp: partition_records[:middle]}, {tp: partition_records[middle:]}


def record_count(records: Records) -> int:
    return sum(len(partition_records) for partition_records in records.values())


def unstorable_letter(records: Records, error: Exception) -> DeadLetter:
    """The dead letter of the one record of `records`, refused for its data with `error`."""
    ((tp, (record,)),) = records.items()
    return DeadLetter(
        tp.partition,
        record.offset,
        record.key,
        record.value,
        f"the database or the core refused the event: {error}"[:2000],
        DeadLetterKind.UNSTORABLE,
    )


# --- identities ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sightings:
    """A batch's events with the batch's own repeats taken out."""

    first: dict[bytes, IncomingEvent]  # identity key -> its first event in the batch
    duplicates: int  # repeats with the same content
    conflicts: list[DeadLetter]  # repeats with another content

    def ordered_keys(self) -> list[bytes]:
        """The identity keys in one order for every writer (so that they lock rows in one order)."""
        return sorted(self.first)


def first_sightings(events: Iterable[IncomingEvent]) -> Sightings:
    first: dict[bytes, IncomingEvent] = {}
    duplicates = 0
    conflicts: list[DeadLetter] = []
    for item in events:
        seen = first.get(item.key)
        if seen is None:
            first[item.key] = item
        elif seen.digest == item.digest:
            duplicates += 1
        else:
            conflicts.append(conflict_letter(item))
    return Sightings(first, duplicates, conflicts)


def identity_pairs(sightings: Sightings, keys: Sequence[bytes]) -> bytes:
    """The (key, digest) pairs of `keys`, as the store sends them: one bytea."""
    first = sightings.first
    return b"".join([key + first[key].digest for key in keys])


def without_stored(
    sightings: Sightings, stored: Mapping[bytes, bytes]
) -> tuple[list[IncomingEvent], int, list[DeadLetter]]:
    """The fresh events, the duplicates and the identity conflicts, given the stored digests of
    some of the batch's identity keys."""
    duplicates = sightings.duplicates
    conflicts = list(sightings.conflicts)
    for key, digest in stored.items():
        if sightings.first[key].digest == digest:
            duplicates += 1
        else:
            conflicts.append(conflict_letter(sightings.first[key]))
    fresh = [item for key, item in sightings.first.items() if key not in stored]
    return fresh, duplicates, conflicts


def conflict_letter(item: IncomingEvent) -> DeadLetter:
    source, ident = item.event.identity
    return DeadLetter(
        partition=item.partition,
        offset=item.offset,
        key=item.event.subject.encode(),
        value=item.raw,
        reason=f"identity conflict: another event with source {source!r} and id {ident!r} "
        "was accepted first with different content",
        kind=DeadLetterKind.IDENTITY_CONFLICT,
    )


# --- plan -> rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyedEvents:
    """Fresh events with their aggregate keys, and the keys whose stored states the plan needs."""

    events: list[tuple[AggregateKey, Event]]
    keys_by_kind: dict[str, list[str]]


def keyed_events(fresh: Iterable[IncomingEvent]) -> KeyedEvents:
    keyed = [(aggregate_key(item.event), item.event) for item in fresh]
    keys_by_kind: dict[str, set[str]] = {kind: set() for kind in AGGREGATE_KINDS}
    for (kind, key), _event in keyed:
        keys_by_kind[kind].add(key)
    return KeyedEvents(keyed, {kind: list(keys) for kind, keys in keys_by_kind.items()})


@dataclass(frozen=True)
class BatchRows:
    """What a batch writes: the changed states and the changes of each counter table."""

    states: dict[AggregateKey, State]
    delta: Contributions

    def levels(self, kept_from: datetime) -> list[tuple[str, str, datetime, int]]:
        """The level changes at `kept_from` or later (`exact_levels_from`): those of earlier days
        are in the daily rows."""
        return [
            (unit, counter, at, value) for (unit, counter, at), value in self.delta.levels.items() if at >= kept_from
        ]

    def cohorts(self) -> list[tuple[str, str, date, datetime, int]]:
        return cohort_entries(self.delta)

    def procedure_days(self) -> list[dict[str, Any]]:
        return procedure_day_rows(self.delta)

    def periods(self) -> list[tuple[Any, ...]]:
        return period_entries(self.delta)

    def daily(self) -> list[dict[str, Any]]:
        return daily_rows(self.delta)


def exact_levels_from(now: datetime) -> datetime:
    """The first instant whose level changes are stored exactly (level_changes): the start of
    yesterday, local time.

    A level figure is read at `as_of`, which is the end of a local day or now (contract §4): whole
    days come from the daily and monthly rows, and only the day of now from exact instants. The
    day before today is kept too, so that the clocks of the aggregator and of the reporting service
    may differ by up to a day. Changes at later instants (a due date still ahead) are all kept.
    """
    return start_of_day(local_day(now) - timedelta(days=1))


def plan_rows(
    keyed: KeyedEvents, prior: Mapping[AggregateKey, State], units: UnitResolver = units_valid_forever
) -> BatchRows:
    """The rows a batch of fresh events writes, given the stored states of their aggregates; `units`
    places each fact in the stored unit of the registry valid on its day (unit_placement.py)."""
    plan = plan_keyed_batch(keyed.events, prior, units)
    return BatchRows(plan.states, plan.delta)


def procedure_day_rows(delta: Contributions) -> list[dict[str, Any]]:
    """The procedure_days changes of a delta as sparse rows, one per procedure and local day."""
    rows: dict[tuple[str, str, date], dict[str, Any]] = {}
    for (unit, code, counter, day), value in delta.procedure_daily.items():
        row = rows.get((unit, code, day))
        if row is None:
            row = rows[(unit, code, day)] = {"unit": unit, "procedure_code": code, "day": day}
        row[counter] = row.get(counter, 0) + value
    return [row for row in rows.values() if any(row.get(c) for c in PROCEDURE_DAILY_COUNTERS)]


def procedure_year_rows(counts: Sequence[Any]) -> list[dict[str, Any]]:
    """Per procedure and year, the masks of the touched days and of those whose count is non-zero.

    `counts` are the new procedure_days rows of the days a batch touched. Bit n of a mask (from
    the left) is day n of the year, 1 January = bit 0.
    """
    masks: dict[tuple[str, str, int], dict[str, list[str]]] = {}
    for row in counts:
        day: date = row["day"]
        key = (row["unit"], row["procedure_code"], day.year)
        bits = masks.get(key)
        if bits is None:
            bits = masks[key] = {}
            for c in PROCEDURE_DAILY_COUNTERS:
                bits[f"{c}_touched"] = ["0"] * 366
                bits[f"{c}_set"] = ["0"] * 366
        n = day.timetuple().tm_yday - 1
        for c in PROCEDURE_DAILY_COUNTERS:
            bits[f"{c}_touched"][n] = "1"
            if row[c]:
                bits[f"{c}_set"][n] = "1"
    return [
        {"unit": unit, "procedure_code": code, "year": year, **{name: "".join(b) for name, b in bits.items()}}
        for (unit, code, year), bits in sorted(masks.items())
    ]


def cohort_entries(delta: Contributions) -> list[tuple[str, str, date, datetime, int]]:
    return [(unit, counter, day, at, value) for (unit, counter, day, at), value in delta.cohorts.items()]


def period_entries(delta: Contributions) -> list[tuple[Any, ...]]:
    return [
        (unit, code, start, end, online, fee_bearing, n)
        for (unit, code, start, end, online, fee_bearing), n in delta.procedure_periods.items()
    ]


_COUNTER_NAMES = frozenset(ALL_COUNTERS)


def daily_rows(delta: Contributions) -> list[dict[str, Any]]:
    """The daily_counts changes of a delta as sparse rows, one per unit and local day.

    A row holds only the counters that change (level changes count on their local day); rows
    whose changes cancel out are left out.
    """
    rows: dict[tuple[str, date], dict[str, Any]] = {}
    for (unit, counter, day), value in delta.daily.items():
        row = rows.get((unit, day))
        if row is None:
            row = rows[(unit, day)] = {"unit": unit, "day": day}
        row[counter] = row.get(counter, 0) + value
    for (unit, counter, at), value in delta.levels.items():
        day = local_day(at)
        row = rows.get((unit, day))
        if row is None:
            row = rows[(unit, day)] = {"unit": unit, "day": day}
        row[counter] = row.get(counter, 0) + value
    return [row for row in rows.values() if any(value for name, value in row.items() if name in _COUNTER_NAMES)]
