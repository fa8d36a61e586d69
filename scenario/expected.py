"""The figures a set of events implies, computed with the aggregator's pure core (no I/O).

The same path the services take: events -> `plan_batch` -> counter contributions -> window sums
(daily counters) and levels at as_of -> `figure_groups`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.aggregator.domain import Contributions
from services.aggregator.planner import plan_batch
from services.reporting.indicators import RATES, figure_groups, rate
from shared.counters import ALL_COUNTERS
from shared.events import Event, event_batch_adapter
from shared.timezone import end_of_day

COUNT_GROUPS = ("dossiers", "documents", "procedures")
GROUPS = (*COUNT_GROUPS, "rates")


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    @property
    def as_of(self) -> datetime:
        return end_of_day(self.end)

    @classmethod
    def of(cls, scenario: Mapping[str, Any]) -> Window:
        return cls(date.fromisoformat(scenario["window"]["from"]), date.fromisoformat(scenario["window"]["to"]))


def decode(events: Sequence[Mapping[str, Any]]) -> list[Event]:
    """Validates JSON-ready event dicts with the contract's models."""
    return event_batch_adapter.validate_json(json.dumps(events).encode())


def contributions_of(events: Iterable[Event]) -> Contributions:
    return plan_batch(events, {}).delta


def counts(delta: Contributions, unit: str, window: Window) -> dict[str, int]:
    """Stored-counter totals of one unit (scope self): daily ones over the window, levels at as_of."""
    result = dict.fromkeys(ALL_COUNTERS, 0)
    for (counted_unit, counter, day), value in delta.daily.items():
        if counted_unit == unit and window.start <= day <= window.end:
            result[counter] += value
    as_of = window.as_of
    for (counted_unit, counter, instant), value in delta.levels.items():
        if counted_unit == unit and instant <= as_of:
            result[counter] += value
    return result


def figures(delta: Contributions, unit: str, window: Window) -> dict[str, dict[str, Any]]:
    """The dossiers, documents, procedures and rates groups the reporting API should show."""
    return figure_groups(counts(delta, unit, window))


def differences(expected: Mapping[str, Mapping[str, Any]], actual: Mapping[str, Any]) -> list[str]:
    """Every figure of `expected` that `actual` (an indicators body) shows differently."""
    found: list[str] = []
    for group in GROUPS:
        shown = actual.get(group) or {}
        for name, value in expected.get(group, {}).items():
            if shown.get(name) != value:
                found.append(f"{group}.{name}: expected {value}, got {shown.get(name)}")
    return found


def combined(before: Mapping[str, Mapping[str, Any]], added: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of two disjoint sets of events together: counts add up, rates are recomputed."""
    groups: dict[str, dict[str, Any]] = {
        group: {name: before[group][name] + value for name, value in added[group].items()} for group in COUNT_GROUPS
    }
    groups["rates"] = {name: rate(groups[group][num], groups[group][den]) for name, (group, num, den) in RATES.items()}
    return groups
