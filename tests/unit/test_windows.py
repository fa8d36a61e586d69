"""Periods of the snapshot, the report and the monthly trend (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.reporting.indicators import (
    MONTHLY_DOSSIER_FIGURES,
    monthly_rows,
    next_local_midnight,
    report_window,
    year_window,
)
from services.reporting.service import current_year
from shared.timezone import LOCAL_TZ

NOW = datetime(2025, 6, 10, 10, 0, tzinfo=LOCAL_TZ)


def test_year_to_date() -> None:
    window = year_window(2025, NOW)
    assert (window.start, window.end, window.as_of) == (date(2025, 1, 1), date(2025, 6, 10), NOW)


def test_past_year_is_whole() -> None:
    window = year_window(2023, NOW)
    assert (window.start, window.end) == (date(2023, 1, 1), date(2023, 12, 31))
    assert window.as_of.isoformat() == "2023-12-31T23:59:59.999999+07:00"


def test_a_year_not_begun_is_refused() -> None:
    with pytest.raises(ValueError, match="not started"):
        year_window(2026, NOW)


@pytest.mark.parametrize("end", [date(2024, 12, 31), date(2026, 1, 1)])
def test_report_end_must_lie_in_the_year(end: date) -> None:
    with pytest.raises(ValueError, match="in the year"):
        report_window(2025, end, NOW)


def test_report_end_defaults_and_given() -> None:
    assert report_window(2023, None, NOW).end == date(2023, 12, 31)
    assert report_window(2025, None, NOW).end == date(2025, 6, 10)
    given = report_window(2023, date(2023, 11, 27), NOW)
    assert given.as_of.isoformat() == "2023-11-27T23:59:59.999999+07:00"


def test_local_midnight_is_asia_ho_chi_minh() -> None:
    late = datetime(2025, 3, 1, 16, 30, tzinfo=LOCAL_TZ).astimezone(LOCAL_TZ)
    assert next_local_midnight(late).isoformat() == "2025-03-02T00:00:00+07:00"


def test_monthly_rows_have_twelve_months_and_null_future() -> None:
    rows = monthly_rows(2025, {3: {"received": 5, "documents_incoming": 2}}, date(2025, 6, 10))
    assert [r["month"] for r in rows][:2] == ["2025-01", "2025-02"] and len(rows) == 12
    assert rows[1]["to"] == "2025-02-28" and rows[11]["to"] == "2025-12-31"
    assert rows[2]["dossiers"]["received"] == 5 and rows[2]["documents"]["incoming"] == 2
    assert rows[5]["dossiers"]["received"] == 0, "June has begun"
    assert rows[6]["dossiers"]["received"] is None, "July has not"
    assert set(rows[0]["dossiers"]) == set(MONTHLY_DOSSIER_FIGURES)
    assert "in_progress" not in rows[0]["dossiers"]


def test_the_current_year_is_local() -> None:
    assert current_year(datetime(2025, 12, 31, 16, 59, tzinfo=UTC)) == 2025
    assert current_year(datetime(2025, 12, 31, 17, 0, tzinfo=UTC)) == 2026
