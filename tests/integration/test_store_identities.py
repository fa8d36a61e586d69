"""Concurrent writers in the store: identities and first positions written meanwhile by another batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest

from services.aggregator.migrate import apply_migrations
from services.aggregator.pipeline import Batch, DeadLetter, IncomingEvent, content_digest, identity_key
from services.aggregator.store import AggregatorStore, PositionConflict, StoreError
from shared.events import decode_event
from tests.conftest import DATABASE_URL, eventually
from tests.factories import received

pytestmark = pytest.mark.integration


def _batch(raw: bytes, partition: int) -> Batch:
    batch = Batch(topic="events", ranges={partition: (None, 1)})
    batch.events = [IncomingEvent.of(decode_event(raw), raw, partition, 0)]
    return batch


@dataclass
class Writers:
    """The store, and another writer holding a transaction open on the same schema."""

    pool: asyncpg.Pool
    store: AggregatorStore
    other: asyncpg.Connection
    observer: asyncpg.Connection

    async def store_waits_for_a_lock(self) -> bool:
        return bool(
            await self.observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        )


@pytest.fixture
async def writers(db_schema: str) -> AsyncIterator[Writers]:
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2, server_settings={"search_path": db_schema})
    other = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": db_schema})
    observer = await asyncpg.connect(DATABASE_URL)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, db_schema)
        yield Writers(pool, AggregatorStore(pool, db_schema), other, observer)
    finally:
        await observer.close()
        await other.close()
        await pool.close()


@pytest.mark.parametrize("same_content", [True, False])
async def test_an_identity_inserted_by_a_concurrent_batch_fails_the_batch_then_is_known(
    writers: Writers, same_content: bool
) -> None:
    event = received("cc-1", id_="cc-evt-1")
    other = event if same_content else {**event, "subject": "cc-2", "data": {**event["data"], "dossier_id": "cc-2"}}
    raw, other_raw = json.dumps(event).encode(), json.dumps(other).encode()
    published: list[DeadLetter] = []

    async def publish(letters: Sequence[DeadLetter]) -> None:
        published.extend(letters)

    # Another batch (on another partition) has inserted the identity and not committed yet.
    holding = writers.other.transaction()
    await holding.start()
    await writers.other.execute(
        "INSERT INTO event_identities (key, digest) "
        "VALUES (encode($1::bytea, 'hex')::uuid, ('x' || encode($2::bytea, 'hex'))::bit(64)::bigint)",
        identity_key(event["source"], event["id"]),
        content_digest(other_raw),
    )
    attempt = asyncio.create_task(writers.store.apply_batch(_batch(raw, 0), publish))
    await eventually(writers.store_waits_for_a_lock, what="the batch waiting for the identity's lock")
    await holding.commit()
    with pytest.raises(StoreError, match="stored concurrently"):
        await attempt
    async with writers.pool.acquire() as conn:  # rolled back as a whole
        assert await conn.fetchval("SELECT count(*) FROM consumer_positions") == 0
        assert await conn.fetchval("SELECT count(*) FROM aggregate_states") == 0

    retry = await writers.store.apply_batch(_batch(raw, 0), publish)
    assert retry.applied == 0
    if same_content:
        assert (retry.duplicates, published) == (1, [])
    else:
        assert retry.duplicates == 0 and len(published) == 1 and "identity conflict" in published[0].reason
    async with writers.pool.acquire() as conn:
        assert await conn.fetchval("SELECT next_offset FROM consumer_positions WHERE partition = 0") == 1
        assert await conn.fetchval("SELECT count(*) FROM event_identities") == 1


async def test_a_first_position_written_meanwhile_by_another_writer_refuses_the_batch(writers: Writers) -> None:
    # Two writers both start a partition that has no stored position yet (nothing to lock): the
    # one that commits second must be refused, not overwrite the first one's position.
    raw = json.dumps(received("fp-1", id_="fp-evt-1")).encode()

    async def publish(letters: Sequence[DeadLetter]) -> None:
        raise AssertionError(f"unexpected dead letters {letters}")

    holding = writers.other.transaction()
    await holding.start()
    await writers.other.execute(
        "INSERT INTO consumer_positions (topic, partition, next_offset, applied_at) VALUES ('events', 0, 7, now())"
    )
    attempt = asyncio.create_task(writers.store.apply_batch(_batch(raw, 0), publish))
    await eventually(writers.store_waits_for_a_lock, what="the batch waiting for the position's lock")
    await holding.commit()
    with pytest.raises(PositionConflict) as refused:
        await attempt
    assert refused.value.conflicts == {0: (None, 7)}
    async with writers.pool.acquire() as conn:  # nothing of the refused batch remains
        assert await conn.fetchval("SELECT next_offset FROM consumer_positions WHERE partition = 0") == 7
        assert await conn.fetchval("SELECT count(*) FROM event_identities") == 0
        assert await conn.fetchval("SELECT count(*) FROM aggregate_states") == 0
