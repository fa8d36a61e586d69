"""The inputs of the Decision 766 index (contract §5.1) from the stored counters (pure: no I/O).

`IndexSums` are a unit's (or subtree's) sums read for a window W = [start, end] and `as_of`:
- the daily counters summed over the days of W and the level counters at `as_of`;
- the cohort counters summed over the rows whose day is in W and whose instant is at or before
  `as_of` (4.2: dossiers received in W; 2.1: dossiers that ended on a day of W);
- `PROCEDURE_SUMS`: procedures published at `as_of` that had at least one such dossier in W.

`index_inputs` turns them into the names of `services.reporting.index766.INPUTS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from services.reporting.index766 import INPUTS

# Counted per procedure: published at as_of with the flag, and at least one dossier in W such that.
PROCEDURE_SUMS: tuple[str, ...] = (
    "procedures_online_used",  # online (partial or full), received online
    "procedures_fee_bearing_with_fee_data",  # fee-bearing, received with a fee and synchronised
    "procedures_fee_bearing_paid_online",  # fee-bearing, paid online
)

# Inputs that are a stored counter of the same name.
_SAME_NAME = (
    "received",
    "received_online",
    "resolved",
    "resolved_late",
    "in_progress",
    "in_progress_overdue",
    "fee_required",
    "paid_online",
    "result_digitization_required",
    "results_digitized",
    "synced",
    "components_reused",
    "components_from_personal_store",
    "procedures_fee_bearing",
    *PROCEDURE_SUMS,
)


def index_inputs(sums: Mapping[str, int]) -> dict[str, int]:
    """Every input of the index from one unit's (or subtree's) sums; absent sums are 0."""

    def get(name: str) -> int:
        return sums.get(name, 0)

    inputs = {name: get(name) for name in _SAME_NAME}
    inputs["ratings_dissatisfied"] = get("ratings") - get("ratings_satisfied")
    # 4.2: digitized, minus those resolved by as_of whose required result was not digitized.
    inputs["digitized_complete"] = get("received_digitized") - get("digitized_result_missing")
    # 2.1: ended on a day of W (known by as_of) plus open at as_of.
    inputs["handled"] = get("handled_ended") + get("in_progress")
    inputs["handled_on_time"] = get("handled_ended_on_time") + get("open_on_time")
    inputs["procedures"] = get("procedures_info") + get("procedures_partial_online") + get("procedures_full_online")
    inputs["procedures_online"] = get("procedures_partial_online") + get("procedures_full_online")
    assert set(inputs) == set(INPUTS), set(INPUTS) ^ set(inputs)
    return inputs


def add_sums(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sums of several stored units (a subtree)."""
    total: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


def year_masks(start: date, end: date) -> list[tuple[int, str]]:
    """Per year of [start, end], the bitmask of its days in the window (bit 0 = 1 January).

    The same layout as the aggregator's `procedure_years` rows.
    """
    masks: list[tuple[int, str]] = []
    for year in range(start.year, end.year + 1):
        first = max(start, date(year, 1, 1))
        last = min(end, date(year, 12, 31))
        a = first.timetuple().tm_yday - 1
        b = last.timetuple().tm_yday - 1
        masks.append((year, "0" * a + "1" * (b - a + 1) + "0" * (365 - b)))
    return masks
