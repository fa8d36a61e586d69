"""The index's inputs from stored sums, the window's year masks and the aggregator's year bitmaps."""

from __future__ import annotations

from datetime import date

from services.aggregator.pipeline import procedure_year_rows
from services.reporting.index766 import INPUTS
from services.reporting.index766_inputs import add_sums, index_inputs, year_masks


def test_every_input_is_derived_and_absent_sums_are_zero() -> None:
    assert index_inputs({}) == dict.fromkeys(INPUTS, 0)


def test_derived_inputs() -> None:
    sums = {
        "ratings": 10,
        "ratings_satisfied": 7,
        "received_digitized": 50,
        "digitized_result_missing": 4,
        "handled_ended": 30,
        "handled_ended_on_time": 25,
        "in_progress": 12,
        "open_on_time": 9,
        "procedures_info": 3,
        "procedures_partial_online": 5,
        "procedures_full_online": 8,
    }
    inputs = index_inputs(sums)
    assert inputs["ratings_dissatisfied"] == 3
    assert inputs["digitized_complete"] == 46
    assert (inputs["handled"], inputs["handled_on_time"]) == (42, 34)
    assert (inputs["procedures"], inputs["procedures_online"]) == (16, 13)


def test_sums_of_a_subtree_add_up() -> None:
    assert add_sums([{"received": 2, "synced": 1}, {}, {"received": 3}]) == {"received": 5, "synced": 1}


def test_year_masks_cover_the_window_days_of_each_year() -> None:
    masks = dict(year_masks(date(2023, 12, 30), date(2025, 1, 2)))
    assert sorted(masks) == [2023, 2024, 2025]
    assert all(len(mask) == 366 for mask in masks.values())
    assert masks[2023].index("1") == 363 and masks[2023].count("1") == 2
    assert masks[2024].count("1") == 366  # a leap year, every day
    assert masks[2025] == "11" + "0" * 364


def test_year_rows_mark_touched_days_and_the_non_zero_ones() -> None:
    rows = procedure_year_rows(
        [
            {
                "unit": "u",
                "procedure_code": "p",
                "day": date(2024, 1, 1),
                "received_online": 1,
                "fee_synced": 0,
                "paid_online": 0,
            },
            {
                "unit": "u",
                "procedure_code": "p",
                "day": date(2024, 1, 3),
                "received_online": 0,
                "fee_synced": 2,
                "paid_online": 0,
            },
        ]
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["year"] == 2024
    assert row["received_online_touched"].startswith("101") and row["received_online_set"].startswith("100")
    assert row["fee_synced_set"].startswith("001") and row["paid_online_set"] == "0" * 366
