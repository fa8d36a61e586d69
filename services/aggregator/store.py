"""PostgreSQL adapter of the aggregator: one transaction per batch for states, deltas and positions.

The positions of the partitions a batch came from are checked and advanced in the same
transaction as the effects (compare-and-set): a write from an instance that no longer owns a
partition, or that fell behind another instance's write, is refused as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
import orjson

from services.aggregator.config import AggregatorSettings
from services.aggregator.domain import AGGREGATE_KINDS, AggregateKey, State, UnitResolver, units_valid_forever
from services.aggregator.pipeline import (
    DIGEST_BYTES,
    HASH_BYTES,
    Batch,
    BatchResult,
    BatchRows,
    DeadLetter,
    IncomingEvent,
    KeyedEvents,
    exact_levels_from,
    first_sightings,
    identity_pairs,
    keyed_events,
    plan_rows,
    procedure_year_rows,
    without_stored,
)
from services.aggregator.state_codec import dump_states, load_state
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS, LEVEL_COUNTERS, PROCEDURE_DAILY_COUNTERS

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


# A batch's identities travel as one bytea of (key, digest) pairs in key order; they are stored as
# uuid and bigint (migration 0005), and read back as bytes (`uuid_send`, `int8send`).
def _pairs_sql(query: str) -> str:
    pair = HASH_BYTES + DIGEST_BYTES
    return f"""
WITH pairs AS (
    SELECT i, encode(substring($1::bytea FROM i * {pair} + 1 FOR {HASH_BYTES}), 'hex')::uuid AS key,
           ('x' || encode(substring($1::bytea FROM i * {pair} + {HASH_BYTES + 1} FOR {DIGEST_BYTES}), 'hex'))
               ::bit({8 * DIGEST_BYTES})::bigint AS digest
    FROM generate_series(0, length($1::bytea) / {pair} - 1) AS i
)
{query}
"""


# The identities of the batch stored already, with their digests (usually none). `= ANY(ARRAY(...))`
# makes PostgreSQL probe the primary key for each; a join with the pairs hashes the whole table.
_KNOWN_IDENTITIES = _pairs_sql(
    "SELECT uuid_send(key) AS key, int8send(digest) AS digest FROM event_identities "
    "WHERE key = ANY(ARRAY(SELECT key FROM pairs))"
)

# A plain insert of the new ones: about half the cost of ON CONFLICT DO NOTHING, which inserts
# speculatively. A concurrent transaction inserting one of the keys (the same identity on another
# partition) makes it fail with a unique violation: the batch is retried and finds the key stored.
_INSERT_IDENTITIES = _pairs_sql("INSERT INTO event_identities (key, digest) SELECT key, digest FROM pairs ORDER BY i")


# The first day of the month of a date expression (date arithmetic: no time zone involved).
_MONTH_OF_DAY = "({day} - extract(day FROM {day})::int + 1)"


def _counter_rows_upsert_sql(table: str, key: str, key_of_day: str) -> str:
    """Upsert of the daily changes, sent as one JSON array of sparse rows (absent counters are 0),
    into `table` keyed by (unit, `key`), `key_of_day` naming the key of a row's day `r.day`:
    daily_counts by day, monthly_counts by month."""
    cols = ", ".join(ALL_COUNTERS)
    sums = ", ".join(f"sum(coalesce(r.{c}, 0))" for c in ALL_COUNTERS)
    types = ", ".join(f"{c} bigint" for c in ALL_COUNTERS)
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in ALL_COUNTERS)
    return f"""
INSERT INTO {table} (unit, {key}, {cols})
SELECT r.unit, {key_of_day}, {sums}
FROM jsonb_to_recordset($1::jsonb) AS r(unit text, day date, {types})
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (unit, {key}) DO UPDATE SET {updates}
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


