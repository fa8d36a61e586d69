"""Indicator figures of contract §5 from stored counts (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.counters import ALL_COUNTERS, DAILY_COUNTERS
from shared.timezone import end_of_day, local_day, start_of_day

DOSSIER_FIGURES = (
    "received", "received_online", "received_direct", "received_postal",
    "resolved", "resolved_on_time", "resolved_late", "in_progress", "in_progress_overdue", "withdrawn",
    "digitization_required", "components_digitized", "result_digitization_required", "results_digitized",
    "fee_required", "paid_online", "ratings", "ratings_satisfied",
    "synced", "supplement_requested", "components_reused", "components_from_personal_store",
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


def year_window(year: int, now: datetime) -> Window:
    """The year to date: 1 January to 31 December of `year`, or to today if that is earlier."""
    return report_window(year, None, now)


def report_window(year: int, end: date | None, now: datetime) -> Window:
    """1 January of `year` to `end` (default: 31 December, or today if earlier); `end` must lie in `year`."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    if end is None:
        end = min(last, local_day(now))
        if end < first:
            raise ValueError(f"year {year} has not started yet")
    elif not first <= end <= last:
        raise ValueError(f"to must lie in the year {year}")
    return resolve_window(first, end, now)


def next_local_midnight(now: datetime) -> datetime:
    return start_of_day(local_day(now) + timedelta(days=1))


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


# Monthly trend: window figures only (levels such as in_progress have no monthly meaning here).
MONTHLY_DOSSIER_FIGURES = tuple(name for name in DOSSIER_FIGURES if name in DAILY_COUNTERS)


def monthly_rows(year: int, by_month: Mapping[int, Mapping[str, int]], last_day: date) -> list[dict[str, Any]]:
    """Twelve rows, January to December; months after `last_day` have null figures (not yet known)."""
    rows: list[dict[str, Any]] = []
    for month in range(1, 13):
        first = date(year, month, 1)
        end = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
        counts = by_month.get(month, {})
        known = first <= last_day
        rows.append(
            {
                "month": f"{year:04d}-{month:02d}",
                "from": first.isoformat(),
                "to": end.isoformat(),
                "dossiers": {n: counts.get(n, 0) if known else None for n in MONTHLY_DOSSIER_FIGURES},
                "documents": {n: counts.get(c, 0) if known else None for n, c in DOCUMENT_FIGURES.items()},
            }
        )
    return rows
