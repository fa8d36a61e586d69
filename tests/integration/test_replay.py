"""The replay tool against a live aggregator fed a messy stream through real Kafka and PostgreSQL.

The stream has duplicates, shuffled order, corrections, orphans, identity conflicts and timestamps
around local midnight. After the aggregator has applied it, a replay into another schema must find
no differences, the reporting figures must equal the reference model's, and a tampered live schema
must be reported (by the library function and by the `tthc-replay` command's exit code).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.aggregator.config import AggregatorSettings
from services.aggregator.consumer import EventConsumer
from services.aggregator.migrate import apply_migrations
from services.aggregator.replay import replay_and_compare
from services.aggregator.store import AggregatorStore, open_pool
from services.infra.kafka_admin import ensure_topics, topic_partitions
from services.reporting.indicators import figure_groups, total
from services.reporting.queries import IndicatorQueries
from shared.events import encode_event, event_adapter
from shared.timezone import end_of_day
from tests import reference_model as ref
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.reference_model import event

pytestmark = pytest.mark.integration

VN = timezone(timedelta(hours=7))
UNITS = ["u-a", "u-b", "u-c", "u-d"]
PARTITIONS = 4


# --- a messy stream -------------------------------------------------------------------------------


def _moment(rng: random.Random) -> datetime:
    day = date(2023, 3, 1) + timedelta(days=rng.randrange(40))
    if rng.random() < 0.2:  # a few minutes either side of local midnight, in UTC or local time
        local = datetime(day.year, day.month, day.day, tzinfo=VN) + timedelta(minutes=rng.choice([-3, -1, 0, 1, 4]))
        return local.astimezone(UTC) if rng.random() < 0.5 else local
    return datetime(day.year, day.month, day.day, 7, tzinfo=VN) + timedelta(minutes=rng.randrange(600))


def _after(rng: random.Random, start: datetime, days: int = 10) -> datetime:
    return start + timedelta(minutes=rng.randrange(1, days * 1440))


def messy_stream(seed: int) -> tuple[list[dict[str, Any]], int]:
    """Events in the order they are produced, and how many of them are identity conflicts."""
    rng = random.Random(seed)
    counter = iter(range(1, 10**9))

    def new_id() -> str:
        return f"ev-{next(counter)}"

    events: list[dict[str, Any]] = []
    for n in range(300):
        did = f"dos-{n}"
        received_at = _moment(rng)
        due = None if rng.random() < 0.15 else _after(rng, received_at, 12)
        history = []
        fields = {"procedure_code": "1.0", "fee_required": rng.random() < 0.4}
        for correction in range(2 if rng.random() < 0.15 else 1):
            history.append(
                event(
                    "dossier.received", did, id=new_id(),
                    time=_after(rng, received_at, 2) if correction else received_at,
                    unit=rng.choice(UNITS), channel=rng.choice(["online", "direct", "postal"]),
                    received_at=received_at, due_at=due, digitization_required=rng.random() < 0.9, **fields,
                )
            )  # fmt: skip
        if rng.random() < 0.15:
            history.append(
                event("dossier.due_changed", did, id=new_id(), time=_after(rng, received_at, 3),
                      due_at=None if rng.random() < 0.2 else _after(rng, received_at, 20))
            )  # fmt: skip
        if rng.random() < 0.5:
            history.append(
                event("dossier.components_digitized", did, id=new_id(), digitized_at=_after(rng, received_at, 1))
            )
        ended = False
        if rng.random() < 0.7:
            ended = True
            resolved_at = _after(rng, received_at, 15)
            for _ in range(2 if rng.random() < 0.1 else 1):  # two at the same time: the greater id wins
                history.append(
                    event("dossier.resolved", did, id=new_id(), time=resolved_at, resolved_at=resolved_at,
                          outcome=rng.choice(["approved", "rejected"]), result_digitization_required=rng.random() < 0.8)
                )  # fmt: skip
            if rng.random() < 0.6:
                history.append(event("dossier.result_digitized", did, id=new_id(), digitized_at=resolved_at))
            if rng.random() < 0.3:
                rated_at = _after(rng, resolved_at, 5)
                history.append(
                    event("dossier.rated", did, id=new_id(), rated_at=rated_at,
                          rating=rng.choice(["very_satisfied", "satisfied", "dissatisfied"]))
                )  # fmt: skip
        if not ended and rng.random() < 0.2:
            history.append(event("dossier.withdrawn", did, id=new_id(), withdrawn_at=_after(rng, received_at, 5)))
        if rng.random() < 0.4:
            history.append(
                event("dossier.paid", did, id=new_id(), paid_at=_after(rng, received_at, 2),
                      method=rng.choice(["online", "offline"]), amount_vnd=rng.randrange(0, 500_000))
            )  # fmt: skip
        if rng.random() < 0.05:  # an orphan: its `received` events never arrive
            history = [item for item in history if not item["type"].endswith(".received")]
        events += history
    for n in range(100):
        doc = f"doc-{n}"
        registered_at = _moment(rng)
        for correction in range(2 if rng.random() < 0.1 else 1):
            events.append(
                event("document.registered", doc, id=new_id(),
                      time=_after(rng, registered_at, 1) if correction else registered_at,
                      unit=rng.choice(UNITS), direction=rng.choice(["incoming", "outgoing"]),
                      registered_at=registered_at, electronic=rng.random() < 0.7, confidential=rng.random() < 0.1)
            )  # fmt: skip
        for signer in ("leader", "organization"):
            for _ in range(rng.choice([0, 1, 1, 2])):
                events.append(
                    event("document.signed", doc, id=new_id(), signed_at=_after(rng, registered_at, 3), signer=signer)
                )
    for n in range(20):
        unit, code = rng.choice(UNITS), f"2.{n % 7}"
        for _ in range(rng.randrange(1, 4)):
            at = _moment(rng)
            if rng.random() < 0.7:
                level = rng.choice(["info", "partial_online", "full_online"])
                events.append(
                    event("procedure.published", code, id=new_id(), unit=unit, service_level=level, published_at=at)
                )
            else:
                events.append(event("procedure.unpublished", code, id=new_id(), unit=unit, unpublished_at=at))
    events += rng.sample(events, len(events) // 10)  # duplicates
    rng.shuffle(events)
    # Identity conflicts, produced after the event whose identity they reuse (same subject, so the
    # same partition: the original is the one accepted first).
    conflicts = []
    for original in rng.sample([e for e in events if e["type"].endswith(".withdrawn")], 3):
        copy = {**original, "data": {**original["data"], "withdrawn_at": "2023-01-01T00:00:00+07:00"}}
        conflicts.append(copy)
    return events + conflicts, len(conflicts)


# --- running things -------------------------------------------------------------------------------


async def produce(topic: str, events: list[dict[str, Any]]) -> None:
    """As the intake publishes: canonical JSON, keyed by subject, idempotent producer."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, linger_ms=10)
    await producer.start()
    try:
        futures = []
        for raw in events:
            model = event_adapter.validate_json(ref.to_json_bytes(raw))
            futures.append(await producer.send(topic, value=encode_event(model), key=model.subject.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_offsets(topic: str) -> dict[int, int]:
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(KAFKA, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def count_records(topic: str) -> int:
    return sum((await end_offsets(topic)).values())


@asynccontextmanager
async def live_aggregator(settings: AggregatorSettings) -> AsyncIterator[asyncpg.Pool]:
    """One aggregator instance running in this event loop, as the service's composition root builds it."""
    pool = await open_pool(settings)
    async with pool.acquire() as conn:
        await apply_migrations(conn, settings.database_schema)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True)
    await producer.start()
    consumer = EventConsumer(
        settings,
        AggregatorStore(pool, settings.database_schema, exact_levels_since=settings.exact_level_changes_since),
        producer,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield pool
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=30)
        await producer.stop()
        await pool.close()


async def caught_up(pool: asyncpg.Pool, topic: str, ends: dict[int, int]) -> bool:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT partition, next_offset FROM consumer_positions WHERE topic = $1", topic)
    stored = {r["partition"]: r["next_offset"] for r in rows}
    return all(stored.get(p, 0) >= end for p, end in ends.items())


# Windows of the check against the reference model: (from, to, as_of or None for the end of `to`).
# Level changes kept exact from before the streams' first day, not only from yesterday.
EXACT_SINCE = datetime.fromisoformat("2020-01-01T00:00:00+07:00")
WINDOWS: list[tuple[date, date, datetime | None]] = [
    (date(2023, 1, 1), date(2023, 12, 31), None),
    (date(2023, 3, 1), date(2023, 3, 31), None),
    (date(2023, 3, 10), date(2023, 3, 10), None),
    (date(2023, 3, 1), date(2023, 3, 20), datetime(2023, 3, 20, 13, 30, tzinfo=VN)),
    (date(2023, 4, 1), date(2023, 4, 2), datetime(2023, 4, 2, 0, 1, tzinfo=VN)),
    (date(2023, 3, 15), date(2023, 3, 15), datetime(2023, 3, 15, 0, 0, tzinfo=VN)),
]


async def test_replay_finds_no_differences_and_figures_equal_the_reference(db_schema: str) -> None:
    topic, dead_letters = unique("replay_events"), unique("replay_dlq")
    events, conflicts = messy_stream(seed=20231127)
    await ensure_topics(KAFKA, {topic: PARTITIONS, dead_letters: 1})
    await produce(topic, events)
    ends = await end_offsets(topic)
    assert sum(ends.values()) == len(events)

    settings = AggregatorSettings(
        kafka_bootstrap_servers=KAFKA,
        database_url=DATABASE_URL,
        events_topic=topic,
        dead_letter_topic=dead_letters,
        consumer_group=unique("replay_group"),
        database_schema=db_schema,
        max_batch_records=500,  # several batches per partition
        exact_level_changes_since=EXACT_SINCE,  # the WINDOWS ask figures at past instants
    )
    distinct = ref.distinct_events(events)
    async with live_aggregator(settings) as pool:
        await eventually(lambda: caught_up(pool, topic, ends), timeout=90, what="the aggregator to catch up")

        queries = IndicatorQueries(pool)
        for start, end, as_of in WINDOWS:
            at = as_of or end_of_day(end)
            for units in (UNITS, UNITS[:1], UNITS[1:3]):
                counts = await queries.counts_by_unit(list(units), start, end, at)
                assert figure_groups(total(counts, units)) == ref.figures(events, start, end, at, units), (
                    start,
                    end,
                    at,
                    units,
                )

        replay_schema = unique("replay")
        report = await replay_and_compare(
            settings, live_schema=db_schema, replay_schema=replay_schema, topic=topic, wait_seconds=10
        )
        assert not report.differences, report.render()
        assert report.records == len(events)
        assert report.applied == len(distinct)
        assert report.dead_letters == conflicts
        assert report.replay_positions == ends
        assert await count_records(dead_letters) == conflicts
        assert "no differences" in report.render()
        assert not await _schema_exists(replay_schema)  # dropped without --keep

    # Tamper with the stopped live schema: the replay must name each table that changed.
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": db_schema})
    try:
        await conn.execute("UPDATE daily_counts SET received = received + 1 WHERE unit = $1", "u-a")
        await conn.execute(
            "DELETE FROM event_identities WHERE key = (SELECT key FROM event_identities ORDER BY key LIMIT 1)"
        )
        await conn.execute(
            "UPDATE aggregate_states SET state = '{}' WHERE (kind, key) = "
            "(SELECT kind, key FROM aggregate_states WHERE kind = 'document' ORDER BY key LIMIT 1)"
        )
        # Another text of the same state (as jsonb writes it: spaces, keys reordered) is no difference.
        rewritten = await conn.execute(
            "UPDATE aggregate_states SET state = state::jsonb::text WHERE kind = 'dossier' AND state LIKE '%\"v\":%'"
        )
        assert rewritten != "UPDATE 0"
    finally:
        await conn.close()
    report = await replay_and_compare(
        settings, live_schema=db_schema, replay_schema=unique("replay"), topic=topic, wait_seconds=0
    )
    rows = {diff.table: diff.rows for diff in report.tables}
    assert rows["daily_counts"] > 0 and rows["event_identities"] == 1 and rows["aggregate_states"] == 1
    assert rows["level_changes"] == 0
    assert not report.position_mismatches
    assert report.differences and "DIFFERENCES FOUND" in report.render()

    # The command: the same comparison, exit code 1, the replay schema kept on request.
    kept = unique("replay")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "DATABASE_URL": DATABASE_URL,
        "EVENTS_TOPIC": topic,
        "LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "services.aggregator.replay", "--live-schema", db_schema]
    args += ["--replay-schema", kept, "--keep", "--wait", "0"]
    done = await asyncio.to_thread(subprocess.run, args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIFFERENCES FOUND" in done.stdout and "event_identities: 1 keys differ" in done.stdout
    assert await _schema_exists(kept)  # dropped with the session's schemas (tests/conftest.py)


async def test_replay_refuses_bad_schemas(db_schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{db_schema}"')
    finally:
        await conn.close()
    settings = AggregatorSettings(kafka_bootstrap_servers=KAFKA, database_url=DATABASE_URL)
    with pytest.raises(ValueError, match="must differ"):
        await replay_and_compare(settings, live_schema=db_schema, replay_schema=db_schema, topic="none")
    with pytest.raises(LookupError):
        await replay_and_compare(settings, live_schema=unique("absent"), replay_schema=unique("r"), topic="none")
    with pytest.raises(FileExistsError):
        await replay_and_compare(settings, live_schema="public", replay_schema=db_schema, topic="none")
    assert await _schema_exists(db_schema)  # never dropped: it was not ours


async def _schema_exists(schema: str) -> bool:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", schema))
    finally:
        await conn.close()
