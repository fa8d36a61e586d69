"""Kafka adapter of the aggregator and its loop: poll, share the poll among lanes, apply them.

Each lane is applied by `lanes.LaneApplier` (the pipeline and the store); this module owns the
Kafka consumer (positions, seeks, gaps, rebalances), the dead-letter producer and the telemetry
of what was applied.

Positions live in PostgreSQL, written with each batch's effects; auto-commit is off. On every
partition assignment the consumer seeks to the stored positions, so a batch is applied exactly
once whatever crashes or rebalances happen.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from services.aggregator import telemetry
from services.aggregator.config import AggregatorSettings
from services.aggregator.lanes import LaneApplier, LaneOutcome
from services.aggregator.pipeline import Batch, BatchResult, DeadLetter, Records, split_into_lanes
from services.aggregator.progress import PartitionProgress, PartitionStatus
from services.aggregator.store import AggregatorStore, StoreError
from services.infra.consumer_groups import client_id
from shared.topics import DEAD_LETTER_ORIGIN_HEADER, DEAD_LETTER_REASON_HEADER, INTAKE_TIME_HEADER

log = logging.getLogger(__name__)

# A poll keeps hundreds of thousands of objects alive at once (records, events, states, counters),
# all freed by reference counting. The cycle collector, triggered by the growth of tracked objects,
# would scan that working set many times per poll for cycles that do not exist: with thresholds of
# (100,000, 50, 100) about an eighth of the aggregator's time, with Python's default (700, 10, 10)
# about a fifth (benchmarks/aggregator_bench.py). So it is triggered only past a million objects,
# and a full collection runs between polls at most once a minute to free the few real cycles.
GC_THRESHOLDS = (1_000_000, 50, 100)
GC_FULL_INTERVAL_SECONDS = 60.0

# A fresh schema's tables have no statistics until autovacuum analyzes them (it looks once a
# minute), and PostgreSQL keeps the generic plans it made for the batch statements on the empty
# tables: a burst on a new installation then ran into batches of 2-3 s and figures 40-50 s late in
# about one burst of three (benchmarks/burst_bench.py). So this instance analyzes the tables
# itself after it has applied these many events; ANALYZE invalidates the cached plans, and the next
# batches are planned on the tables as they are.
ANALYZE_AFTER_EVENTS = (2_000, 20_000, 200_000)


def intake_time(record: ConsumerRecord[bytes, bytes]) -> float:
    """When the intake published the record (epoch seconds): its header, else the record timestamp."""
    headers = record.headers or ()
    if headers and headers[-1][0] == INTAKE_TIME_HEADER:  # where the intake puts it
        headers = headers[-1:]
    for name, value in headers:
        if name == INTAKE_TIME_HEADER:
            try:
                return int(value) / 1000
            except ValueError:
                break
    return float(record.timestamp) / 1000


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner.sync_positions(assigned)


class EventConsumer:
    """Runs the poll-apply loop of one aggregator instance."""

    def __init__(
        self, settings: AggregatorSettings, store: AggregatorStore, dead_letter_producer: AIOKafkaProducer
    ) -> None:
        self._settings = settings
        self._store = store
        self._producer = dead_letter_producer
        self._topic = settings.events_topic
        self._lanes = LaneApplier(self._topic, store, self._publish_dead_letters, self._committed)
        self._positions: dict[int, int | None] = {}  # partition -> next offset to apply
        # partition -> (position, first offset fetched after it) of a gap already fetched once
        self._gaps_seen: dict[int, tuple[int, int]] = {}
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            client_id=client_id(),  # names this process: deploy/services.sh tells its members from another stack's
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._progress = PartitionProgress(settings.stall_after_seconds)
        self._applied_here = 0  # events applied by this instance since it started
        self._analyze_marks = list(ANALYZE_AFTER_EVENTS)
        self._analyzing: asyncio.Task[None] | None = None
        self.running = False

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop(tp.partition, None)
            self._progress.revoked(tp.partition)

    def partition_statuses(self) -> list[PartitionStatus]:
        """Lag, oldest unapplied age and stall of each partition this instance owns, now."""
        return self._progress.statuses(time.time(), time.monotonic())

    def update_progress_metrics(self) -> list[PartitionStatus]:
        statuses = self.partition_statuses()
        telemetry.PARTITION_LAG.clear()
        telemetry.OLDEST_UNAPPLIED_AGE.clear()
        for status in statuses:
            telemetry.PARTITION_LAG.labels(partition=str(status.partition)).set(status.lag)
            telemetry.OLDEST_UNAPPLIED_AGE.labels(partition=str(status.partition)).set(status.oldest_unapplied_age)
        telemetry.STALLED_PARTITIONS.set(sum(status.stalled for status in statuses))
        return statuses

    async def sync_positions(self, partitions: Sequence[TopicPartition]) -> None:
        """Seek to the positions stored in PostgreSQL (the beginning where none is stored)."""
        mine = [tp for tp in partitions if tp.topic == self._topic]
        if not mine:
            return
        try:
            stored = await self._store.load_positions(self._topic, [tp.partition for tp in mine])
        except StoreError as exc:  # retried before the next apply
            log.warning("could not load positions for %s: %s", mine, exc)
            self.forget(mine)
            return
        assigned = self._consumer.assignment()
        mine = [tp for tp in mine if tp in assigned]  # a rebalance during the load may have moved some
        for tp in mine:
            position = stored.get(tp.partition)
            if position is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, position)
            self._positions[tp.partition] = position
            self._progress.assigned(tp.partition, position, time.monotonic())
        log.info(
            "assigned partitions %s at positions %s",
            sorted(p.partition for p in mine),
            {p.partition: stored.get(p.partition) for p in mine},
        )

    async def run(self) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        collected_at = time.monotonic()
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        await self._consumer.start()
        self.running = True
        backoff = self._settings.retry_initial_seconds
        try:
            while not self._stopping.is_set():
                if time.monotonic() - collected_at >= GC_FULL_INTERVAL_SECONDS:
                    gc.collect()  # between polls: the last poll's objects are gone
                    collected_at = time.monotonic()
                backoff = await self._poll_and_apply(backoff)
        finally:
            self.running = False
            await self._consumer.stop()

    async def _poll_and_apply(self, backoff: float) -> float:
        """One poll and its batches; returns the back-off for the next failure."""
        try:
            records = await self._consumer.getmany(
                timeout_ms=self._settings.poll_timeout_ms,
                max_records=self._settings.max_batch_records,
            )
        except KafkaError as exc:  # the client reconnects by itself; wait and poll again
            log.warning("poll failed: %s", exc)
            await asyncio.sleep(backoff)
            return min(backoff * 2, self._settings.retry_max_seconds)
        if not records:
            return backoff
        unknown = [tp for tp in records if tp.partition not in self._positions]
        if unknown:
            # Their records came before their positions were known: dropped, fetched again from
            # the stored positions. The other partitions' records are applied now: the consumer
            # has moved past them, so dropping them would skip them for good.
            await self.sync_positions(unknown)
            self._refetch_unpositioned(records)
            records = {
                tp: batch for tp, batch in records.items() if tp not in unknown and tp.partition in self._positions
            }
            if not records:
                return backoff
        if await self._apply(records):
            return self._settings.retry_initial_seconds
        await asyncio.sleep(backoff)
        return min(backoff * 2, self._settings.retry_max_seconds)

    def _hold_back_gaps(self, records: Records) -> Records:
        """Refetch a partition whose records start after its stored position.

        The position check in the store proves no other instance wrote in between, not that the
        records in hand follow the stored position; a gap means records were fetched and lost on the
        way. A gap seen twice in a row at the same place is real (the broker no longer has those
        records), and is accepted.
        """
        kept = {}
        for tp, partition_records in records.items():
            start = self._positions.get(tp.partition)
            fresh = [r for r in partition_records if start is None or r.offset >= start]
            if start is not None and fresh and fresh[0].offset > start:
                gap = (start, fresh[0].offset)
                if self._gaps_seen.get(tp.partition) != gap:
                    self._gaps_seen[tp.partition] = gap
                    log.warning(
                        "partition %s: records start at %s, after position %s; fetching again",
                        tp.partition,
                        gap[1],
                        gap[0],
                    )
                    self._consumer.seek(tp, start)
                    continue
                log.warning("partition %s: offsets %s to %s no longer exist; going on", tp.partition, *gap)
            kept[tp] = partition_records
        return kept

    def _refetch_unpositioned(self, records: Records) -> None:
        """Seek back to the records in hand of partitions whose stored position could not be loaded.

        Without this, records dropped while the database is away would only be fetched again once
        newer records arrive on their partition (never, at the end of a backlog).
        """
        assigned = self._consumer.assignment()
        for tp, partition_records in records.items():
            if tp.partition not in self._positions and tp in assigned and partition_records:
                self._consumer.seek(tp, partition_records[0].offset)

    async def _resync(self, records: Records) -> None:
        """After a refused or failed batch: back to the stored positions, or to the records in hand."""
        await self.sync_positions(list(self._consumer.assignment()))
        self._refetch_unpositioned(records)

    async def _apply(self, records: Records) -> bool:
        """Apply one poll's records in lanes; on a failure seek back so they are fetched again.

        Each lane is a transaction of its own over its own partitions, so the lanes run at once:
        while one waits for PostgreSQL, another decodes and plans. Returns False when a lane
        failed and the caller should pause before polling again.
        """
        records = self._hold_back_gaps(records)
        # The positions as they are now, with every partition of the poll known: a rebalance while
        # one lane waits for PostgreSQL may forget some before another lane starts. A lane still
        # applies from these positions; the store's compare-and-set refuses it if they moved.
        positions = dict(self._positions)
        now, assigned = time.monotonic(), self._consumer.assignment()
        for tp, partition_records in records.items():
            start = positions.get(tp.partition)
            first = next((r for r in partition_records if start is None or r.offset >= start), None)
            if first is None:
                continue
            highwater = self._consumer.highwater(tp) if tp in assigned else None  # a rebalance may have moved it
            self._progress.fetched(tp.partition, first.offset, intake_time(first), highwater, now)
        lanes = split_into_lanes(records, self._settings.apply_lanes)
        outcomes = await asyncio.gather(*(self._lanes.apply(lane, positions) for lane in lanes))
        if all(outcome is LaneOutcome.APPLIED for outcome in outcomes):
            return True
        await self._resync(records)
        return LaneOutcome.FAILED not in outcomes

    def _committed(self, batch: Batch, records: Records, result: BatchResult, started: float) -> None:
        """Positions, progress and telemetry after a lane's batch committed."""
        now, clock = time.time(), time.monotonic()
        for partition, (_start, next_offset) in batch.ranges.items():
            self._positions[partition] = next_offset
        for tp, partition_records in records.items():
            if tp.partition not in batch.ranges:
                continue
            start, next_offset = batch.ranges[tp.partition]
            applied = [r for r in partition_records if (start is None or r.offset >= start) and r.offset < next_offset]
            telemetry.FRESHNESS.observe_many([max(0.0, now - intake_time(record)) for record in applied])
            if applied:
                self._progress.applied(tp.partition, next_offset, intake_time(applied[-1]), clock)
        telemetry.BATCHES.labels(outcome="applied").inc()
        telemetry.EVENTS_APPLIED.inc(result.applied)
        self._applied_here += result.applied
        self._maybe_refresh_statistics()
        telemetry.DUPLICATES.inc(result.duplicates)
        for letter in result.dead_letters:
            telemetry.DEAD_LETTERS.labels(reason=letter.kind.value).inc()
        telemetry.BATCH_SECONDS.observe(time.perf_counter() - started)
        telemetry.LAST_APPLIED.set_to_current_time()

    def _maybe_refresh_statistics(self) -> None:
        """Start an ANALYZE in the background when the next mark of ANALYZE_AFTER_EVENTS is passed."""
        if not self._analyze_marks or self._applied_here < self._analyze_marks[0]:
            return
        while self._analyze_marks and self._applied_here >= self._analyze_marks[0]:
            self._analyze_marks.pop(0)
        if self._analyzing is None or self._analyzing.done():
            self._analyzing = asyncio.create_task(self._refresh_statistics(), name="aggregator-analyze")

    async def _refresh_statistics(self) -> None:
        started = time.perf_counter()
        try:
            await self._store.refresh_statistics()
        except StoreError as exc:
            log.warning("could not analyze the tables: %s", exc)  # autovacuum will, later
            return
        log.info("analyzed the tables after %s events in %.2f s", self._applied_here, time.perf_counter() - started)

    async def _publish_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        futures = [
            await self._producer.send(
                self._settings.dead_letter_topic,
                key=letter.key,
                value=letter.value,
                headers=[
                    (DEAD_LETTER_REASON_HEADER, letter.reason.encode()),
                    (DEAD_LETTER_ORIGIN_HEADER, f"{self._topic}/{letter.partition}/{letter.offset}".encode()),
                ],
            )
            for letter in letters
        ]
        await asyncio.gather(*futures)
        for letter in letters:
            log.warning("dead-lettered %s/%s: %s", letter.partition, letter.offset, letter.reason[:200])

    def stop(self) -> None:
        self._stopping.set()
