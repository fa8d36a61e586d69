"""Use cases of the reporting service: indicators, breakdown, Decision 766 index, snapshots and
their stream, monthly trend, annual report, the dashboard page.

Each use case takes the unit tree of the request (`tree`) and raises only the service's own
errors (errors.py). Defaults of periods (this year, today) come from the injected clock, and a
period that cannot be computed is InvalidPeriod, in one place (`_period`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from services.reporting.bodies import freshness, indicators_body, period
from services.reporting.errors import DatabaseUnavailable, InvalidPeriod, UnknownUnit
from services.reporting.index766 import Formula, Index766, load_formula, rank_children, render_index, score
from services.reporting.index766_inputs import add_sums, index_inputs
from services.reporting.indicators import (
    Window,
    figure_groups,
    monthly_rows,
    report_window,
    resolve_window,
    total,
    year_window,
)
from services.reporting.queries import CountsByUnit, IndicatorQueries
from services.reporting.report import ChildFigures, Report, ReportInput, build_annual_report
from services.reporting.snapshots import CachedSnapshot, SnapshotCache
from services.reporting.stream import StreamHub
from shared.timezone import local_day
from shared.units import RowKind as ExtraRowKind
from shared.units import Scope, UnitEntry, UnitTree

RowKind = Literal["unit", "child"] | ExtraRowKind

__all__ = [
    "DashboardView",
    "DatabaseUnavailable",
    "InvalidPeriod",
    "ReportingService",
    "Scope",
    "Subscription",
    "UnknownUnit",
    "current_year",
    "now_utc",
]

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    return datetime.now(UTC)


def current_year(now: datetime | None = None) -> int:
    """The year of today in Asia/Ho_Chi_Minh (not in UTC: 1 January starts at 17:00 UTC)."""
    return local_day(now or now_utc()).year


@contextmanager
def _period() -> Iterator[None]:
    """The one translation of the window functions' ValueError into InvalidPeriod."""
    try:
        yield
    except ValueError as exc:
        raise InvalidPeriod(str(exc)) from exc


def _check_unit(tree: UnitTree, unit: str) -> None:
    if unit not in tree:
        raise UnknownUnit(unit)


def _members(tree: UnitTree, unit: str, scope: Scope) -> list[str]:
    """The stored units whose counters make up the unit's figures in this tree (contract §1.1)."""
    return list(tree.stored_keys(unit, scope))


@dataclass(frozen=True)
class Subscription:
    """An open stream: its SSE bytes, and the call that gives its slot back when it ends."""

    chunks: AsyncGenerator[bytes, None]
    release: Callable[[], None]


@dataclass(frozen=True)
class DashboardView:
    """What the dashboard page shows of a unit and year (the figures come from the API)."""

    unit: str
    unit_name: str
    year: int
    current_year: int
    window: Window
    tree_day: date | None  # the last day of the page's tree when it is not today's (None: today's)


