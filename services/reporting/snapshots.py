"""Cached year-to-date snapshots per (unit, year), exact and cheap to revalidate.

A request costs one tiny query (the change marker, shared by concurrent requests) while nothing
changed; the figures are recomputed once per change, by one request, whatever the number of
clients waiting for them.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.reporting.indicators import Window, figure_groups, total, year_window
from services.reporting.queries import ChangeMarker, IndicatorQueries
from services.reporting.versioning import CachedSnapshot, encode_snapshot, valid_until
from shared.units import UnitTree

Scope = Literal["subtree", "self"]
Clock = Callable[[], datetime]


class UnknownUnit(LookupError):
    pass


class InvalidPeriod(ValueError):
    pass


def indicators_body(
    unit: str, scope: Scope, window: Window, counts: dict[str, int], last_applied_at: datetime | None
) -> dict[str, Any]:
    """The body of GET /v1/indicators (contract §4)."""
    return {
        "unit": unit,
        "scope": scope,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "as_of": window.as_of.isoformat(),
        **figure_groups(counts),
        "freshness": {"last_applied_at": last_applied_at.isoformat() if last_applied_at else None},
    }


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
    # Entries are a few kB; a province of a few hundred units over a few years fits easily.
    MAX_ENTRIES = 4096

    def __init__(self, tree: UnitTree, queries: IndicatorQueries, clock: Clock) -> None:
        self._tree = tree
        self._queries = queries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], CachedSnapshot] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._marker = CoalescedMarker(queries.change_marker)

    def check(self, unit: str, year: int) -> None:
        """Raise UnknownUnit or InvalidPeriod before any work (and before a stream starts)."""
        if unit not in self._tree:
            raise UnknownUnit(unit)
        try:
            year_window(year, self._clock())
        except ValueError as exc:
            raise InvalidPeriod(str(exc)) from exc

    async def marker(self) -> ChangeMarker:
        return await self._marker.read()

    def peek(self, unit: str, year: int) -> CachedSnapshot | None:
        return self._entries.get((unit, year))

    async def get(self, unit: str, year: int, marker: ChangeMarker | None = None) -> CachedSnapshot:
        """The current snapshot; `marker`, if given, must have been read after the caller's cut-off."""
        self.check(unit, year)
        key = (unit, year)
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

    async def _compute(self, key: tuple[str, int], previous: CachedSnapshot | None) -> CachedSnapshot:
        unit, year = key
        started = time.monotonic()
        now = self._clock()
        window = year_window(year, now)
        units = self._tree.subtree(unit)
        read = await self._queries.consistent_counts(units, window.start, window.end, window.as_of)
        body = indicators_body(unit, "subtree", window, total(read.counts, units), read.marker.last_applied_at)
        valid = valid_until(window, now, read.next_level_change)
        return encode_snapshot(key, body, read.marker, valid, started, previous)
