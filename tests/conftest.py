"""Shared test fixtures: real Kafka and PostgreSQL (started by `make test`), unique names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.infra.polling import PollTimeout, poll_until

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://tthc:tthc@127.0.0.1:5433/tthc")

T = TypeVar("T")


# Every name handed out this session, so the topics and schemas behind them can be removed at the end.
_NAMES: set[str] = set()


def unique(prefix: str) -> str:
    """A name no other test uses (topics, consumer groups, schemas)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _NAMES.add(name)
    return name


@pytest.fixture(scope="session", autouse=True)
async def remove_test_topics_and_schemas() -> AsyncIterator[None]:
    """After the session: delete the topics and drop the schemas this session's tests created."""
    yield
    if not _NAMES:
        return
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        try:
            topics = [t for t in await admin.list_topics() if t in _NAMES]
            if topics:
                await admin.delete_topics(topics)
        finally:
            await admin.close()
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            schemas = [r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")]
            for schema in schemas:
                if schema in _NAMES:
                    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()
    except (OSError, KafkaError, asyncpg.PostgresError):
        pass  # the servers are gone (a unit-only run): nothing to clean


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` until it returns a truthy value, or fail the test after `timeout` seconds."""
    try:
        return await poll_until(check, within=timeout, interval=interval, what=what)
    except PollTimeout as exc:
        raise AssertionError(str(exc)) from None


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
async def db_schema(database_url: str) -> AsyncIterator[str]:
    """A fresh schema name, dropped after the test."""
    schema = unique("t")
    yield schema
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