class ReportingService:
    def __init__(
        self,
        queries: IndicatorQueries,
        snapshots: SnapshotCache,
        hub: StreamHub | None = None,
        clock: Clock = now_utc,
        formula: Formula | None = None,
    ) -> None:
        self._queries = queries
        self._snapshots = snapshots
        self._hub = hub
        self._clock = clock
        self.formula = formula or load_formula()

    def today(self) -> date:
        """Today in Asia/Ho_Chi_Minh by the service's clock (the default tree)."""
        return local_day(self._clock())

    def _year(self, year: int | None) -> int:
        return year if year is not None else current_year(self._clock())

    def _window(self, start: date | None, end: date | None) -> Window:
        with _period():
            return resolve_window(start, end, self._clock())

    def _report_window(self, year: int, end: date | None) -> Window:
        with _period():
            return report_window(year, end, self._clock())

    async def indicators(
        self, tree: UnitTree, unit: str, scope: Scope, start: date | None = None, end: date | None = None
    ) -> dict[str, Any]:
        """Every figure and rate of the unit's scope over the days [start, end] (default: the year to date)."""
        window = self._window(start, end)  # the period first: a bad one is 422 whatever the unit
        _check_unit(tree, unit)
        units = _members(tree, unit, scope)
        counts = await self._queries.counts_by_unit(units, window.start, window.end, window.as_of)
        return indicators_body(unit, scope, window, total(counts, units), await self._queries.last_applied_at())

    async def breakdown(
        self, tree: UnitTree, unit: str, start: date | None = None, end: date | None = None
    ) -> dict[str, Any]:
        """One row per direct child (its whole subtree), after a row for the unit itself (scope self)."""
        window = self._window(start, end)
        _check_unit(tree, unit)
        counts = await self._subtree_counts(tree, unit, window)
        rows = [
            {
                "unit": row.entry.code,
                "name": row.entry.name,
                "scope": row.scope,
                "split": row.kind == "split",
                "row": row.kind,
                "valid_from": _iso(row.entry.valid_from),
                "valid_to": _iso(row.entry.valid_to),
                **figure_groups(row.figures),
            }
            for row in _breakdown_rows(tree, unit, counts)
        ]
        return {**period(unit, window), "rows": rows, "freshness": await self._freshness()}

    async def index766(
        self, tree: UnitTree, unit: str, start: date | None = None, end: date | None = None
    ) -> dict[str, Any]:
        """The Decision 766 index of the unit's subtree for the window, and its children's ranking."""
        window = self._window(start, end)
        _check_unit(tree, unit)
        index = await self._index766(tree, unit, window)
        return {**period(unit, window), **index, "freshness": await self._freshness()}

    async def monthly(self, tree: UnitTree, unit: str, scope: Scope, year: int | None = None) -> dict[str, Any]:
        """Window figures of each month of `year` (null for months that have not started)."""
        _check_unit(tree, unit)
        year = self._year(year)
        window = self._report_window(year, None)
        by_month = await self._queries.monthly_counts(_members(tree, unit, scope), year)
        return {
            "unit": unit,
            "scope": scope,
            "year": year,
            "as_of": window.as_of.isoformat(),
            "months": monthly_rows(year, by_month, window.end),
            "freshness": await self._freshness(),
        }

    async def snapshot(self, tree: UnitTree, unit: str, year: int | None = None) -> CachedSnapshot:
        """The year-to-date indicators of the unit's subtree; its ETag changes exactly with a figure."""
        year = self._check_snapshot(tree, unit, year)
        return await self._snapshots.get(unit, year, tree_day(tree))

    async def stream(
        self, tree: UnitTree, unit: str, year: int | None = None, last_event_id: str | None = None
    ) -> Subscription:
        """Opens a live stream of the snapshot (TooManyStreams when the process serves its maximum)."""
        if self._hub is None:
            raise RuntimeError("this service was built without a stream hub")
        first = await self.snapshot(tree, unit, year)
        self._hub.acquire()
        return Subscription(self._hub.subscribe(first, last_event_id), self._hub.release)

    def dashboard(self, tree: UnitTree, unit: str, year: int | None = None) -> DashboardView:
        """The unit and year of the IOC page, checked as a snapshot is (the page reads the snapshot)."""
        year = self._check_snapshot(tree, unit, year)
        now = self._clock()
        named_day = _named_day(tree, local_day(now))
        return DashboardView(unit, tree.units[unit].name, year, current_year(now), year_window(year, now), named_day)

    async def annual_report(
        self, tree: UnitTree, unit: str, year: int | None = None, end: date | None = None, scope: Scope = "self"
    ) -> Report:
        """Sections 4.1, 4.4, 9 and 10 (Decision 766) of the annual report, from the same queries as the API."""
        _check_unit(tree, unit)
        year = self._year(year)
        window = self._report_window(year, end)
        counts = await self._subtree_counts(tree, unit, window)
        figures = figure_groups(total(counts, _members(tree, unit, scope)))
        children = [
            ChildFigures(row.entry.code, row.entry.name, figure_groups(row.figures)["dossiers"], row.kind == "split")
            for row in _breakdown_rows(tree, unit, counts)[1:]
        ]
        return build_annual_report(
            ReportInput(
                unit=unit,
                unit_name=tree.units[unit].name,
                year=year,
                scope=scope,
                start=window.start,
                end=window.end,
                as_of=window.as_of,
                generated_at=self._clock(),
                dossiers=figures["dossiers"],
                documents=figures["documents"],
                procedures=figures["procedures"],
                children=children,
                index766=await self._index766(tree, unit, window),
                predecessors=_predecessors_in(tree, unit, scope, window),
            )
        )

    async def ready(self) -> None:
        """Raises DatabaseUnavailable unless PostgreSQL answers and the schema exists."""
        await self._queries.ping()

    def _check_snapshot(self, tree: UnitTree, unit: str, year: int | None) -> int:
        """The snapshot's year, after checking the unit and that the year has started."""
        _check_unit(tree, unit)
        year = self._year(year)
        with _period():
            year_window(year, self._clock())
        return year

    async def _subtree_counts(self, tree: UnitTree, unit: str, window: Window) -> CountsByUnit:
        units = _members(tree, unit, "subtree")
        return await self._queries.counts_by_unit(units, window.start, window.end, window.as_of)

    async def _index766(self, tree: UnitTree, unit: str, window: Window) -> dict[str, Any]:
        units = _members(tree, unit, "subtree")
        sums = await self._queries.index_sums(units, window.start, window.end, window.as_of)

        def index_of(members: Iterable[str]) -> Index766:
            return score(self.formula, index_inputs(add_sums(sums.get(member, {}) for member in members)))

        children = [(child, tree.units[child].name, index_of(tree.stored_keys(child))) for child in tree.children[unit]]
        return {**render_index(index_of(units)), "ranking": rank_children(children)}

    async def _freshness(self) -> dict[str, str | None]:
        return freshness(await self._queries.last_applied_at())


