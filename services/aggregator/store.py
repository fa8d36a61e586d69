"""PostgreSQL adapter of the aggregator: one transaction per batch for states, deltas and positions.

The positions of the partitions a batch came from are checked and advanced in the same
transaction as the effects (compare-and-set): a write from an instance that no longer owns a
partition, or that fell behind another instance's write, is refused as a whole.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from hashlib import sha256
from typing import Any, NamedTuple

import asyncpg
import orjson

from services.aggregator.domain import AGGREGATE_KINDS, AggregateKey, Contributions, State, aggregate_key
from services.aggregator.planner import BatchPlan, plan_keyed_batch
from services.aggregator.state_codec import dump_states, load_state
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS, LEVEL_COUNTERS, PROCEDURE_DAILY_COUNTERS
from shared.events import Event
from shared.timezone import local_day

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A failed batch; `retriable` says whether trying the same batch again may succeed.

    Retriable failures are about the world (the database away or shutting down, a full disk, a
    serialization failure or deadlock, an identity stored concurrently): the batch is tried again
    after a back-off, never dead-lettered. The others are about the batch itself.
    """

    retriable = True


class EventDataError(StoreError):
    """An event of the batch cannot be stored: the database refused its data (SQLSTATE class 22,
    or class 23 other than a concurrent identity insert) or the core could not compute it
    (overflow, invalid value). Tried again, the same batch fails again: the consumer splits it to
    find the offending records and dead-letters them."""

    retriable = False


class PositionConflict(StoreError):
    """The stored position of a partition is not the one this batch starts from."""

    retriable = False

    def __init__(self, conflicts: dict[int, tuple[int | None, int | None]]) -> None:
        self.conflicts = conflicts  # partition -> (expected, stored)
        super().__init__(f"stored positions differ from the batch's start: {conflicts}")


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


# Identity keys and digests are 16 bytes (half a SHA-256): collisions are out of reach, rows small.
HASH_BYTES = 16


def identity_key(source: str, ident: str) -> bytes:
    """The stored key of an event identity; migration 0002 computes the same in SQL."""
    encoded = source.encode()
    return sha256(len(encoded).to_bytes(4, "big") + encoded + ident.encode()).digest()[:HASH_BYTES]


def content_digest(raw: bytes) -> bytes:
    return sha256(raw).digest()[:HASH_BYTES]


# A batch's identities travel as one bytea of (key, digest) pairs in key order.
def _pairs_sql(query: str) -> str:
    pair = 2 * HASH_BYTES
    return f"""
WITH pairs AS (
    SELECT i, substring($1::bytea FROM i * {pair} + 1 FOR {HASH_BYTES}) AS key,
           substring($1::bytea FROM i * {pair} + {HASH_BYTES + 1} FOR {HASH_BYTES}) AS digest
    FROM generate_series(0, length($1::bytea) / {pair} - 1) AS i
)
{query}
"""


# The identities of the batch stored already, with their digests (usually none). `= ANY(ARRAY(...))`
# makes PostgreSQL probe the primary key for each; a join with the pairs hashes the whole table.
_KNOWN_IDENTITIES = _pairs_sql("SELECT key, digest FROM event_identities WHERE key = ANY(ARRAY(SELECT key FROM pairs))")

# A plain insert of the new ones: about half the cost of ON CONFLICT DO NOTHING, which inserts
# speculatively. A concurrent transaction inserting one of the keys (the same identity on another
# partition) makes it fail with a unique violation: the batch is retried and finds the key stored.
_INSERT_IDENTITIES = _pairs_sql("INSERT INTO event_identities (key, digest) SELECT key, digest FROM pairs ORDER BY i")


def _daily_upsert_sql() -> str:
    """Upsert of the daily changes sent as one JSON array of sparse rows (absent counters are 0)."""
    cols = ", ".join(ALL_COUNTERS)
    values = ", ".join(f"coalesce(r.{c}, 0)" for c in ALL_COUNTERS)
    types = ", ".join(f"{c} bigint" for c in ALL_COUNTERS)
    updates = ", ".join(f"{c} = daily_counts.{c} + EXCLUDED.{c}" for c in ALL_COUNTERS)
    return f"""
INSERT INTO daily_counts (unit, day, {cols})
SELECT r.unit, r.day, {values}
FROM jsonb_to_recordset($1::jsonb) AS r(unit text, day date, {types})
ORDER BY r.unit, r.day
ON CONFLICT (unit, day) DO UPDATE SET {updates}
"""


