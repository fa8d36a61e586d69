"""Exactly once under crashes: the aggregator is killed with SIGKILL at random moments while it
applies more than 100,000 events, PostgreSQL and Kafka are each restarted once mid-stream, and the
final tables equal what the pure core computes from the distinct events; the figures equal the
reference model's."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import asyncpg
import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.replay import replay_and_compare
from services.infra.kafka_admin import ensure_topics
from services.reporting.indicators import figure_groups, total
from services.reporting.queries import IndicatorQueries
from shared.timezone import end_of_day
from tests import reference_model
from tests.conftest import eventually
from tests.in_process import daily_counts_table, end_offsets, produce, roll_up_differences
from tests.infra import PrivateServer, private_kafka, private_postgres
from tests.streams import UNITS, expected_daily_counts, first_accepted, messy_stream
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.integration

KILLS = 20
SEED = 20231127
# Level changes kept exact from before the stream's first day, not only from yesterday.
EXACT_SINCE = datetime.fromisoformat("2020-01-01T00:00:00+07:00")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivateServer, str, PrivateServer, str]]:
    kafka, bootstrap = private_kafka(19292)
    try:
        postgres, url = private_postgres(15433)
        try:
            yield kafka, bootstrap, postgres, url
        finally:
            postgres.remove()
    finally:
        kafka.remove()


async def progress(url: str, topic: str) -> int:
    """Offsets applied so far over all partitions (0 while the database is away)."""
    try:
        conn = await asyncpg.connect(url, server_settings={"search_path": "tthc"}, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return 0
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_positions WHERE topic=$1", topic
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()
    return int(value)


async def test_sigkill_and_server_restarts_change_nothing(
    servers: tuple[PrivateServer, str, PrivateServer, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kafka, bootstrap, postgres, url = servers
    events = messy_stream(SEED, dossiers=22_000, documents=6_000, procedures=400)
    assert len(events) >= 100_000
    stack = ServiceSet(log_dir=tmp_path, schema="tthc")
    request.addfinalizer(stack.stop_all)  # no aggregator outlives a failed test
    await ensure_topics(bootstrap, {stack.topic: 6, stack.dead_letter_topic: 1})
    await produce(bootstrap, stack.topic, events)
    total_offsets = sum((await end_offsets(bootstrap, stack.topic)).values())
    assert total_offsets == len(events)

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": url,
        "SESSION_TIMEOUT_MS": "3000",
        "HEARTBEAT_INTERVAL_MS": "500",
        "MAX_BATCH_RECORDS": "2000",
        "EXACT_LEVEL_CHANGES_SINCE": EXACT_SINCE.isoformat(),  # for the figures at midday below
    }
    rng = random.Random(SEED)
    thresholds = sorted(rng.sample(range(1, total_offsets), KILLS))
    started = time.monotonic()
    kills = 0
    for n, threshold in enumerate(thresholds):
        stack.start("aggregator", "aggregator", **env)
        if n == KILLS // 3:
            postgres.restart()  # mid-stream: the running aggregator must ride it out
        if n == 2 * KILLS // 3:
            kafka.restart()

        async def reached(goal: int = threshold) -> bool:
            return await progress(url, stack.topic) >= goal

        await eventually(reached, timeout=180, interval=0.01, what=f"progress {threshold}/{total_offsets}")
        if await progress(url, stack.topic) >= total_offsets:
            stack.kill("aggregator")
            break
        stack.kill("aggregator")
        kills += 1

    stack.start("aggregator", "aggregator", **env)

    async def caught_up() -> bool:
        return await progress(url, stack.topic) >= total_offsets

    await eventually(caught_up, timeout=300, what="the final aggregator to catch up")
    stack.stop_all()
    elapsed = time.monotonic() - started
    assert kills >= KILLS - 2, f"only {kills} kills happened mid-stream"

    accepted = first_accepted(events)
    pool = await asyncpg.create_pool(url, server_settings={"search_path": "tthc"}, min_size=1, max_size=2)
    try:
        assert await daily_counts_table(pool) == expected_daily_counts(accepted)
        differences = await roll_up_differences(pool)  # batches killed mid-way left no month behind
        assert differences.pop("months") > 0 and set(differences.values()) == {0}, differences
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM event_identities") == len(accepted)
        queries = IndicatorQueries(pool)
        for start, end in [(date(2023, 1, 1), date(2023, 12, 31)), (date(2023, 3, 1), date(2023, 3, 31))]:
            as_of = end_of_day(end)
            counts = await queries.counts_by_unit(UNITS, start, end, as_of)
            ours = figure_groups(total(counts, UNITS))
            theirs = reference_model.figures(accepted, start, end, as_of, UNITS)
            for group in ("dossiers", "documents", "procedures", "rates"):
                assert ours[group] == theirs[group], group
        settings = AggregatorSettings(
            kafka_bootstrap_servers=bootstrap,
            database_url=url,
            events_topic=stack.topic,
            dead_letter_topic=stack.dead_letter_topic,
            exact_level_changes_since=EXACT_SINCE,
        )
        report = await replay_and_compare(settings, live_schema="tthc", replay_schema="tthc_replay", wait_seconds=10)
        assert not report.differences, report.render()
        midday = datetime.fromisoformat("2023-06-15T12:34:56.789+07:00")
        counts = await queries.counts_by_unit(UNITS, date(2023, 1, 1), date(2023, 6, 15), midday)
        ours = figure_groups(total(counts, UNITS))
        theirs = reference_model.figures(accepted, date(2023, 1, 1), date(2023, 6, 15), midday, UNITS)
        assert ours["dossiers"] == theirs["dossiers"]
        assert ours["procedures"] == theirs["procedures"]
    finally:
        await pool.close()
    print(f"crash test: {len(events)} events, {kills} kills, elapsed {elapsed:.1f}s")  # noqa: T201
