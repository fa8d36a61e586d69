"""Shared test fixtures: real Kafka and PostgreSQL (started by `make test`), unique names per test."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://tthc:tthc@127.0.0.1:5433/tthc")

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A name no other test uses (topics, consumer groups, schemas)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` until it returns a truthy value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)  # polling interval, not synchronization
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


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
