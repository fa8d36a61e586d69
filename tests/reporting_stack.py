"""Helpers of the reporting tests: the services as processes, events, an SSE reader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import unique
from tests.subprocesses import ServiceSet

READ = {"Authorization": "Bearer dev-read-token"}
INTAKE = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
SOURCE = "urn:vn:test:reporting"


@contextmanager
def running_services(log_dir: Path, **reporting_env: str) -> Iterator[ServiceSet]:
    """Aggregator, intake and reporting as processes on their own ports, schema and topics;
    stopped at the end (the schema and topics go with the test session's, see tests/conftest.py)."""
    stack = ServiceSet(log_dir=log_dir)
    try:
        stack.start("aggregator", "aggregator")
        stack.start("intake", "intake")
        stack.start("reporting", "reporting", **reporting_env)
        yield stack
    finally:
        stack.stop_all()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def received(
    unit: str,
    at: datetime,
    *,
    due_at: datetime | None = None,
    channel: str = "online",
    dossier_id: str | None = None,
) -> dict[str, Any]:
    dossier = dossier_id or unique("hs")
    return {
        "specversion": "1.0",
        "id": unique("evt"),
        "source": SOURCE,
        "type": "vn.gov.tthc.dossier.received",
        "time": iso(at),
        "subject": dossier,
        "data": {
            "dossier_id": dossier,
            "unit": unit,
            "procedure_code": "1.001612",
            "channel": channel,
            "received_at": iso(at),
            "due_at": iso(due_at) if due_at else None,
            "fee_required": False,
        },
    }


def in_2023(day: int = 1, month: int = 3) -> datetime:
    return datetime(2023, month, day, 9, 30, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


async def post(client: httpx.AsyncClient, intake: str, events: Sequence[dict[str, Any]]) -> float:
    """Post events; returns time.monotonic() at the 202."""
    response = await client.post(f"{intake}/v1/events", content=json.dumps(list(events)), headers=INTAKE)
    assert response.status_code == 202, response.text
    return time.monotonic()


@dataclass
class Message:
    event: str | None
    id: str | None
    data: str
    received_at: float  # time.monotonic()


@dataclass
class SSEReader:
    """Reads one text/event-stream response into messages and counts comment lines."""

    response: httpx.Response
    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    comments: int = 0
    retry: int | None = None

    async def run(self) -> None:
        event: str | None = None
        ident: str | None = None
        data: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if data:
                    await self.messages.put(Message(event, ident, "\n".join(data), time.monotonic()))
                event, data = None, []
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)

    async def next(self, timeout: float) -> Message:
        return await asyncio.wait_for(self.messages.get(), timeout)


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[SSEReader]:
    """An SSE reader running in the background until the caller's block ends."""
    async with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader(response)
        task = asyncio.create_task(reader.run())
        try:
            yield reader
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
