"""Applies one lane's records through the pipeline and the store, isolating poison records.

The consumer runs one `LaneApplier.apply` per lane of each poll; the replay (`replay.py`) runs the
very same, so a topic is applied one way only.

A failed batch is sorted by what its error is about (`classify`), and that alone decides what
happens to it:

- **refused** (`PositionConflict`): another instance wrote these partitions since our positions
  were loaded. Nothing to wait for: the caller resyncs and goes on at once.
- **about an event** (a `StoreError` that is not retriable: `EventDataError`): the same batch
  would fail again. It is split in two and the parts applied in order, halving each refused part
  until the offending record stands alone; that record is dead-lettered (`unstorable`).
- **about the world** (retriable): a `StoreError` whose `retriable` is true (the database away or
  shutting down, a full disk, a serialization failure or deadlock, an identity stored
  concurrently), any `KafkaError` while publishing dead letters (the client reconnects; an
  authorization or size refusal is a configuration to fix, not a fact to drop), `OSError` and
  `TimeoutError`. The batch is rolled back and fetched again after a back-off; nothing is
  dead-lettered.
- **anything else** is a defect of this code, neither retried in place (it would fail at every
  back-off, silently) nor dead-lettered (that would drop facts): it propagates, the consumer stops,
  and the process exits to be restarted (`app.py`); the batch was not committed, so it is fetched
  again from the stored positions by the fixed or restarted process.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiokafka.errors import KafkaError

from services.aggregator import telemetry
from services.aggregator.pipeline import (
    Batch,
    BatchResult,
    Records,
    build_batch,
    fresh_records,
    record_count,
    split_in_two,
    unstorable_letter,
)
from services.aggregator.store import PositionConflict, PublishDeadLetters, StoreError

log = logging.getLogger(__name__)


class BatchStore(Protocol):
    async def apply_batch(self, batch: Batch, publish_dead_letters: PublishDeadLetters) -> BatchResult: ...


# What the loop sorts: the errors `classify` knows. Any other exception is a defect and propagates.
CLASSIFIED_ERRORS = (StoreError, KafkaError, OSError, TimeoutError)


class Failure(enum.Enum):
    REFUSED = "refused"  # another instance wrote these partitions
    EVENT_DATA = "event_data"  # about an event of the batch: split, dead-letter the offender
    WORLD = "world"  # retriable: fetch again after a back-off


def classify(exc: StoreError | KafkaError | OSError | TimeoutError) -> Failure:
    """What a failed batch's error is about (see the module's docstring)."""
    if isinstance(exc, PositionConflict):
        return Failure.REFUSED
    if isinstance(exc, StoreError) and not exc.retriable:
        return Failure.EVENT_DATA
    return Failure.WORLD


class LaneOutcome(enum.Enum):
    APPLIED = "applied"
    REFUSED = "refused"  # another instance wrote these partitions: resync and go on at once
    FAILED = "failed"  # a retriable failure: resync and go on after a pause


# Called after each committed batch: (batch, the lane's records, result, perf_counter at its start).
Committed = Callable[[Batch, Records, BatchResult, float], None]


class LaneApplier:
    """Applies lanes of one topic to one store; `committed` hears of every batch that commits."""

    def __init__(
        self, topic: str, store: BatchStore, publish_dead_letters: PublishDeadLetters, committed: Committed
    ) -> None:
        self._topic = topic
        self._store = store
        self._publish = publish_dead_letters
        self._committed = committed
        self.last_failure: BaseException | None = None  # of the last FAILED or REFUSED outcome

    async def apply(self, records: Records, positions: dict[int, int | None]) -> LaneOutcome:
        """Apply a lane's records from `positions` (a copy advances as its parts commit)."""
        positions = dict(positions)
        try:
            return await self._apply_records(records, positions)
        except StoreError as exc:  # about an event (see _commit)
            log.warning("batch of %s records refused for an event's data, splitting it: %s", record_count(records), exc)
            return await self._apply_isolating(fresh_records(records, positions), positions, exc)

    async def _apply_isolating(
        self, records: Records, positions: dict[int, int | None], error: StoreError
    ) -> LaneOutcome:
        """Apply a batch refused for an event's data in parts, halving each refused part until the
        offending records stand alone; those are dead-lettered with the error, the others applied.

        A part refused for a reason about the world ends the lane as any failure does: what was
        applied so far stays applied, the rest is fetched again from the stored positions.
        """
        pending: list[tuple[Records, StoreError | None]] = [(records, error)]  # (part, known refusal)
        while pending:
            part, refusal = pending.pop()
            if refusal is None:
                try:
                    outcome = await self._apply_records(part, positions)
                except StoreError as exc:  # about an event (see _commit)
                    refusal = exc
            if refusal is not None:
                if record_count(part) > 1:
                    first, second = split_in_two(part)
                    pending += [(second, None), (first, None)]  # first is applied first
                    continue
                outcome = await self._dead_letter_unstorable(part, positions, refusal)
            if outcome is not LaneOutcome.APPLIED:
                return outcome
        return LaneOutcome.APPLIED

    async def _dead_letter_unstorable(
        self, records: Records, positions: dict[int, int | None], error: StoreError
    ) -> LaneOutcome:
        """Dead-letter the one record of `records`, advancing its partition past it."""
        letter = unstorable_letter(records, error)
        batch = Batch(
            topic=self._topic,
            undecodable=[letter],
            ranges={letter.partition: (positions[letter.partition], letter.offset + 1)},
        )
        try:
            return await self._commit(batch, records, positions, time.perf_counter())
        except StoreError as exc:  # a batch with no event has no event data: about the world
            return self._failed(exc)

    async def _apply_records(self, records: Records, positions: dict[int, int | None]) -> LaneOutcome:
        """Apply records as one batch; raises the StoreError when an event's data is refused."""
        started = time.perf_counter()
        batch = build_batch(self._topic, records, positions)
        if not batch.ranges:
            return LaneOutcome.APPLIED
        return await self._commit(batch, records, positions, started)

    async def _commit(
        self, batch: Batch, records: Records, positions: dict[int, int | None], started: float
    ) -> LaneOutcome:
        try:
            result = await self._store.apply_batch(batch, self._publish)
        except CLASSIFIED_ERRORS as exc:
            failure = classify(exc)
            if failure is Failure.REFUSED:
                # Another instance wrote these partitions since we last synced: our view is stale.
                telemetry.BATCHES.labels(outcome="refused").inc()
                log.warning("batch refused: %s", exc)
                self.last_failure = exc
                return LaneOutcome.REFUSED
            if failure is Failure.EVENT_DATA:  # the caller splits it
                telemetry.BATCHES.labels(outcome="split").inc()
                raise
            return self._failed(exc)
        for partition, (_start, next_offset) in batch.ranges.items():
            positions[partition] = next_offset
        self._committed(batch, records, result, started)
        return LaneOutcome.APPLIED

    def _failed(self, exc: BaseException) -> LaneOutcome:
        telemetry.BATCHES.labels(outcome="failed").inc()
        log.warning("batch failed, will retry: %s", exc)
        self.last_failure = exc
        return LaneOutcome.FAILED
