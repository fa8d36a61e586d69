"""`deploy/services.sh start` refuses to start an aggregator beside another stack's members of its
consumer group, on the real broker: a second stack would take half of the first one's partitions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from services.infra.consumer_groups import client_id, describe_group
from services.infra.kafka_admin import ensure_topics
from tests.conftest import DATABASE_URL, KAFKA, eventually, unique
from tests.subprocesses import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
Joined = Callable[[str, str], AbstractAsyncContextManager[AIOKafkaConsumer]]


@pytest.fixture
async def joined() -> Joined:
    """A consumer with the given client id, joined to the given group and holding its partitions."""

    @asynccontextmanager
    async def join(group: str, client: str) -> AsyncIterator[AIOKafkaConsumer]:
        topic = unique("events")
        await ensure_topics(KAFKA, {topic: 2})
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, group_id=group, client_id=client)
        await consumer.start()
        try:

            async def assigned() -> bool:
                await consumer.getmany(timeout_ms=100)
                return bool(consumer.assignment())

            await eventually(assigned, what="the consumer to join its group")
            yield consumer
        finally:
            await consumer.stop()

    return join


async def check(group: str, *own_pids: int) -> subprocess.CompletedProcess[str]:
    own = [arg for pid in own_pids for arg in ("--own-pid", str(pid))]
    command = [sys.executable, "-m", "services.infra.consumer_groups", "--bootstrap", KAFKA, "--group", group, *own]
    return await asyncio.to_thread(subprocess.run, command, cwd=REPO, capture_output=True, text=True, timeout=60)


async def test_make_up_refuses_a_group_another_stack_is_in(joined: Joined, tmp_path: Path) -> None:
    group = unique("group")
    other_stack = "tthc-aggregator@other-stack:4242"
    async with joined(group, other_stack):
        members = await describe_group(KAFKA, group)
        assert [m.client_id for m in members] == [other_stack]

        ports = {name: str(free_port()) for name in ("INTAKE_PORT", "REPORTING_PORT", "AGGREGATOR_PORT")}
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("KAFKA_PORT", "PG_PORT", "KAFKA_NODES")},
            **ports,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "DATABASE_URL": DATABASE_URL,
            "CONSUMER_GROUP": group,
            "RUN_DIR": str(tmp_path),
            "PYTHON": sys.executable,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [str(REPO / "deploy/services.sh"), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"consumer group {group!r} on {KAFKA} already has 1 member(s)" in done.stderr
        assert other_stack in done.stderr
        assert "Another stack uses this group on this broker" in done.stderr
        assert "refusing to start the aggregator" in done.stderr
        assert not os.listdir(tmp_path)  # nothing was started: no pid file, no log
        # The other stack keeps its partitions.
        assert [m.client_id for m in await describe_group(KAFKA, group)] == [other_stack]


async def test_our_own_aggregator_in_the_group_is_no_reason_to_refuse(joined: Joined) -> None:
    group = unique("group")
    # The member's client id names this very process, as the aggregator's names its own.
    async with joined(group, client_id()):
        mine = await check(group, os.getpid())
        assert mine.returncode == 0, mine.stderr
        nobody_recorded = await check(group)
        assert nobody_recorded.returncode == 1
        assert client_id() in nobody_recorded.stderr


async def test_an_unused_group_is_free() -> None:
    done = await check(unique("group"))
    assert done.returncode == 0, done.stderr
