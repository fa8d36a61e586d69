"""PostgreSQL adapter of the aggregator: one transaction per batch for states, deltas and positions.

The positions of the partitions a batch came from are checked and advanced in the same
transaction as the effects (compare-and-set): a write from an instance that no longer owns a
partition, or that fell behind another instance's write, is refused as a whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from services.aggregator.domain import AggregateKey, Contributions, State, aggregate_key
from services.aggregator.planner import BatchPlan, plan_batch
from services.aggregator.state_codec import decode_state, encode_state
from shared.counters import ALL_COUNTERS, LEVEL_COUNTERS
from shared.events import Event
from shared.timezone import local_day

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A database failure; `retriable` says whether trying the batch again may succeed."""

    retriable = True


class PositionConflict(StoreError):
    """The stored position of a partition is not the one this batch starts from."""

    retriable = False

    def __init__(self, conflicts: dict[int, tuple[int | None, int | None]]) -> None:
        self.conflicts = conflicts  # partition -> (expected, stored)
        super().__init__(f"stored positions differ from the batch's start: {conflicts}")


@dataclass(frozen=True)
class IncomingEvent:
    event: Event
    raw: bytes
    digest: bytes
    partition: int
    offset: int


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass
class Batch:
    """What one poll of Kafka delivered: decoded events, undecodable records and partition ranges."""

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
    states_written: int


def digest_of(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def _daily_upsert_sql() -> str:
    cols = ", ".join(ALL_COUNTERS)
    arrays = ", ".join(f"${i + 3}::text::bigint[]" for i in range(len(ALL_COUNTERS)))
    updates = ", ".join(f"{c} = daily_counts.{c} + EXCLUDED.{c}" for c in ALL_COUNTERS)
    return (
        f"INSERT INTO daily_counts (unit, day, {cols}) "
        f"SELECT * FROM unnest($1::text[], $2::date[], {arrays}) "
        f"ON CONFLICT (unit, day) DO UPDATE SET {updates}"
    )


def _level_upsert_sql() -> str:
    cols = ", ".join(LEVEL_COUNTERS)
    arrays = ", ".join(f"${i + 3}::text::bigint[]" for i in range(len(LEVEL_COUNTERS)))
    updates = ", ".join(f"{c} = level_changes.{c} + EXCLUDED.{c}" for c in LEVEL_COUNTERS)
    return (
        f"INSERT INTO level_changes (unit, at, {cols}) "
        f"SELECT * FROM unnest($1::text[], $2::timestamptz[], {arrays}) "
        f"ON CONFLICT (unit, at) DO UPDATE SET {updates}"
    )


_DAILY_UPSERT = _daily_upsert_sql()
_LEVEL_UPSERT = _level_upsert_sql()
_DAILY_INDEX = {name: i for i, name in enumerate(ALL_COUNTERS)}
_LEVEL_INDEX = {name: i for i, name in enumerate(LEVEL_COUNTERS)}


def _pivot_daily(delta: Contributions) -> list[tuple[str, date, list[int]]]:
    """Wide rows (unit, day, one value per counter), sorted so concurrent writers lock in one order."""
    rows: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0] * len(ALL_COUNTERS))
    for (unit, counter, day), value in delta.daily.items():
        rows[(unit, day)][_DAILY_INDEX[counter]] += value
    for (unit, counter, at), value in delta.levels.items():
        rows[(unit, local_day(at))][_DAILY_INDEX[counter]] += value
    return [(unit, day, values) for (unit, day), values in sorted(rows.items()) if any(values)]


def _pivot_levels(delta: Contributions) -> list[tuple[str, datetime, list[int]]]:
    rows: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0] * len(LEVEL_COUNTERS))
    for (unit, counter, at), value in delta.levels.items():
        rows[(unit, at)][_LEVEL_INDEX[counter]] += value
    return [(unit, at, values) for (unit, at), values in sorted(rows.items()) if any(values)]


def _columns(rows: Sequence[tuple[str, object, list[int]]], width: int) -> list[Any]:
    """Column arrays for unnest; counter columns as array literals (`{1,0,-1}`), cast to bigint[] in SQL.

    asyncpg encodes a Python list element by element with abstract-class checks (about 0.3 µs per
    value, and a batch sends width x rows of them); a literal is one string, parsed by PostgreSQL.
    """
    units = [r[0] for r in rows]
    keys = [r[1] for r in rows]
    values = ["{" + ",".join([str(r[2][i]) for r in rows]) + "}" for i in range(width)]
    return [units, keys, *values]


# Driver errors that mean "the database cannot be reached or ended our session": retriable.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    asyncpg.InterfaceError,
    # Raised by a pooled connection left mid-operation when the server went away ("cannot switch
    # to state ...; another operation is in progress"); seen while PostgreSQL restarts.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

PublishDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]