def _level_upsert_sql() -> str:
    """Upsert of the level changes sent as one JSON array of [unit, counter, instant, change].

    PostgreSQL pivots them into one row per (unit, instant). The entries of a delta are non-zero
    and distinct, so every row has a change.
    """
    cols = ", ".join(LEVEL_COUNTERS)
    sums = ", ".join(f"coalesce(sum(value) FILTER (WHERE counter = '{c}'), 0)" for c in LEVEL_COUNTERS)
    updates = ", ".join(f"{c} = level_changes.{c} + EXCLUDED.{c}" for c in LEVEL_COUNTERS)
    return f"""
WITH changes AS (
    SELECT e->>0 AS unit, (e->>2)::timestamptz AS at, e->>1 AS counter, (e->>3)::bigint AS value
    FROM jsonb_array_elements($1::jsonb) AS e
)
INSERT INTO level_changes (unit, at, {cols})
SELECT unit, at, {sums} FROM changes GROUP BY unit, at ORDER BY unit, at
ON CONFLICT (unit, at) DO UPDATE SET {updates}
"""


def _cohort_upsert_sql() -> str:
    """Upsert of the cohort changes sent as one JSON array of [unit, counter, day, instant, change]."""
    cols = ", ".join(COHORT_COUNTERS)
    sums = ", ".join(f"coalesce(sum(value) FILTER (WHERE counter = '{c}'), 0)" for c in COHORT_COUNTERS)
    updates = ", ".join(f"{c} = cohort_changes.{c} + EXCLUDED.{c}" for c in COHORT_COUNTERS)
    return f"""
WITH changes AS (
    SELECT e->>0 AS unit, e->>1 AS counter, (e->>2)::date AS day, (e->>3)::timestamptz AS at,
           (e->>4)::bigint AS value
    FROM jsonb_array_elements($1::jsonb) AS e
)
INSERT INTO cohort_changes (unit, day, at, {cols})
SELECT unit, day, at, {sums} FROM changes GROUP BY unit, day, at ORDER BY unit, day, at
ON CONFLICT (unit, day, at) DO UPDATE SET {updates}
"""


def _procedure_days_upsert_sql() -> str:
    """Upsert of the per-procedure daily changes (sparse JSON rows); returns the rows' new counts."""
    cols = ", ".join(PROCEDURE_DAILY_COUNTERS)
    values = ", ".join(f"coalesce(r.{c}, 0)" for c in PROCEDURE_DAILY_COUNTERS)
    types = ", ".join(f"{c} bigint" for c in PROCEDURE_DAILY_COUNTERS)
    updates = ", ".join(f"{c} = procedure_days.{c} + EXCLUDED.{c}" for c in PROCEDURE_DAILY_COUNTERS)
    return f"""
INSERT INTO procedure_days (unit, procedure_code, day, {cols})
SELECT r.unit, r.procedure_code, r.day, {values}
FROM jsonb_to_recordset($1::jsonb) AS r(unit text, procedure_code text, day date, {types})
ORDER BY r.unit, r.procedure_code, r.day
ON CONFLICT (unit, procedure_code, day) DO UPDATE SET {updates}
RETURNING unit, procedure_code, day, {cols}
"""


def _procedure_years_update_sql() -> tuple[str, str]:
    """Two statements that set the bits of the days a batch touched to whether their counts are now
    non-zero: make sure the year rows exist, then update them (a second statement, so that it sees
    rows a concurrent batch inserted meanwhile).

    Each row carries, per counter, the mask of touched days and the mask of those now non-zero;
    the stored bits of untouched days stay as they are.
    """
    cols = ", ".join(PROCEDURE_DAILY_COUNTERS)
    zeros = ", ".join("repeat('0', 366)::bit(366)" for _ in PROCEDURE_DAILY_COUNTERS)
    types = ", ".join(f"{c}_touched text, {c}_set text" for c in PROCEDURE_DAILY_COUNTERS)
    sets = ", ".join(
        f"{c} = (y.{c} & ~t.{c}_touched::bit(366)) | t.{c}_set::bit(366)" for c in PROCEDURE_DAILY_COUNTERS
    )
    ensure = f"""
INSERT INTO procedure_years (unit, procedure_code, year, {cols})
SELECT r.unit, r.procedure_code, r.year, {zeros}
FROM jsonb_to_recordset($1::jsonb) AS r(unit text, procedure_code text, year int)
ORDER BY r.unit, r.procedure_code, r.year
ON CONFLICT (unit, procedure_code, year) DO NOTHING
"""
    update = f"""
UPDATE procedure_years AS y SET {sets}
FROM jsonb_to_recordset($1::jsonb) AS t(unit text, procedure_code text, year int, {types})
WHERE y.unit = t.unit AND y.procedure_code = t.procedure_code AND y.year = t.year
"""
    return ensure, update


