"""Cached year-to-date snapshots per (unit, year, tree), exact and cheap to revalidate.

A snapshot's figures change only when (a) the aggregator commits a batch (the change marker
moves) or (b) time alone crosses an instant at which a level figure changes (a dossier turning
overdue, a procedure published for a future instant) or the local day, and so the window's `to`,
moves. A cached snapshot is therefore exact while the marker is unchanged and `now` is before
`valid_until`.

A request costs one tiny query (the change marker, shared by concurrent requests) while nothing
changed; the figures are recomputed once per change, by one request, whatever the number of
clients waiting for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.reporting.bodies import indicators_body
from services.reporting.etags import etag_of, opaque
from services.reporting.indicators import Window, next_local_midnight, total, year_window
from services.reporting.queries import ChangeMarker, IndicatorQueries
from services.reporting.sse import sse_message
from shared.units import UnitRegistry

# (unit code, year, a day naming the unit tree: the first day of its period)
SnapshotKey = tuple[str, int, date]

Clock = Callable[[], datetime]


def valid_until(window: Window, now: datetime, next_level_change: datetime | None) -> datetime | None:
    """Until when the figures computed at `now` for `window` cannot change by time alone (None: ever).

    A window whose `as_of` is fixed in the past (a past year) never changes by time. Otherwise
    `as_of` is `now`: the figures hold until the next level change after it, or local midnight,
    when `to` (today) moves, whichever comes first.
    """
    if window.as_of < now:
        return None
    midnight = next_local_midnight(now)
    return midnight if next_level_change is None else min(midnight, next_level_change)


@dataclass(frozen=True)
class CachedSnapshot:
    """One version of a unit's snapshot, with its encodings, and how long it stays exact."""

    key: SnapshotKey  # (unit, year, a day of the tree's period)
    etag: str
    body: dict[str, Any]
    json: bytes
    sse: bytes
    marker: object
    valid_until: datetime | None
    read_started: float  # monotonic clock when the database read began

    def holds_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


def encode_snapshot(
    key: SnapshotKey,
    body: dict[str, Any],
    marker: object,
    valid: datetime | None,
    read_started: float,
    previous: CachedSnapshot | None = None,
) -> CachedSnapshot:
    """A cache entry for `body`; an unchanged version keeps the previous body, so one ETag = one body."""
    etag = etag_of(body)
    if previous is not None and previous.etag == etag:
        return CachedSnapshot(key, etag, previous.body, previous.json, previous.sse, marker, valid, read_started)
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return CachedSnapshot(key, etag, body, raw, sse_message("snapshot", raw, opaque(etag)), marker, valid, read_started)


@dataclass
class _Read:
    started: float
    task: asyncio.Task[ChangeMarker]


class CoalescedMarker:
    """Reads the change marker, one query for every caller that arrived before it started.

    A caller only joins a query that started after it arrived, so what it sees includes every
    commit that happened before its request: reads stay linearizable.
    """

    def __init__(self, fetch: Callable[[], Awaitable[ChangeMarker]]) -> None:
        self._fetch = fetch
        self._current: _Read | None = None

    async def read(self) -> ChangeMarker:
        arrival = time.monotonic()
        while True:
            current = self._current
            if current is not None and current.started >= arrival:
                return await asyncio.shield(current.task)
            if current is not None and not current.task.done():
                await asyncio.wait([current.task])
                continue
            read = _Read(time.monotonic(), asyncio.ensure_future(self._fetch()))
            self._current = read
            return await asyncio.shield(read.task)


class SnapshotCache:
    """The snapshots of the registry's units, by tree; callers check the unit and year first (service.py)."""

    # Entries are a few kB; a province of a few hundred units over a few years fits easily.
    MAX_ENTRIES = 4096

    def __init__(self, registry: UnitRegistry, queries: IndicatorQueries, clock: Clock) -> None:
        self.registry = registry
        self._queries = queries
        self._clock = clock
        self._entries: OrderedDict[SnapshotKey, CachedSnapshot] = OrderedDict()
        self._locks: dict[SnapshotKey, asyncio.Lock] = {}
        self._marker = CoalescedMarker(queries.change_marker)

    async def marker(self) -> ChangeMarker:
        return await self._marker.read()

    def peek(self, unit: str, year: int, tree: date = date.min) -> CachedSnapshot | None:
        return self._entries.get((unit, year, tree))

    async def get(
        self, unit: str, year: int, tree: date = date.min, marker: ChangeMarker | None = None
    ) -> CachedSnapshot:
        """The current snapshot of the unit in the tree of day `tree` (any day of the tree's period
        names it; callers pass its first day so that one period is one entry). `marker`, if given,
        must have been read after the caller's cut-off."""
        key = (unit, year, tree)
        arrival = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.holds_at(self._clock()):
            current = marker if marker is not None else await self._marker.read()
            if current == entry.marker:
                self._entries.move_to_end(key)
                return entry
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.read_started >= arrival and entry.holds_at(self._clock()):
                return entry  # computed by another request that started after this one arrived
            entry = await self._compute(key, entry)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.MAX_ENTRIES:
                old, _ = self._entries.popitem(last=False)
                self._locks.pop(old, None)
            return entry

    async def _compute(self, key: SnapshotKey, previous: CachedSnapshot | None) -> CachedSnapshot:
        unit, year, tree = key
        started = time.monotonic()
        now = self._clock()
        window = year_window(year, now)
        units = list(self.registry.tree(tree).stored_keys(unit))
        read = await self._queries.consistent_counts(units, window.start, window.end, window.as_of)
        body = indicators_body(unit, "subtree", window, total(read.counts, units), read.marker.last_applied_at)
        valid = valid_until(window, now, read.next_level_change)
        return encode_snapshot(key, body, read.marker, valid, started, previous)
