"""Use cases of the reporting service: indicator bodies, snapshots, monthly trend, annual report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Literal

from services.reporting.index766 import Formula, Index766, load_formula, rank_children, render_index, score
from services.reporting.index766_inputs import add_sums, index_inputs
from services.reporting.indicators import Window, figure_groups, monthly_rows, report_window, resolve_window, total
from services.reporting.queries import IndicatorQueries
from services.reporting.report import Report, ReportInput, build_annual_report
from services.reporting.snapshots import InvalidPeriod, SnapshotCache, UnknownUnit, indicators_body
from services.reporting.versioning import CachedSnapshot
from shared.timezone import local_day
from shared.units import UnitTree

Scope = Literal["subtree", "self"]

__all__ = ["InvalidPeriod", "ReportingService", "Scope", "UnknownUnit"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def current_year(now: datetime | None = None) -> int:
    """The year of today in Asia/Ho_Chi_Minh (not in UTC: 1 January starts at 17:00 UTC)."""
    return local_day(now or now_utc()).year


class ReportingService:
    def __init__(
        self,
        tree: UnitTree,
        queries: IndicatorQueries,
        clock: Callable[[], datetime] = now_utc,
        formula: Formula | None = None,
    ) -> None:
        self.tree = tree
        self._queries = queries
        self._clock = clock
        self.formula = formula or load_formula()
        self.snapshots = SnapshotCache(tree, queries, clock)

    def _check_unit(self, unit: str) -> None:
        if unit not in self.tree:
            raise UnknownUnit(unit)

    def window(self, start: date | None, end: date | None) -> Window:
        try:
            return resolve_window(start, end, self._clock())
        except ValueError as exc:
            raise InvalidPeriod(str(exc)) from exc

    async def indicators(self, unit: str, scope: Scope, window: Window) -> dict[str, Any]:
        self._check_unit(unit)
        units = self.tree.subtree(unit) if scope == "subtree" else [unit]
        counts = await self._queries.counts_by_unit(units, window.start, window.end, window.as_of)
        return indicators_body(unit, scope, window, total(counts, units), await self._queries.last_applied_at())

    async def breakdown(self, unit: str, window: Window) -> dict[str, Any]:
        self._check_unit(unit)
        units = self.tree.subtree(unit)
        counts = await self._queries.counts_by_unit(units, window.start, window.end, window.as_of)
        rows = [
            {"unit": unit, "name": self.tree.units[unit].name, "scope": "self", **figure_groups(total(counts, [unit]))}
        ]
        for child in self.tree.children[unit]:
            rows.append(
                {
                    "unit": child,
                    "name": self.tree.units[child].name,
                    "scope": "subtree",
                    **figure_groups(total(counts, self.tree.subtree(child))),
                }
            )
        return {**_header(unit, window), "rows": rows, "freshness": await self._freshness()}

    async def index766(self, unit: str, window: Window) -> dict[str, Any]:
        """The Decision 766 index of the unit's subtree for the window, and its children's ranking."""
        self._check_unit(unit)
        units = self.tree.subtree(unit)
        sums = await self._queries.index_sums(units, window.start, window.end, window.as_of)

        def index_of(members: list[str]) -> Index766:
            return score(self.formula, index_inputs(add_sums(sums.get(member, {}) for member in members)))

        children = [
            (child, self.tree.units[child].name, index_of(self.tree.subtree(child)))
            for child in self.tree.children[unit]
        ]
        return {
            **_header(unit, window),
            **render_index(index_of(units)),
            "ranking": rank_children(children),
            "freshness": await self._freshness(),
        }

    async def snapshot(self, unit: str, year: int | None = None) -> CachedSnapshot:
        """The year-to-date indicators of the unit's subtree; its ETag changes exactly with a figure."""
        return await self.snapshots.get(unit, year or current_year(self._clock()))

    async def monthly(self, unit: str, scope: Scope, year: int) -> dict[str, Any]:
        """Window figures of each month of `year` (null for months that have not started)."""
        self._check_unit(unit)
        try:
            window = report_window(year, None, self._clock())
        except ValueError as exc:
            raise InvalidPeriod(str(exc)) from exc
        units = self.tree.subtree(unit) if scope == "subtree" else [unit]
        by_month = await self._queries.monthly_counts(units, year)
        return {
            "unit": unit,
            "scope": scope,
            "year": year,
            "as_of": window.as_of.isoformat(),
            "months": monthly_rows(year, by_month, window.end),
            "freshness": await self._freshness(),
        }

    async def annual_report(self, unit: str, year: int, end: date | None, scope: Scope) -> Report:
        """Sections 4.1, 4.4, 9 and 10 (Decision 766) of the annual report, from the same queries as the API."""
        self._check_unit(unit)
        try:
            window = report_window(year, end, self._clock())
        except ValueError as exc:
            raise InvalidPeriod(str(exc)) from exc
        indicators = await self.indicators(unit, scope, window)
        breakdown = await self.breakdown(unit, window)
        index = await self.index766(unit, window)
        return build_annual_report(
            ReportInput.from_bodies(
                unit_name=self.tree.units[unit].name,
                year=year,
                indicators=indicators,
                breakdown_rows=[row for row in breakdown["rows"] if row["unit"] != unit],
                generated_at=self._clock(),
                index766=index,
            )
        )

    async def _freshness(self) -> dict[str, str | None]:
        last = await self._queries.last_applied_at()
        return {"last_applied_at": last.isoformat() if last else None}


def _header(unit: str, window: Window) -> dict[str, Any]:
    return {
        "unit": unit,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "as_of": window.as_of.isoformat(),
    }
