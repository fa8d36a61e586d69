"""Use cases of the reporting service: indicator bodies for a unit, scope and window."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from services.reporting.indicators import Window, figure_groups, resolve_window, total
from services.reporting.queries import IndicatorQueries
from shared.units import UnitTree

Scope = Literal["subtree", "self"]


class UnknownUnit(LookupError):
    pass


@dataclass(frozen=True)
class Snapshot:
    body: dict[str, Any]
    etag: str


class ReportingService:
    def __init__(self, tree: UnitTree, queries: IndicatorQueries) -> None:
        self.tree = tree
        self._queries = queries

    def _check_unit(self, unit: str) -> None:
        if unit not in self.tree:
            raise UnknownUnit(unit)

    async def indicators(self, unit: str, scope: Scope, window: Window) -> dict[str, Any]:
        self._check_unit(unit)
        units = self.tree.subtree(unit) if scope == "subtree" else [unit]
        counts = await self._queries.counts_by_unit(units, window.start, window.end, window.as_of)
        return {
            **_header(unit, window),
            "scope": scope,
            **figure_groups(total(counts, units)),
            "freshness": await self._freshness(),
        }

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

    async def snapshot(self, unit: str, now: datetime) -> Snapshot:
        """Year-to-date indicators; the ETag covers every figure, not the clock."""
        body = await self.indicators(unit, "subtree", resolve_window(None, None, now))
        figures = {key: body[key] for key in ("unit", "scope", "from", "dossiers", "documents", "procedures")}
        digest = hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()[:32]
        return Snapshot(body, f'"{digest}"')

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


def parse_window(start: date | None, end: date | None, now: datetime) -> Window:
    return resolve_window(start, end, now)
