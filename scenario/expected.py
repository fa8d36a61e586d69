"""The figures the demo expects, from the scenario's own targets, not from the code under test.

The count groups of each planned unit are the plan's (`scenario.plan`): the seed report's figures
in `my_hao_2023.json` for the town and its pilot communes, the seed's draws for the others. The
generator draws the Decision 766 facts of contract v2 (dossiers synchronised to DVCQG, supplement
requests, reused and personal-store components) on its own, so those four figures are counted from
the events it generated: the dossiers received in the window that have the fact. The rates follow from the counts as
contract §5 defines them.

tests/unit/test_scenario.py checks these figures against the aggregator's core run on the events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from scenario.generate import plan_for
from shared.events import Event, event_batch_adapter
from shared.timezone import end_of_day, local_day

COUNT_GROUPS = ("dossiers", "documents", "procedures")
GROUPS = (*COUNT_GROUPS, "rates")

Figures = dict[str, dict[str, Any]]

# Contract §5: each rate is numerator / denominator of two counts, 4 decimals, null when nothing is counted.
RATES: dict[str, tuple[str, str, str]] = {
    "online": ("dossiers", "received_online", "received"),
    "resolved_on_time": ("dossiers", "resolved_on_time", "resolved"),
    "in_progress_overdue": ("dossiers", "in_progress_overdue", "in_progress"),
    "components_digitized": ("dossiers", "components_digitized", "digitization_required"),
    "results_digitized": ("dossiers", "results_digitized", "result_digitization_required"),
    "paid_online": ("dossiers", "paid_online", "fee_required"),
    "satisfaction": ("dossiers", "ratings_satisfied", "ratings"),
    "signed_by_leader": ("documents", "signed_by_leader", "signed_by_organization"),
}

_DOSSIER = "vn.gov.tthc.dossier."
# v2 dossier figures: the dossiers received in the window that have the fact.
V2_DOSSIER_FIGURES = ("synced", "supplement_requested", "components_reused", "components_from_personal_store")


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


def rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def with_rates(counts: Mapping[str, Mapping[str, int]]) -> Figures:
    groups: Figures = {group: dict(counts[group]) for group in COUNT_GROUPS}
    groups["rates"] = {name: rate(groups[group][num], groups[group][den]) for name, (group, num, den) in RATES.items()}
    return groups


def v2_counts(events: Iterable[Mapping[str, Any]], window: Window) -> dict[str, dict[str, int]]:
    """unit -> the v2 dossier figures of the generated events: the dossiers received in the window
    with the fact, each counted once per fact."""
    unit_of: dict[str, str] = {}
    facts: dict[str, set[str]] = {name: set() for name in V2_DOSSIER_FIGURES}
    for event in events:
        kind, data = event["type"].removeprefix(_DOSSIER), event["data"]
        if kind == "received":
            if window.start <= local_day(datetime.fromisoformat(data["received_at"])) <= window.end:
                unit_of[data["dossier_id"]] = data["unit"]
        elif kind == "synced":
            facts["synced"].add(data["dossier_id"])
        elif kind == "supplement_requested":
            facts["supplement_requested"].add(data["dossier_id"])
        elif kind == "components_digitized":
            if data.get("reused"):
                facts["components_reused"].add(data["dossier_id"])
            if data.get("from_personal_store"):
                facts["components_from_personal_store"].add(data["dossier_id"])
    counts: dict[str, dict[str, int]] = {}
    for name, dossiers in facts.items():
        for dossier in dossiers & unit_of.keys():
            unit = counts.setdefault(unit_of[dossier], dict.fromkeys(V2_DOSSIER_FIGURES, 0))
            unit[name] += 1
    return counts


def expected_figures(scenario: Mapping[str, Any], seed: int, events: Iterable[Mapping[str, Any]]) -> dict[str, Figures]:
    """unit -> the figures (scope self) the reporting API should show once `events` are applied;
    `events` are those `generate_events(scenario, seed)` made."""
    v2 = v2_counts(events, Window.of(scenario))
    expected: dict[str, Figures] = {}
    for unit, plan in plan_for(scenario, seed).units.items():
        counts = plan.figures()
        counts["dossiers"] = {**counts["dossiers"], **v2.get(unit, dict.fromkeys(V2_DOSSIER_FIGURES, 0))}
        expected[unit] = with_rates(counts)
    return expected


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
