"""Scale-out: aggregator processes in one consumer group share the partitions. One is killed and one
added mid-stream, one is paused (SIGSTOP) past its session timeout and resumed: the figures are
exact and the paused instance's late batch is refused."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.infra.kafka_admin import ensure_topics
from tests.conftest import DATABASE_URL, KAFKA, eventually
from tests.in_process import daily_counts_table, produce, roll_up_differences
from tests.streams import expected_daily_counts, first_accepted, messy_stream
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.integration

# A short session so a paused or dead instance's partitions move within seconds, and a short
# idle-in-transaction timeout so a transaction paused mid-batch releases its locks soon after.
ENV = {
    "SESSION_TIMEOUT_MS": "6000",
    "HEARTBEAT_INTERVAL_MS": "1000",
    "MAX_BATCH_RECORDS": "1000",
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": "8000",
}


def refused_or_failed(stack: ServiceSet, name: str) -> int:
    text = httpx.get(f"{stack.url(name)}/metrics", timeout=5).text
    return sum(
        int(float(m))
        for m in re.findall(r'tthc_aggregator_batches_total\{outcome="(?:refused|failed)"\} ([0-9.e+]+)', text)
    )


async def applied(pool: asyncpg.Pool, topic: str) -> int:
    async with pool.acquire() as conn:
        value = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_positions WHERE topic = $1", topic
        )
    return int(value)


async def test_instances_join_leave_and_a_paused_one_is_fenced(tmp_path: Path) -> None:
    events = messy_stream(7, dossiers=16_000, documents=3_000, procedures=200)
    size = len(events) // 5 + 1
    chunks = [events[i * size : (i + 1) * size] for i in range(5)]  # in order: resends after originals
    stack = ServiceSet(log_dir=tmp_path)
    await ensure_topics(KAFKA, {stack.topic: 12, stack.dead_letter_topic: 1})
    pool = await asyncpg.create_pool(
        DATABASE_URL, server_settings={"search_path": stack.schema}, min_size=1, max_size=2
    )
    sent: list[dict[str, Any]] = []

    async def send(chunk: list[dict[str, Any]]) -> None:
        await produce(KAFKA, stack.topic, chunk)
        sent.extend(chunk)

    async def caught_up() -> bool:
        return await applied(pool, stack.topic) >= len(sent)

    try:
        for name in ("a1", "a2", "a3"):
            stack.start(name, "aggregator", **ENV)
        await send(chunks[0])
        await eventually(caught_up, timeout=120, what="three instances to apply the first chunk")

        await send(chunks[1])
        stack.kill("a1")  # mid-stream crash: its partitions move to the others
        await eventually(caught_up, timeout=120, what="the survivors to take over")

        stack.start("a4", "aggregator", **ENV)  # a new instance joins mid-stream
        await send(chunks[2])
        await eventually(caught_up, timeout=120, what="four instances to apply the third chunk")

        fenced = False
        for attempt in range(3):  # the pause must catch a2 with a batch in hand
            before = refused_or_failed(stack, "a2")
            start = await applied(pool, stack.topic)
            third = len(chunks[3]) // 3 + 1
            await send(chunks[3][attempt * third : (attempt + 1) * third])

            async def busy(threshold: int = start + 500) -> bool:
                return await applied(pool, stack.topic) >= threshold

            await eventually(busy, timeout=60, what="the group to be busy")
            stack.signal("a2", signal.SIGSTOP)
            await eventually(caught_up, timeout=120, what="the others to take over the paused instance's work")
            stack.signal("a2", signal.SIGCONT)

            async def a2_tried(previous: int = before) -> bool:
                return refused_or_failed(stack, "a2") > previous

            try:
                await eventually(a2_tried, timeout=20, what="the paused instance's late write to be refused")
                fenced = True
                break
            except AssertionError:
                continue
        await send(chunks[3][(attempt + 1) * third :] + chunks[4])
        await eventually(caught_up, timeout=120, what="all events applied")
        assert fenced, "the paused instance never had a late batch refused"
        assert "batch refused" in stack.log("a2") or "batch failed" in stack.log("a2")

        assert len(sent) == len(events)
        accepted = first_accepted(sent)
        assert await daily_counts_table(pool) == expected_daily_counts(accepted)
        # Four instances wrote the same monthly rows concurrently: each still sums its days.
        differences = await roll_up_differences(pool)
        assert differences.pop("months") > 0 and set(differences.values()) == {0}, differences
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM event_identities") == len(accepted)
    finally:
        stack.stop_all()
        await pool.close()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{stack.schema}" CASCADE')
        await conn.close()