def _monthly_cohort_upsert_sql() -> str:
    """Upsert of the same cohort changes into their months (monthly_cohorts), with their latest instant."""
    cols = ", ".join(COHORT_COUNTERS)
    sums = ", ".join(f"coalesce(sum(value) FILTER (WHERE counter = '{c}'), 0)" for c in COHORT_COUNTERS)
    updates = ", ".join(f"{c} = monthly_cohorts.{c} + EXCLUDED.{c}" for c in COHORT_COUNTERS)
    month = _MONTH_OF_DAY.format(day="(e->>2)::date")
    return f"""
WITH changes AS (
    SELECT e->>0 AS unit, e->>1 AS counter, {month} AS month, (e->>3)::timestamptz AS at,
           (e->>4)::bigint AS value
    FROM jsonb_array_elements($1::jsonb) AS e
)
INSERT INTO monthly_cohorts (unit, month, last_at, {cols})
SELECT unit, month, max(at), {sums} FROM changes GROUP BY unit, month ORDER BY unit, month
ON CONFLICT (unit, month) DO UPDATE SET
    last_at = greatest(monthly_cohorts.last_at, EXCLUDED.last_at), {updates}
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

_DAILY_UPSERT = _counter_rows_upsert_sql("daily_counts", "day", "r.day")
_MONTHLY_UPSERT = _counter_rows_upsert_sql("monthly_counts", "month", _MONTH_OF_DAY.format(day="r.day"))
_MONTHLY_COHORT_UPSERT = _monthly_cohort_upsert_sql()
_LEVEL_UPSERT = _level_upsert_sql()
_COHORT_UPSERT = _cohort_upsert_sql()
_PROCEDURE_DAYS_UPSERT = _procedure_days_upsert_sql()
_PROCEDURE_YEARS_ENSURE, _PROCEDURE_YEARS_UPDATE = _procedure_years_update_sql()

# The stored states of the given keys, one key array per kind: each probes the primary key (a join
# with the keys would hash the whole table).
_LOAD_STATES = " UNION ALL ".join(
    f"SELECT kind, key, state FROM aggregate_states WHERE kind = '{kind}' AND key = ANY(${i + 1}::text[])"
    for i, kind in enumerate(AGGREGATE_KINDS)
)

# The changed states, sent as three text arrays (kinds, keys, JSON texts); written in key order so
# that concurrent writers take row locks in one order.
_STATES_UPSERT = """
INSERT INTO aggregate_states (kind, key, state)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS s(kind, key, state) ORDER BY 1, 2
ON CONFLICT (kind, key) DO UPDATE SET state = EXCLUDED.state
"""


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


async def open_pool(settings: AggregatorSettings) -> asyncpg.Pool:
    """The aggregator's connection pool, with its session settings."""
    # PostgreSQL's own choice between custom and generic plans (plan_cache_mode=auto), although on
    # a fresh stack the generic plans are made on empty tables: forcing custom plans measured about
    # a quarter fewer events/s through a backlog (re-planning every batch's large statements) and
    # no shorter delay after a burst (docs/operations.md, "Fresh stack").
    return await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.db_pool_size,
        server_settings={
            **settings.session_settings(),
            "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        },
    )