# Periods are a set: `n` counts the states that hold the period (1, or 0 once a correction replaced it).
_PERIODS_UPSERT = """
INSERT INTO procedure_periods (unit, procedure_code, starts_at, ends_at, online, fee_bearing, n)
SELECT e->>0, e->>1, (e->>2)::timestamptz, coalesce((e->>3)::timestamptz, 'infinity'),
       (e->>4)::boolean, (e->>5)::boolean, (e->>6)::int
FROM jsonb_array_elements($1::jsonb) AS e ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (unit, procedure_code, starts_at, ends_at, online, fee_bearing)
DO UPDATE SET n = procedure_periods.n + EXCLUDED.n
"""

_DAILY_UPSERT = _daily_upsert_sql()
_LEVEL_UPSERT = _level_upsert_sql()
_COHORT_UPSERT = _cohort_upsert_sql()
_PROCEDURE_DAYS_UPSERT = _procedure_days_upsert_sql()
_PROCEDURE_YEARS_ENSURE, _PROCEDURE_YEARS_UPDATE = _procedure_years_update_sql()

# The stored states of the given keys, one key array per kind: each probes the primary key (a join
# with the keys would hash the whole table).
_LOAD_STATES = " UNION ALL ".join(
    f"SELECT kind, key, state::text AS state FROM aggregate_states "
    f"WHERE kind = '{kind}' AND key = ANY(${i + 1}::text[])"
    for i, kind in enumerate(AGGREGATE_KINDS)
)

# The changed states, sent as one JSON array of [kind, key, state]; written in key order so that
# concurrent writers take row locks in one order.
_STATES_UPSERT = """
INSERT INTO aggregate_states (kind, key, state)
SELECT e->>0, e->>1, e->2 FROM jsonb_array_elements($1::jsonb) AS e ORDER BY 1, 2
ON CONFLICT (kind, key) DO UPDATE SET state = EXCLUDED.state
"""


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


_COUNTER_NAMES = frozenset(ALL_COUNTERS)


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

# Errors about the data of the batch, not the world: the same batch would fail again. asyncpg's
# DataError is SQLSTATE class 22 (and arguments it cannot encode); IntegrityConstraintViolationError
# is class 23, whose unique violation (a concurrent identity insert) is caught before as retriable.
# ArithmeticError and ValueError come from the core's computation on an event's values.
_DATA_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ArithmeticError,
    ValueError,
)

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_BATCH_TABLES = (
    "consumer_positions",
    "event_identities",
    "aggregate_states",
    "level_changes",
    "cohort_changes",
    "procedure_days",
    "procedure_years",
    "procedure_periods",
    "daily_counts",
)

PublishDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]


