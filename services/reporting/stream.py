"""Live snapshots over Server-Sent Events: one shared poller, one channel per (unit, year, tree).

The hub polls the change marker once per tick for every channel, recomputes a channel's
snapshot only when it may have changed (through the snapshot cache, so HTTP readers share the
work), and publishes a new version to all of the channel's subscribers at most once per
`min_interval`. Each subscriber only ever sees the latest version: a slow client skips
versions instead of queueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from services.reporting.errors import DatabaseUnavailable
from services.reporting.etags import opaque
from services.reporting.queries import ChangeMarker
from services.reporting.snapshots import CachedSnapshot, SnapshotKey
from services.reporting.sse import SSE_HEARTBEAT, sse_retry
from services.reporting.telemetry import OPEN_STREAMS

log = logging.getLogger(__name__)

# What EventSource waits before reconnecting after a dropped connection.
RECONNECT_MILLISECONDS = 2000


class SnapshotSource(Protocol):
    """What the hub needs of the snapshot cache."""

    async def marker(self) -> ChangeMarker: ...

    async def get(
        self, unit: str, year: int, tree: date = date.min, marker: ChangeMarker | None = None
    ) -> CachedSnapshot: ...


class TooManyStreams(Exception):
    """The process already serves its maximum number of streams."""


@dataclass
class _Channel:
    key: SnapshotKey
    latest: CachedSnapshot
    subscribers: int = 0
    published_at: float = 0.0  # monotonic
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, snapshot: CachedSnapshot) -> None:
        self.latest = snapshot
        self.published_at = time.monotonic()
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


@dataclass(frozen=True)
class StreamSettings:
    max_streams: int = 2000
    # How often the shared poller looks at the change marker: well under the 1 s freshness target.
    poll_seconds: float = 0.2
    # Contract §4: a channel publishes at most once a second.
    min_interval_seconds: float = 1.0
    # Comment lines keep proxies and load balancers from closing an idle stream.
    heartbeat_seconds: float = 15.0


class StreamHub:
    def __init__(self, cache: SnapshotSource, settings: StreamSettings) -> None:
        self._cache = cache
        self._settings = settings
        self._channels: dict[SnapshotKey, _Channel] = {}
        self._streams = 0
        self._closed = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def streams(self) -> int:
        return self._streams

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="snapshot-stream-poller")

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            await self._task

    def close(self) -> None:
        """End every stream (at shutdown); safe to call more than once."""
        self._closed.set()
        self._wake.set()
        for channel in self._channels.values():
            channel.changed.set()

    def close_threadsafe(self) -> None:
        """For signal handlers: schedule close() on the hub's loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close)

    def acquire(self) -> None:
        """Reserve a stream slot, or raise TooManyStreams; release() gives it back."""
        if self._closed.is_set() or self._streams >= self._settings.max_streams:
            raise TooManyStreams
        self._streams += 1
        OPEN_STREAMS.inc()

    def release(self) -> None:
        self._streams -= 1
        OPEN_STREAMS.dec()

    async def subscribe(self, first: CachedSnapshot, last_event_id: str | None) -> AsyncGenerator[bytes, None]:
        """The SSE byte stream of one client, starting from `first` (the snapshot just read).

        The current version is sent at once, unless the client's Last-Event-ID says it has it.
        A new channel has published nothing yet, so its first change goes out without delay.
        """
        channel = self._channels.get(first.key)
        if channel is None:
            channel = self._channels[first.key] = _Channel(first.key, first)
            self._wake.set()
        elif first.read_started > channel.latest.read_started and first.etag != channel.latest.etag:
            channel.publish(first)
        channel.subscribers += 1
        try:
            yield sse_retry(RECONNECT_MILLISECONDS)
            sent = opaque(last_event_id) if last_event_id else None
            while not self._closed.is_set():
                changed = channel.changed  # taken before yielding, so no publication is missed
                latest = channel.latest
                if opaque(latest.etag) != sent:
                    yield latest.sse
                    sent = opaque(latest.etag)
                if not await self._wait(changed):
                    yield SSE_HEARTBEAT
        finally:
            channel.subscribers -= 1
            if channel.subscribers == 0 and self._channels.get(channel.key) is channel:
                del self._channels[channel.key]

    async def _wait(self, changed: asyncio.Event) -> bool:
        """Wait for a new version (or shutdown); False after a heartbeat interval without one."""
        try:
            async with asyncio.timeout(self._settings.heartbeat_seconds):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while not self._closed.is_set():
            if self._channels:
                try:
                    await self._tick()
                except DatabaseUnavailable as exc:
                    log.warning("stream poller: database unavailable, retrying: %s", exc)
                except Exception:
                    log.exception("stream poller: unexpected error, retrying")
                timeout = self._settings.poll_seconds
            else:
                timeout = None  # idle until a first subscriber wakes the poller
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _tick(self) -> None:
        now = time.monotonic()
        due = [c for c in self._channels.values() if now - c.published_at >= self._settings.min_interval_seconds]
        if not due:
            return
        marker = await self._cache.marker()
        snapshots = await asyncio.gather(*(self._cache.get(*c.key, marker=marker) for c in due))
        for channel, snapshot in zip(due, snapshots, strict=True):
            if snapshot.etag != channel.latest.etag:
                channel.publish(snapshot)
