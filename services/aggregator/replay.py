"""Rebuild the aggregator's tables from the whole events topic and compare them with the live ones.

The replay applies the topic from its beginning into a fresh schema through the very code the
aggregator runs (the lanes of `pipeline.split_into_lanes`, each applied by `lanes.LaneApplier`
with `AggregatorStore`, poison records isolated as the live aggregator isolates them), then compares the tables with the
live schema inside one read-only snapshot of the database. Since the indicators depend only on the
set of distinct accepted events, any difference is a bug (or the live aggregator is behind).

Usage: `tthc-replay [--live-schema tthc] [--replay-schema NAME] [--keep] [--topic NAME]`;
DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS as for the aggregator. Exit code 1 on any difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.aggregator.config import AggregatorSettings
from services.aggregator.domain import AggregateKey, State
from services.aggregator.lanes import LaneApplier, LaneOutcome
from services.aggregator.migrate import apply_migrations
from services.aggregator.pipeline import (
    Batch,
    BatchResult,
    DeadLetter,
    Records,
    record_count,
    split_into_lanes,
)
from services.aggregator.state_codec import load_state
from services.aggregator.store import AggregatorStore, open_pool
from services.aggregator.unit_placement import registry_placement
from services.infra.kafka_admin import topic_partitions
from services.infra.polling import PollTimeout, poll_until
from shared.counters import ALL_COUNTERS, COHORT_COUNTERS, LEVEL_COUNTERS, PROCEDURE_DAILY_COUNTERS

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# How many differing rows of each table the report shows.
SAMPLE_ROWS = 10
# Polling interval while waiting for the live aggregator to reach the end offsets.
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class TableDiff:
    table: str
    rows: int  # how many keys differ
    samples: list[str]


@dataclass
class ReplayReport:
    topic: str
    live_schema: str
    replay_schema: str
    end_offsets: dict[int, int] = field(default_factory=dict)
    replay_positions: dict[int, int] = field(default_factory=dict)
    live_positions: dict[int, int] = field(default_factory=dict)
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    tables: list[TableDiff] = field(default_factory=list)
    kept: bool = False
    truncated: dict[int, int] = field(default_factory=dict)

    @property
    def position_mismatches(self) -> dict[int, tuple[int | None, int | None]]:
        """partition -> (live, replay) where the live aggregator stands elsewhere than the replay."""
        partitions = set(self.live_positions) | set(self.replay_positions)
        return {
            p: (self.live_positions.get(p), self.replay_positions.get(p))
            for p in sorted(partitions)
            if self.live_positions.get(p) != self.replay_positions.get(p)
        }

    @property
    def differences(self) -> bool:
        return bool(self.position_mismatches) or any(diff.rows for diff in self.tables)

    def render(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        lines = [
            f"replay of topic {self.topic!r} into schema {self.replay_schema!r}"
            f"{' (kept)' if self.kept else ' (dropped)'}, compared with schema {self.live_schema!r}",
            f"records {self.records}, applied {self.applied}, duplicates {self.duplicates}, "
            f"dead letters {self.dead_letters} (not published), {self.seconds:.1f} s ({rate:,.0f} records/s)",
        ]
        if self.truncated:
            lines.append(
                "WARNING: the topic no longer holds its first records (retention), so the replay cannot rebuild "
                f"what they did; first offsets held: {self.truncated}"
            )
        mismatches = self.position_mismatches
        if mismatches:
            lines.append("positions differ (the live aggregator is behind or ahead of the replay):")
            lines += [
                f"  partition {p}: live {live}, replay {replay}, end {self.end_offsets.get(p)}"
                for p, (live, replay) in mismatches.items()
            ]
        for diff in self.tables:
            if diff.rows:
                lines.append(f"{diff.table}: {diff.rows} keys differ")
                lines += [f"  {sample}" for sample in diff.samples]
            else:
                lines.append(f"{diff.table}: equal")
        lines.append("DIFFERENCES FOUND" if self.differences else "no differences")
        return "\n".join(lines)


class _CountingPublisher:
    """Stands in for the dead-letter producer: the live aggregator already published them."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        self.count += len(letters)


def _check_schema_name(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"invalid schema name {name!r} (expected {_SCHEMA_NAME.pattern})")
    return name


class ReplayFailed(RuntimeError):
    """A batch of the replay failed (the database went away, or another writer took the schema)."""