class AggregatorStore:
    """Reads and writes the aggregator's tables in one schema."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        units: UnitResolver = units_valid_forever,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        exact_levels_since: datetime | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._units = units  # where a fact is stored: the registry entry valid on its day
        self._clock = clock  # which level changes are stored exactly (`levels_kept_from`)
        self._exact_levels_since = exact_levels_since

    async def refresh_statistics(self) -> None:
        """ANALYZE the tables a batch reads and writes (it does not block their writers)."""
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(f"ANALYZE {', '.join(_BATCH_TABLES)}")
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"could not analyze: {exc}") from exc

    def levels_kept_from(self) -> datetime:
        """The first instant whose level changes the batches store now: `exact_levels_from`, or
        EXACT_LEVEL_CHANGES_SINCE if that is earlier."""
        cut = exact_levels_from(self._clock())
        return cut if self._exact_levels_since is None else min(cut, self._exact_levels_since)

    async def drop_level_changes_before(self, instant: datetime) -> int:
        """Delete the exact level changes of instants before `instant` (`exact_levels_from`: their
        days are in the daily rows); returns how many rows went."""
        try:
            async with self._pool.acquire() as conn:
                status: str = await conn.execute("DELETE FROM level_changes WHERE at < $1", instant)
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"could not delete past level changes: {exc}") from exc
        return int(status.rsplit(" ", 1)[-1])

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
                keyed = keyed_events(fresh)
                rows = plan_rows(keyed, await self._load_states(conn, keyed), self._units)
                await self._write_rows(conn, rows)
                await self._advance_positions(conn, batch)
                dead_letters = batch.undecodable + conflicts
                if dead_letters:
                    await publish_dead_letters(dead_letters)
                # Last: concurrent batches (lanes, instances) update the same daily and monthly
                # rows, and each holds their locks until it commits.
                await self._write_sums(conn, rows)
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
        return BatchResult(len(fresh), duplicates, dead_letters)

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
        """Split events into first sightings (stored now), duplicates (counted) and identity conflicts."""
        sightings = first_sightings(events)
        if not sightings.first:
            return [], sightings.duplicates, sightings.conflicts
        ordered = sightings.ordered_keys()
        known = await conn.fetch(_KNOWN_IDENTITIES, identity_pairs(sightings, ordered))
        stored = {bytes(r["key"]): bytes(r["digest"]) for r in known}
        if stored:
            ordered = [key for key in ordered if key not in stored]
        if ordered:
            await conn.execute(_INSERT_IDENTITIES, identity_pairs(sightings, ordered))
        return without_stored(sightings, stored)

    async def _load_states(self, conn: Connection, keyed: KeyedEvents) -> dict[AggregateKey, State]:
        """The stored states of the batch's aggregates (those it has never seen are absent)."""
        prior: dict[AggregateKey, State] = {}
        if keyed.events:
            rows = await conn.fetch(_LOAD_STATES, *(keyed.keys_by_kind[kind] for kind in AGGREGATE_KINDS))
            for r in rows:
                aggregate: AggregateKey = (r["kind"], r["key"])
                prior[aggregate] = load_state(aggregate, r["state"])
        return prior

    async def _write_rows(self, conn: Connection, rows: BatchRows) -> None:
        """The new states, level changes and procedure tables (the sums come last, `_write_sums`)."""
        if rows.states:
            await conn.execute(_STATES_UPSERT, *dump_states(rows.states))
        delta = rows.delta
        levels = rows.levels(self.levels_kept_from()) if delta.levels else []
        if levels:
            await conn.execute(_LEVEL_UPSERT, orjson.dumps(levels).decode())
        procedure_days = rows.procedure_days()
        if procedure_days:
            counts = await conn.fetch(_PROCEDURE_DAYS_UPSERT, orjson.dumps(procedure_days).decode())
            years = orjson.dumps(procedure_year_rows(counts)).decode()
            await conn.execute(_PROCEDURE_YEARS_ENSURE, years)
            await conn.execute(_PROCEDURE_YEARS_UPDATE, years)
        if delta.procedure_periods:
            await conn.execute(_PERIODS_UPSERT, orjson.dumps(rows.periods()).decode())

    async def _write_sums(self, conn: Connection, rows: BatchRows) -> None:
        """The cohort changes, the daily counts and their monthly roll-ups, in this order (the rows
        of each in key order): every batch locks these shared rows in one order, and holds them only
        until it commits."""
        cohorts = orjson.dumps(rows.cohorts()).decode() if rows.delta.cohorts else None
        if cohorts is not None:
            await conn.execute(_COHORT_UPSERT, cohorts)
        daily = rows.daily()
        if daily:
            payload = orjson.dumps(daily).decode()
            await conn.execute(_DAILY_UPSERT, payload)
            await conn.execute(_MONTHLY_UPSERT, payload)
        if cohorts is not None:
            await conn.execute(_MONTHLY_COHORT_UPSERT, cohorts)

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