class AggregatorStore:
    """Reads and writes the aggregator's tables in one schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = schema

    async def refresh_statistics(self) -> None:
        """ANALYZE the tables a batch reads and writes (it does not block their writers)."""
        async with self._pool.acquire() as conn:
            await conn.execute(f"ANALYZE {', '.join(_BATCH_TABLES)}")

    async def load_positions(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        try:
            async with self._pool.acquire() as conn:
                return await _stored_positions(conn, topic, partitions)
        except _UNAVAILABLE as exc:
            raise StoreError(f"database unavailable: {exc}") from exc

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
                # Last: concurrent batches (lanes, instances) update the same daily rows, and each
                # holds their locks until it commits.
                await self._write_daily(conn, plan)
        except _UNAVAILABLE as exc:
            raise StoreError(f"database unavailable: {exc}") from exc
        except asyncpg.UniqueViolationError as exc:
            # Another batch stored one of these identities since we looked: retried, it is then known.
            raise StoreError(f"an identity was stored concurrently, batch rolled back: {exc}") from exc
        except _DATA_ERRORS as exc:
            raise EventDataError(f"{type(exc).__name__}: {exc}") from exc
        except asyncpg.PostgresError as exc:
            # Every other refusal is about the server or the transaction (serialization failure,
            # deadlock, disk full, shutting down, too many connections ...): worth trying again.
            raise StoreError(f"{type(exc).__name__} ({exc.sqlstate}), batch rolled back: {exc}") from exc
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
                conflicts.append(_conflict_letter(item))
        if not first:
            return [], duplicates, conflicts
        ordered = sorted(first)  # one lock order for concurrent writers
        pairs = b"".join([key + first[key].digest for key in ordered])
        stored = {bytes(r["key"]): bytes(r["digest"]) for r in await conn.fetch(_KNOWN_IDENTITIES, pairs)}
        if stored:
            for key, digest in stored.items():
                if first[key].digest == digest:
                    duplicates += 1
                else:
                    conflicts.append(_conflict_letter(first[key]))
            ordered = [key for key in ordered if key not in stored]
            pairs = b"".join([key + first[key].digest for key in ordered])
        if ordered:
            await conn.execute(_INSERT_IDENTITIES, pairs)
        fresh = [item for key, item in first.items() if key not in stored]
        return fresh, duplicates, conflicts

    async def _plan(self, conn: Connection, fresh: list[IncomingEvent]) -> BatchPlan:
        keyed = [(aggregate_key(item.event), item.event) for item in fresh]
        keys_by_kind: dict[str, set[str]] = {kind: set() for kind in AGGREGATE_KINDS}
        for (kind, key), _event in keyed:
            keys_by_kind[kind].add(key)
        prior: dict[AggregateKey, State] = {}
        if fresh:
            rows = await conn.fetch(_LOAD_STATES, *(list(keys_by_kind[kind]) for kind in AGGREGATE_KINDS))
            for r in rows:
                aggregate: AggregateKey = (r["kind"], r["key"])
                prior[aggregate] = load_state(aggregate, r["state"])
        return plan_keyed_batch(keyed, prior)

    async def _write_plan(self, conn: Connection, plan: BatchPlan) -> None:
        """The new states and level changes (the daily counts come last, `_write_daily`)."""
        if plan.states:
            await conn.execute(_STATES_UPSERT, dump_states(plan.states))
        if plan.delta.levels:
            levels = [(unit, counter, at, value) for (unit, counter, at), value in plan.delta.levels.items()]
            await conn.execute(_LEVEL_UPSERT, orjson.dumps(levels).decode())
        await self._write_index_tables(conn, plan.delta)

    async def _write_index_tables(self, conn: Connection, delta: Contributions) -> None:
        """The Decision 766 tables: cohorts, per-procedure days with their year bitmaps, periods."""
        if delta.cohorts:
            await conn.execute(_COHORT_UPSERT, orjson.dumps(cohort_entries(delta)).decode())
        procedure_days = procedure_day_rows(delta)
        if procedure_days:
            counts = await conn.fetch(_PROCEDURE_DAYS_UPSERT, orjson.dumps(procedure_days).decode())
            years = orjson.dumps(procedure_year_rows(counts)).decode()
            await conn.execute(_PROCEDURE_YEARS_ENSURE, years)
            await conn.execute(_PROCEDURE_YEARS_UPDATE, years)
        if delta.procedure_periods:
            await conn.execute(_PERIODS_UPSERT, orjson.dumps(period_entries(delta)).decode())

    async def _write_daily(self, conn: Connection, plan: BatchPlan) -> None:
        daily = daily_rows(plan.delta)
        if daily:
            await conn.execute(_DAILY_UPSERT, orjson.dumps(daily).decode())

    async def _advance_positions(self, conn: Connection, batch: Batch) -> None:
        """Store the batch's end positions.

        Rows that existed are locked since `_claim_positions`. A partition without a stored
        position had no row to lock: its row is inserted only if no other writer inserted one
        meanwhile, and otherwise the batch is refused.
        """
        locked = sorted(p for p, (start, _end) in batch.ranges.items() if start is not None)
        first = sorted(p for p, (start, _end) in batch.ranges.items() if start is None)
        if locked:
            await conn.execute(
                "UPDATE consumer_positions SET next_offset = t.o, applied_at = clock_timestamp() "
                "FROM unnest($2::int[], $3::bigint[]) AS t(p, o) WHERE topic = $1 AND partition = t.p",
                batch.topic,
                locked,
                [batch.ranges[p][1] for p in locked],
            )
        if first:
            inserted = await conn.fetch(
                "INSERT INTO consumer_positions (topic, partition, next_offset, applied_at) "
                "SELECT $1, p, o, clock_timestamp() FROM unnest($2::int[], $3::bigint[]) AS t(p, o) "
                "ON CONFLICT (topic, partition) DO NOTHING RETURNING partition, next_offset",
                batch.topic,
                first,
                [batch.ranges[p][1] for p in first],
            )
            if len(inserted) < len(first):
                taken = sorted(set(first) - {r["partition"] for r in inserted})
                stored = await _stored_positions(conn, batch.topic, taken)
                raise PositionConflict({p: (None, stored.get(p)) for p in taken})


async def _stored_positions(conn: Connection, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM consumer_positions WHERE topic = $1 AND partition = ANY($2::int[])",
        topic,
        list(partitions),
    )
    return {r["partition"]: r["next_offset"] for r in rows}


def _conflict_letter(item: IncomingEvent) -> DeadLetter:
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