class AggregatorStore:
    """Reads and writes the aggregator's tables in one schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = schema

    async def load_positions(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT partition, next_offset FROM consumer_positions "
                    "WHERE topic = $1 AND partition = ANY($2::int[])",
                    topic,
                    list(partitions),
                )
        except _UNAVAILABLE as exc:
            raise StoreError(f"database unavailable: {exc}") from exc
        return {r["partition"]: r["next_offset"] for r in rows}

    async def apply_batch(self, batch: Batch, publish_dead_letters: PublishDeadLetters) -> BatchResult:
        """Apply a batch exactly once, or raise and change nothing.

        Dead letters are published before the commit, so a crash between the two repeats them
        (at least once) rather than losing them.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._claim_positions(conn, batch)
                fresh, duplicates, conflicts = await self._record_identities(conn, batch.events)
                plan = await self._plan(conn, fresh)
                await self._write_plan(conn, plan)
                await self._advance_positions(conn, batch)
                dead_letters = batch.undecodable + conflicts
                if dead_letters:
                    await publish_dead_letters(dead_letters)
        except _UNAVAILABLE as exc:
            raise StoreError(f"database unavailable: {exc}") from exc
        except asyncpg.DeadlockDetectedError as exc:
            raise StoreError(f"deadlock, batch rolled back: {exc}") from exc
        except asyncpg.SerializationError as exc:
            raise StoreError(f"serialization failure, batch rolled back: {exc}") from exc
        return BatchResult(len(fresh), duplicates, dead_letters, len(plan.states))

    async def _claim_positions(self, conn: Connection, batch: Batch) -> None:
        partitions = sorted(batch.ranges)
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM consumer_positions "
            "WHERE topic = $1 AND partition = ANY($2::int[]) ORDER BY partition FOR UPDATE",
            batch.topic,
            partitions,
        )
        stored = {r["partition"]: r["next_offset"] for r in rows}
        conflicts = {p: (start, stored.get(p)) for p, (start, _next) in batch.ranges.items() if stored.get(p) != start}
        if conflicts:
            raise PositionConflict(conflicts)

    async def _record_identities(
        self, conn: Connection, events: list[IncomingEvent]
    ) -> tuple[list[IncomingEvent], int, list[DeadLetter]]:
        """Split events into first sightings, duplicates (counted) and identity conflicts."""
        first: dict[tuple[str, str], IncomingEvent] = {}
        duplicates = 0
        conflicts: list[DeadLetter] = []
        for item in events:
            seen = first.get(item.event.identity)
            if seen is None:
                first[item.event.identity] = item
            elif seen.digest == item.digest:
                duplicates += 1
            else:
                conflicts.append(_conflict_letter(item))
        if not first:
            return [], duplicates, conflicts
        ordered = sorted(first)  # one lock order for concurrent writers
        sources = [ident[0] for ident in ordered]
        ids = [ident[1] for ident in ordered]
        digests = [first[ident].digest for ident in ordered]
        inserted = await conn.fetch(
            "INSERT INTO event_identities (source, id, digest) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) "
            "ON CONFLICT DO NOTHING RETURNING source, id",
            sources,
            ids,
            digests,
        )
        new = {(r["source"], r["id"]) for r in inserted}
        known = [ident for ident in first if ident not in new]
        if known:
            rows = await conn.fetch(
                "SELECT e.source, e.id, e.digest FROM event_identities e "
                "JOIN unnest($1::text[], $2::text[]) AS k(source, id) USING (source, id)",
                [k[0] for k in known],
                [k[1] for k in known],
            )
            stored = {(r["source"], r["id"]): bytes(r["digest"]) for r in rows}
            for ident in known:
                if stored.get(ident) == first[ident].digest:
                    duplicates += 1
                else:
                    conflicts.append(_conflict_letter(first[ident]))
        fresh = [item for ident, item in first.items() if ident in new]
        return fresh, duplicates, conflicts

    async def _plan(self, conn: Connection, fresh: list[IncomingEvent]) -> BatchPlan:
        keys = sorted({aggregate_key(item.event) for item in fresh})
        prior: dict[AggregateKey, State] = {}
        if keys:
            rows = await conn.fetch(
                "SELECT s.kind, s.key, s.state::text AS state FROM aggregate_states s "
                "JOIN unnest($1::text[], $2::text[]) AS k(kind, key) USING (kind, key)",
                [k[0] for k in keys],
                [k[1] for k in keys],
            )
            for r in rows:
                key: AggregateKey = (r["kind"], r["key"])
                prior[key] = decode_state(key, json.loads(r["state"]))
        return plan_batch((item.event for item in fresh), prior)

    async def _write_plan(self, conn: Connection, plan: BatchPlan) -> None:
        if plan.states:
            items = sorted(plan.states.items())
            await conn.execute(
                "INSERT INTO aggregate_states (kind, key, state) "
                "SELECT kind, key, state::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) "
                "AS t(kind, key, state) "
                "ON CONFLICT (kind, key) DO UPDATE SET state = EXCLUDED.state",
                [k[0] for k, _ in items],
                [k[1] for k, _ in items],
                [json.dumps(encode_state(state), separators=(",", ":")) for _, state in items],
            )
        daily = _pivot_daily(plan.delta)
        if daily:
            await conn.execute(_DAILY_UPSERT, *_columns(daily, len(ALL_COUNTERS)))
        levels = _pivot_levels(plan.delta)
        if levels:
            await conn.execute(_LEVEL_UPSERT, *_columns(levels, len(LEVEL_COUNTERS)))

    async def _advance_positions(self, conn: Connection, batch: Batch) -> None:
        partitions = sorted(batch.ranges)
        await conn.execute(
            "INSERT INTO consumer_positions (topic, partition, next_offset, applied_at) "
            "SELECT $1, p, o, clock_timestamp() FROM unnest($2::int[], $3::bigint[]) AS t(p, o) "
            "ON CONFLICT (topic, partition) DO UPDATE "
            "SET next_offset = EXCLUDED.next_offset, applied_at = EXCLUDED.applied_at",
            batch.topic,
            partitions,
            [batch.ranges[p][1] for p in partitions],
        )


def _conflict_letter(item: IncomingEvent) -> DeadLetter:
    source, ident = item.event.identity
    return DeadLetter(
        partition=item.partition,
        offset=item.offset,
        key=item.event.subject.encode(),
        value=item.raw,
        reason=f"identity conflict: another event with source {source!r} and id {ident!r} "
        "was accepted first with different content",
    )
