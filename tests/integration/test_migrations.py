"""Migrations of stored data: 0002 turns stored (source, id) identities into the keys the aggregator
computes; 0004 rolls up the daily and cohort rows stored before it into months; 0005 keeps the
states and identities stored before it readable in their smaller columns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources

import asyncpg
import pytest

from services.aggregator.migrate import apply_migrations
from services.aggregator.pipeline import Batch, DeadLetter, IncomingEvent, content_digest, identity_key
from services.aggregator.state_codec import load_state
from services.aggregator.store import AggregatorStore
from shared.events import decode_event
from tests.conftest import DATABASE_URL
from tests.factories import received
from tests.reference_model import to_json_bytes
from tests.unit.test_domain_cases import decode_all, fold, simple
from tests.unit.test_state_codec import EARLIER_FORM, V2_EVENTS

pytestmark = pytest.mark.integration


def _sql(name: str) -> str:
    return resources.files("services.aggregator").joinpath("migrations", name).read_text()


async def _schema_at_0001(conn: asyncpg.Connection, schema: str) -> None:
    """A schema as the first release left it: only migration 0001 applied."""
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.execute(f'SET search_path TO "{schema}"')
    await conn.execute(
        "CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute(_sql("0001_initial.sql"))
    await conn.execute("INSERT INTO schema_migrations (version) VALUES ('0001')")


async def test_identities_stored_before_0002_still_recognise_duplicates_and_conflicts(db_schema: str) -> None:
    # Sources and ids with non-ASCII text: the key is over UTF-8 bytes in both languages.
    events = [
        received("mg-1", source="urn:vn:bắc-ninh:một-cửa", id_="hồ-sơ/1"),
        received("mg-2", source="urn:vn:test:motcua", id_="a"),
        received("mg-3", source="urn:vn:test:motcu", id_="aa"),  # same bytes as the previous if concatenated
    ]
    raws = [json.dumps(event, ensure_ascii=False).encode() for event in events]
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await _schema_at_0001(conn, db_schema)
        await conn.executemany(
            "INSERT INTO event_identities (source, id, digest) VALUES ($1, $2, $3)",
            [(e["source"], e["id"], hashlib.sha256(raw).digest()) for e, raw in zip(events, raws, strict=True)],
        )
        applied = await apply_migrations(conn, db_schema)
        assert applied[0] == "0002" and applied == sorted(applied)
        rows = await conn.fetch("SELECT uuid_send(key) AS key, int8send(digest) AS digest FROM event_identities")
    finally:
        await conn.close()
    expected = {identity_key(e["source"], e["id"]): content_digest(raw) for e, raw in zip(events, raws, strict=True)}
    assert {bytes(r["key"]): bytes(r["digest"]) for r in rows} == expected
    assert len(expected) == 3

    # The aggregator, on the migrated table: a resend is a duplicate, a changed resend a conflict.
    changed = {**events[1], "data": {**events[1]["data"], "channel": "direct"}}
    incoming = [raws[0], json.dumps(changed).encode()]
    batch = Batch(topic="events", ranges={0: (None, 2)})
    batch.events = [IncomingEvent.of(decode_event(raw), raw, 0, offset) for offset, raw in enumerate(incoming)]
    published: list[DeadLetter] = []

    async def publish(letters: Sequence[DeadLetter]) -> None:
        published.extend(letters)

    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=1, server_settings={"search_path": db_schema})
    try:
        result = await AggregatorStore(pool, db_schema).apply_batch(batch, publish)
        assert (result.applied, result.duplicates) == (0, 1)
        assert [letter.offset for letter in published] == [1]
        assert "identity conflict" in published[0].reason
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM event_identities") == 3
            assert await conn.fetchval("SELECT count(*) FROM aggregate_states") == 0
    finally:
        await pool.close()


async def test_rows_stored_before_0004_are_rolled_up_into_their_months(db_schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await _schema_at_0001(conn, db_schema)
        for name, version in (("0002_compact_identities.sql", "0002"), ("0003_v2_counters.sql", "0003")):
            await conn.execute(_sql(name))
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        await conn.executemany(
            "INSERT INTO daily_counts (unit, day, received, in_progress) VALUES ($1, $2, $3, $4)",
            [
                ("a", date(2025, 6, 30), 2, 1),
                ("a", date(2025, 7, 1), 3, -1),
                ("a", date(2025, 7, 31), 4, 2),
                ("b", date(2025, 7, 15), 5, 0),
            ],
        )
        noon = datetime(2025, 7, 2, 12, tzinfo=UTC)
        await conn.executemany(
            "INSERT INTO cohort_changes (unit, day, at, handled_ended, handled_ended_on_time) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                ("a", date(2025, 7, 1), noon, 1, 1),
                ("a", date(2025, 7, 20), noon + timedelta(days=30), 1, 0),
                ("a", date(2025, 6, 3), noon, -1, 0),
            ],
        )
        assert await apply_migrations(conn, db_schema) == ["0004", "0005"]
        months = await conn.fetch("SELECT unit, month, received, in_progress, synced FROM monthly_counts ORDER BY 1, 2")
        cohorts = await conn.fetch(
            "SELECT unit, month, last_at, handled_ended, handled_ended_on_time FROM monthly_cohorts ORDER BY 1, 2"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in months] == [
        ("a", date(2025, 6, 1), 2, 1, 0),
        ("a", date(2025, 7, 1), 7, 1, 0),
        ("b", date(2025, 7, 1), 5, 0, 0),
    ]
    assert [tuple(r) for r in cohorts] == [
        ("a", date(2025, 6, 1), noon, -1, 0),
        ("a", date(2025, 7, 1), noon + timedelta(days=30), 2, 1),
    ]


async def test_states_stored_before_0005_are_read_and_then_stored_compact(db_schema: str) -> None:
    (earlier,) = [text for kind, key, text in json.loads(EARLIER_FORM.read_text())["v2 facts"] if kind == "dossier"]
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await _schema_at_0001(conn, db_schema)
        for name in ("0002_compact_identities.sql", "0003_v2_counters.sql", "0004_monthly_rollups.sql"):
            await conn.execute(_sql(name))
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", name[:4])
        await conn.execute(
            "INSERT INTO aggregate_states (kind, key, state) VALUES ('dossier', 'd1', $1::jsonb)", earlier
        )
        assert await apply_migrations(conn, db_schema) == ["0005"]
        stored = await conn.fetchval("SELECT state FROM aggregate_states WHERE key = 'd1'")
    finally:
        await conn.close()
    assert isinstance(stored, str)
    assert load_state(("dossier", "d1"), stored) == fold(decode_all(V2_EVENTS))[("dossier", "d1")]

    # A later rating of the dossier: its difference from the stored state's rating (16 March, local).
    rerated = to_json_bytes(simple("dossier.rated", id="z9", at="2023-03-20T09:00:00+07:00", rating="dissatisfied"))
    batch = Batch(topic="events", ranges={0: (None, 1)})
    batch.events = [IncomingEvent.of(decode_event(rerated), rerated, 0, 0)]

    async def publish(letters: Sequence[DeadLetter]) -> None:
        raise AssertionError(f"unexpected dead letters {letters}")

    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=1, server_settings={"search_path": db_schema})
    try:
        assert (await AggregatorStore(pool, db_schema).apply_batch(batch, publish)).applied == 1
        async with pool.acquire() as conn:
            ratings = await conn.fetch(
                "SELECT day, ratings, ratings_satisfied FROM daily_counts WHERE ratings <> 0 ORDER BY day"
            )
            compact = await conn.fetchval("SELECT state FROM aggregate_states WHERE key = 'd1'")
    finally:
        await pool.close()
    assert [tuple(r) for r in ratings] == [(date(2023, 3, 16), -1, -1), (date(2023, 3, 20), 1, 0)]
    assert '"v":[' in compact and len(compact) < len(earlier)
