"""The stream hub on a fake snapshot source (no I/O): first message, Last-Event-ID, one shared
poll per tick, at most one publication per interval, heartbeats, the cap, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from services.reporting.bodies import indicators_body
from services.reporting.etags import opaque
from services.reporting.indicators import year_window
from services.reporting.queries import ChangeMarker
from services.reporting.snapshots import CachedSnapshot, encode_snapshot
from services.reporting.sse import SSE_HEARTBEAT, sse_retry
from services.reporting.stream import StreamHub, StreamSettings, TooManyStreams
from shared.counters import ALL_COUNTERS
from shared.timezone import LOCAL_TZ

NOW = datetime(2025, 6, 10, 10, 0, tzinfo=LOCAL_TZ)
KEY = ("my-hao", 2023)
FAST = StreamSettings(max_streams=3, poll_seconds=0.01, min_interval_seconds=0.0, heartbeat_seconds=30)


def version(received: int, started: float = 0.0) -> CachedSnapshot:
    counts = dict.fromkeys(ALL_COUNTERS, 0) | {"received": received}
    body = indicators_body("my-hao", "subtree", year_window(2023, NOW), counts, None)
    return encode_snapshot(KEY, body, marker=received, valid=None, read_started=started)


class FakeSource:
    def __init__(self) -> None:
        self.current = version(0)
        self.marker_reads = 0
        self.gets = 0

    async def marker(self) -> ChangeMarker:
        self.marker_reads += 1
        return ChangeMarker(1, 0, None)

    async def get(self, unit: str, year: int, marker: ChangeMarker | None = None) -> CachedSnapshot:
        self.gets += 1
        return self.current


async def next_message(stream: AsyncGenerator[bytes, None], timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(anext(stream), timeout)


async def started(settings: StreamSettings = FAST) -> tuple[StreamHub, FakeSource]:
    source = FakeSource()
    hub = StreamHub(source, settings)
    hub.start()
    return hub, source


async def test_first_message_then_each_change() -> None:
    hub, source = await started()
    stream = hub.subscribe(source.current, None)
    assert await next_message(stream) == sse_retry(2000)
    assert await next_message(stream) == source.current.sse
    source.current = version(1, started=1.0)
    assert await next_message(stream) == source.current.sse
    await stream.aclose()
    await hub.stop()


async def test_last_event_id_of_the_current_version_waits_for_the_next() -> None:
    hub, source = await started()
    stream = hub.subscribe(source.current, opaque(source.current.etag))
    assert await next_message(stream) == sse_retry(2000)
    source.current = version(2, started=1.0)
    assert await next_message(stream) == source.current.sse, "the known version is not sent again"
    stale = hub.subscribe(source.current, "an-old-version")
    await next_message(stale)
    assert await next_message(stale) == source.current.sse
    await stream.aclose()
    await stale.aclose()
    await hub.stop()


async def test_one_poll_per_tick_whatever_the_number_of_subscribers() -> None:
    hub, source = await started(StreamSettings(max_streams=100, poll_seconds=0.01, min_interval_seconds=0.0))
    streams = [hub.subscribe(source.current, None) for _ in range(50)]
    for stream in streams:
        await next_message(stream)
        await next_message(stream)
    source.current = version(3, started=1.0)
    for stream in streams:
        assert await next_message(stream) == source.current.sse
    assert source.gets <= source.marker_reads, "one snapshot read per channel and tick, not per subscriber"
    for stream in streams:
        await stream.aclose()
    await hub.stop()


async def test_at_most_one_publication_per_interval() -> None:
    hub, source = await started(StreamSettings(poll_seconds=0.01, min_interval_seconds=0.3))
    stream = hub.subscribe(source.current, None)
    await next_message(stream)
    await next_message(stream)
    loop = asyncio.get_running_loop()
    source.current = version(4, started=1.0)
    first = await next_message(stream)
    at_first = loop.time()
    source.current = version(5, started=2.0)
    second = await next_message(stream)
    assert first == version(4).sse and second == version(5).sse
    assert loop.time() - at_first >= 0.29
    await stream.aclose()
    await hub.stop()


async def test_heartbeat_when_nothing_changes() -> None:
    hub, source = await started(StreamSettings(poll_seconds=0.01, heartbeat_seconds=0.05))
    stream = hub.subscribe(source.current, None)
    await next_message(stream)
    await next_message(stream)
    assert await next_message(stream) == SSE_HEARTBEAT
    await stream.aclose()
    await hub.stop()


def open_streams() -> float:
    value = REGISTRY.get_sample_value("tthc_reporting_open_streams")
    assert value is not None
    return value


async def test_the_cap_and_its_release_and_the_open_streams_gauge() -> None:
    hub, _ = await started()
    before = open_streams()
    for _ in range(3):
        hub.acquire()
    with pytest.raises(TooManyStreams):
        hub.acquire()
    assert open_streams() == before + 3, "a refused stream is not counted"
    hub.release()
    hub.acquire()
    assert hub.streams == 3
    for _ in range(3):
        hub.release()
    assert open_streams() == before
    await hub.stop()


async def test_shutdown_ends_every_stream() -> None:
    hub, source = await started()
    stream = hub.subscribe(source.current, None)
    await next_message(stream)
    await next_message(stream)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await next_message(stream)
    await hub.stop()
    with pytest.raises(TooManyStreams):
        hub.acquire()
