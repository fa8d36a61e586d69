"""Indicator figures of contract §5 from stored counts (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.counters import ALL_COUNTERS
from shared.timezone import end_of_day, local_day

DOSSIER_FIGURES = (
    "received", "received_online", "received_direct", "received_postal",
    "resolved", "resolved_on_time", "resolved_late", "in_progress", "in_progress_overdue", "withdrawn",
    "digitization_required", "components_digitized", "result_digitization_required", "results_digitized",
    "fee_required", "paid_online", "ratings", "ratings_satisfied",
)  # fmt: skip
# Figure name -> stored counter.
DOCUMENT_FIGURES = {
    "incoming": "documents_incoming",
    "outgoing": "documents_outgoing",
    "electronic": "documents_electronic",
    "signed_by_organization": "signed_by_organization",
    "signed_by_leader": "signed_by_leader",
}
PROCEDURE_LEVELS = ("info", "partial_online", "full_online")
# Rate name -> (numerator, denominator), by figure name within its group.
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


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    as_of: datetime


def resolve_window(start: date | None, end: date | None, now: datetime) -> Window:
    """Defaults of contract §4: from 1 January of the current year to today; as_of capped at now."""
    today = local_day(now)
    end = end or today
    start = start or date(today.year, 1, 1)
    if start > end:
        raise ValueError("from must not be after to")
    return Window(start, end, min(end_of_day(end), now.astimezone(end_of_day(end).tzinfo)))


def rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def total(counts_by_unit: Mapping[str, Mapping[str, int]], units: Iterable[str]) -> dict[str, int]:
    result = dict.fromkeys(ALL_COUNTERS, 0)
    for unit in units:
        for counter, value in counts_by_unit.get(unit, {}).items():
            result[counter] += value
    return result


def figure_groups(counts: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """The dossiers, documents, procedures and rates groups of the indicators body."""
    dossiers = {name: counts[name] for name in DOSSIER_FIGURES}
    documents = {name: counts[counter] for name, counter in DOCUMENT_FIGURES.items()}
    levels = {level: counts[f"procedures_{level}"] for level in PROCEDURE_LEVELS}
    procedures = {"total": sum(levels.values()), **levels}
    groups: dict[str, dict[str, Any]] = {"dossiers": dossiers, "documents": documents, "procedures": procedures}
    groups["rates"] = {name: rate(groups[group][num], groups[group][den]) for name, (group, num, den) in RATES.items()}
    return groups