@dataclass(frozen=True)
class _Row:
    entry: UnitEntry
    scope: Scope
    kind: RowKind
    figures: dict[str, int]


def _breakdown_rows(tree: UnitTree, unit: str, counts: CountsByUnit) -> list[_Row]:
    """The unit alone (scope self: with the units merged into it whole), then each direct child with
    its whole subtree, then the units counted here that are not in the tree (contract §1.1): split
    units, units ended without successors, units created after the tree's day. Their stored keys are
    exactly the unit's subtree keys, so the rows add up to its figures."""
    rows = [_Row(tree.units[unit], "self", "unit", total(counts, tree.stored_keys(unit, "self")))]
    rows += [
        _Row(tree.units[child], "subtree", "child", total(counts, tree.stored_keys(child)))
        for child in tree.children[unit]
    ]
    rows += [_Row(extra.entry, "subtree", extra.kind, total(counts, extra.keys)) for extra in tree.extra_rows(unit)]
    return rows


def _predecessors_in(tree: UnitTree, unit: str, scope: Scope, window: Window) -> list[str]:
    """Names of the ended units whose events of the window count in the unit's figures."""
    included = set(tree.stored_keys(unit, scope))
    return [
        p.entry.name
        for p in tree.predecessors(unit)
        if p.entry.key in included
        and (p.entry.valid_to is None or window.start < p.entry.valid_to)
        and (p.entry.valid_from is None or p.entry.valid_from <= window.end)
    ]


def _named_day(tree: UnitTree, today: date) -> date | None:
    """The day the page names its tree by: none for today's tree, else a day of the tree's period
    (the first day of a later tree, the last day of a past one)."""
    if tree.valid_from is not None and today < tree.valid_from:
        return tree.valid_from
    if tree.valid_to is not None and tree.valid_to <= today:
        return tree.valid_to - timedelta(days=1)
    return None


def tree_day(tree: UnitTree) -> date:
    """A day that names the tree's period (its first day; date.min for the registry's first period)."""
    return tree.valid_from or date.min


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