class TopicReplayer:
    """Applies a topic from its beginning into one store, up to given offsets per partition."""

    def __init__(self, settings: AggregatorSettings, store: AggregatorStore, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._publisher = _CountingPublisher()
        self._lanes = LaneApplier(topic, store, self._publisher, self._committed)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._partitions: list[TopicPartition] = []
        self._positions: dict[int, int | None] = {}  # what the replay schema stores
        self.records = 0
        self.applied = 0
        self.duplicates = 0
        self.truncated: dict[int, int] = {}  # partition -> first offset still held, when not 0

    @property
    def dead_letters(self) -> int:
        return self._publisher.count

    @property
    def positions(self) -> dict[int, int]:
        return {p: offset for p, offset in self._positions.items() if offset is not None}

    async def start(self) -> dict[int, int]:
        """Assign every partition at its beginning; returns the current end offsets."""
        partitions = await topic_partitions(self._settings.kafka_bootstrap_servers, self._topic)
        await self._consumer.start()
        self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._positions = dict.fromkeys(partitions)
        beginnings = await self._consumer.beginning_offsets(self._partitions)
        self.truncated = {tp.partition: offset for tp, offset in beginnings.items() if offset > 0}
        return await self.end_offsets()

    async def end_offsets(self) -> dict[int, int]:
        ends = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run_to(self, targets: dict[int, int]) -> None:
        """Apply every record before `targets[p]` of each partition p, in batches as the aggregator does."""
        pending: set[TopicPartition] = set()
        for tp in self._partitions:
            if await self._consumer.position(tp) < targets.get(tp.partition, 0):
                pending.add(tp)
        self._consumer.pause(*(set(self._partitions) - pending))
        self._consumer.resume(*pending)
        while pending:
            records = await self._consumer.getmany(
                *pending, timeout_ms=self._settings.poll_timeout_ms, max_records=self._settings.max_batch_records
            )
            for tp in list(records):
                target = targets[tp.partition]
                kept = [record for record in records[tp] if record.offset < target]
                if len(kept) < len(records[tp]):
                    self._consumer.seek(tp, target)  # fetched past the target: refetch later if needed
                if kept:
                    records[tp] = kept
                else:
                    del records[tp]
            if records:
                await self._apply(records)
            for tp in list(pending):
                if await self._consumer.position(tp) >= targets[tp.partition]:
                    pending.discard(tp)
                    self._consumer.pause(tp)

    async def _apply(self, records: Records) -> None:
        """Apply records in lanes as the aggregator does; a failed lane ends the replay."""
        positions = dict(self._positions)
        lanes = split_into_lanes(records, self._settings.apply_lanes)
        outcomes = await asyncio.gather(*(self._lanes.apply(lane, positions) for lane in lanes))
        if any(outcome is not LaneOutcome.APPLIED for outcome in outcomes):
            raise ReplayFailed(f"a batch of the replay failed: {self._lanes.last_failure}")
        self.records += record_count(records)

    def _committed(self, batch: Batch, records: Records, result: BatchResult, started: float) -> None:
        for partition, (_start, next_offset) in batch.ranges.items():
            self._positions[partition] = next_offset
        self.applied += result.applied
        self.duplicates += result.duplicates


# --- comparing two schemas ------------------------------------------------------------------------

PERIOD_KEYS = ("unit", "procedure_code", "starts_at", "ends_at", "online", "fee_bearing")


def _counter_diff_sql(
    table: str,
    keys: tuple[str, ...],
    counters: Sequence[str],
    live: str,
    replay: str,
    zero: str = "0",
    rows_where: str = "true",
) -> str:
    """Keys whose counters differ among the rows `rows_where` selects, a missing row counting as
    zeros (so all-zero rows are ignored)."""
    selected = ", ".join(f"coalesce(l.{c}, {zero}) AS l_{c}, coalesce(r.{c}, {zero}) AS r_{c}" for c in counters)
    differ = " OR ".join(f"coalesce(l.{c}, {zero}) <> coalesce(r.{c}, {zero})" for c in counters)
    key_list = ", ".join(keys)
    return (
        f"SELECT {key_list}, {selected}, count(*) OVER () AS total "
        f'FROM (SELECT * FROM "{live}".{table} WHERE {rows_where}) l '
        f'FULL JOIN (SELECT * FROM "{replay}".{table} WHERE {rows_where}) r USING ({key_list}) '
        f"WHERE {differ} ORDER BY {key_list} LIMIT {SAMPLE_ROWS}"
    )


def _value_diff_sql(table: str, keys: tuple[str, ...], column: str, live: str, replay: str) -> str:
    key_list = ", ".join(keys)
    return (
        f"SELECT {key_list}, l.{column}::text AS l_value, r.{column}::text AS r_value, "
        f"count(*) OVER () AS total "
        f'FROM "{live}".{table} l FULL JOIN "{replay}".{table} r USING ({key_list}) '
        f"WHERE l.{column} IS DISTINCT FROM r.{column} ORDER BY {key_list} LIMIT {SAMPLE_ROWS}"
    )


def _state_diff_sql(live: str, replay: str) -> str:
    return (
        "SELECT kind, key, l.state AS l_value, r.state AS r_value "
        f'FROM "{live}".aggregate_states l FULL JOIN "{replay}".aggregate_states r USING (kind, key) '
        "WHERE l.state IS DISTINCT FROM r.state ORDER BY kind, key"
    )


def _decoded(key: AggregateKey, text: str | None) -> State | str | None:
    """The state a stored text holds (None if absent, the text itself if it cannot be read)."""
    if text is None:
        return None
    try:
        return load_state(key, text)
    except (ValueError, KeyError, TypeError, IndexError):
        return text


async def _state_diff(conn: asyncpg.Connection, live: str, replay: str) -> TableDiff:
    """The states that differ. Texts are compared first, then the differing ones decoded: a state
    stored in the earlier form (before migration 0005) and its replay in the compact form differ
    as texts only."""
    rows, samples = 0, list[str]()
    async for row in conn.cursor(_state_diff_sql(live, replay), prefetch=1000):
        key: AggregateKey = (row["kind"], row["key"])
        if _decoded(key, row["l_value"]) == _decoded(key, row["r_value"]):
            continue
        rows += 1
        if len(samples) < SAMPLE_ROWS:
            samples.append(
                f"kind={key[0]} key={_short(key[1])}: live {_short(row['l_value'])} | replay {_short(row['r_value'])}"
            )
    return TableDiff("aggregate_states", rows, samples)


def _short(value: Any, limit: int = 300) -> str:
    text = "absent" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


async def compare_tables(
    conn: asyncpg.Connection, live: str, replay: str, levels_kept_from: datetime
) -> list[TableDiff]:
    """Differences of the tables that follow from the events (run inside one snapshot); exact level
    changes from `levels_kept_from` on (`AggregatorStore.levels_kept_from`)."""
    diffs: list[TableDiff] = []
    no_days = "repeat('0', 366)::bit(366)"
    # Exact level changes are kept from a moving instant on: the rows before it may be there on one
    # side and deleted on the other; their days are in daily_counts.
    exact_levels = f"at >= '{levels_kept_from.isoformat()}'::timestamptz"
    counter_tables: tuple[tuple[str, tuple[str, ...], Sequence[str], str, str], ...] = (
        ("daily_counts", ("unit", "day"), ALL_COUNTERS, "0", "true"),
        ("level_changes", ("unit", "at"), LEVEL_COUNTERS, "0", exact_levels),
        ("cohort_changes", ("unit", "day", "at"), COHORT_COUNTERS, "0", "true"),
        ("monthly_counts", ("unit", "month"), ALL_COUNTERS, "0", "true"),
        ("monthly_cohorts", ("unit", "month"), COHORT_COUNTERS, "0", "true"),
        ("procedure_days", ("unit", "procedure_code", "day"), PROCEDURE_DAILY_COUNTERS, "0", "true"),
        ("procedure_years", ("unit", "procedure_code", "year"), PROCEDURE_DAILY_COUNTERS, no_days, "true"),
        ("procedure_periods", PERIOD_KEYS, ("n",), "0", "true"),
    )
    for table, keys, counters, zero, rows_where in counter_tables:
        rows = await conn.fetch(_counter_diff_sql(table, keys, counters, live, replay, zero, rows_where))
        samples = []
        for row in rows:
            changes = ", ".join(
                f"{c} live {row[f'l_{c}']} replay {row[f'r_{c}']}" for c in counters if row[f"l_{c}"] != row[f"r_{c}"]
            )
            samples.append(" ".join(f"{key}={row[key]}" for key in keys) + f": {changes}")
        diffs.append(TableDiff(table, rows[0]["total"] if rows else 0, samples))
    diffs.append(await _state_diff(conn, live, replay))
    rows = await conn.fetch(_value_diff_sql("event_identities", ("key",), "digest", live, replay))
    samples = [f"key={row['key']}: live {_short(row['l_value'])} | replay {_short(row['r_value'])}" for row in rows]
    diffs.append(TableDiff("event_identities", rows[0]["total"] if rows else 0, samples))
    return diffs


async def _positions(conn: asyncpg.Connection, schema: str, topic: str) -> dict[int, int]:
    rows = await conn.fetch(f'SELECT partition, next_offset FROM "{schema}".consumer_positions WHERE topic = $1', topic)
    return {r["partition"]: r["next_offset"] for r in rows}


def _behind(positions: dict[int, int], targets: dict[int, int]) -> dict[int, int]:
    return {p: end for p, end in targets.items() if end > positions.get(p, 0)}


async def _wait_for_live(
    conn: asyncpg.Connection, schema: str, topic: str, targets: dict[int, int], wait: float
) -> None:
    """Wait up to `wait` seconds for the live aggregator to reach `targets` (the report says if not)."""

    async def caught_up() -> bool:
        return not _behind(await _positions(conn, schema, topic), targets)

    with contextlib.suppress(PollTimeout):
        await poll_until(caught_up, within=wait, interval=_POLL_SECONDS, what="the live aggregator")


async def _schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", schema))


async def replay_and_compare(
    settings: AggregatorSettings,
    *,
    live_schema: str,
    replay_schema: str,
    topic: str | None = None,
    keep: bool = False,
    wait_seconds: float = 30.0,
) -> ReplayReport:
    """Rebuild every table from the beginning of the topic into `replay_schema`, then compare.

    The replay runs to the end offsets read at its start. The comparison happens in one read-only
    snapshot of the live schema; if the live aggregator has applied more than that by then, the
    replay first catches up to exactly the snapshot's positions, so a busy live system compares too.
    """
    topic = topic or settings.events_topic
    _check_schema_name(live_schema)
    _check_schema_name(replay_schema)
    if live_schema == replay_schema:
        raise ValueError("the replay schema must differ from the live schema")
    url = settings.database_url.get_secret_value()
    report = ReplayReport(topic, live_schema, replay_schema, kept=keep)

    admin = await asyncpg.connect(url)
    try:
        if not await _schema_exists(admin, live_schema):
            raise LookupError(f"live schema {live_schema!r} does not exist")
        if await _schema_exists(admin, replay_schema):
            raise FileExistsError(f"schema {replay_schema!r} exists already; choose a fresh name")
        await apply_migrations(admin, replay_schema)
    finally:
        await admin.close()

    try:
        await _replay_into(settings, report, wait_seconds)
    finally:
        if not keep:
            await _drop_schema(url, replay_schema)
    return report


async def _replay_into(settings: AggregatorSettings, report: ReplayReport, wait_seconds: float) -> None:
    topic, live_schema, replay_schema = report.topic, report.live_schema, report.replay_schema
    url = settings.database_url.get_secret_value()
    replay_settings = settings.model_copy(update={"database_schema": replay_schema, "events_topic": topic})
    pool = await open_pool(replay_settings)
    units = registry_placement(settings.unit_registry())
    store = AggregatorStore(pool, replay_schema, units, exact_levels_since=settings.exact_level_changes_since)
    replayer = TopicReplayer(replay_settings, store, topic)
    started = time.perf_counter()
    try:
        report.end_offsets = await replayer.start()
        report.truncated = replayer.truncated
        log.info("replaying %s up to %s", topic, report.end_offsets)
        await replayer.run_to(report.end_offsets)
        snapshot = await asyncpg.connect(url)
        try:
            # Waits on the replay's positions, not the end offsets: they also hold when a partition
            # ends with records that carry no event (transaction markers).
            await _wait_for_live(snapshot, live_schema, topic, replayer.positions, wait_seconds)
            async with snapshot.transaction(isolation="repeatable_read", readonly=True):
                report.live_positions = await _positions(snapshot, live_schema, topic)
                ahead = {p: live for p, live in report.live_positions.items() if live > replayer.positions.get(p, 0)}
                if ahead:  # events arrived after the replay started: apply exactly what the live has
                    log.info("the live aggregator is ahead on %s: catching up", sorted(ahead))
                    await replayer.run_to({**report.end_offsets, **ahead})
                report.seconds = time.perf_counter() - started
                report.replay_positions = replayer.positions
                report.tables = await compare_tables(snapshot, live_schema, replay_schema, store.levels_kept_from())
        finally:
            await snapshot.close()
    finally:
        report.records = replayer.records
        report.applied = replayer.applied
        report.duplicates = replayer.duplicates
        report.dead_letters = replayer.dead_letters
        await replayer.stop()
        await pool.close()


async def _drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    default_schema = "tthc_replay_" + datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    parser = argparse.ArgumentParser(
        prog="tthc-replay", description="Rebuild the aggregator's tables from the events topic and compare."
    )
    parser.add_argument("--live-schema", default="tthc", help="schema of the live aggregator (default: tthc)")
    parser.add_argument("--replay-schema", default=default_schema, help="fresh schema for the rebuild")
    parser.add_argument("--keep", action="store_true", help="keep the replay schema afterwards")
    parser.add_argument("--topic", default=None, help="events topic (default: EVENTS_TOPIC)")
    parser.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the live aggregator to reach the end offsets"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    settings = AggregatorSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    report = asyncio.run(
        replay_and_compare(
            settings,
            live_schema=args.live_schema,
            replay_schema=args.replay_schema,
            topic=args.topic,
            keep=args.keep,
            wait_seconds=args.wait,
        )
    )
    print(report.render())
    sys.exit(1 if report.differences else 0)


if __name__ == "__main__":
    main()
