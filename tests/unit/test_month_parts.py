"""Windows split into whole months and edge days, checked day by day against their definition."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.month_parts import NO_DAYS, WindowParts, window_parts


def days_of(parts: WindowParts) -> list[date]:
    """Every day the parts stand for, in order (whole months expanded)."""

    def span(first: date, last: date) -> list[date]:
        return [first + timedelta(days=n) for n in range((last - first).days + 1)] if first <= last else []

    months: list[date] = []
    if parts.months != NO_DAYS:
        last_month = parts.months[1]
        month_end = (last_month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        months = span(parts.months[0], month_end)
    return span(*parts.head) + months + span(*parts.tail)


@pytest.mark.parametrize(
    ("start", "end", "months", "head", "tail"),
    [
        (date(2026, 1, 1), date(2026, 12, 31), (date(2026, 1, 1), date(2026, 12, 1)), NO_DAYS, NO_DAYS),
        (
            date(2026, 1, 1),
            date(2026, 12, 3),
            (date(2026, 1, 1), date(2026, 11, 1)),
            NO_DAYS,
            (date(2026, 12, 1), date(2026, 12, 3)),
        ),
        (
            date(2025, 12, 4),
            date(2026, 12, 3),
            (date(2026, 1, 1), date(2026, 11, 1)),
            (date(2025, 12, 4), date(2025, 12, 31)),
            (date(2026, 12, 1), date(2026, 12, 3)),
        ),
        (date(2026, 2, 1), date(2026, 2, 28), (date(2026, 2, 1), date(2026, 2, 1)), NO_DAYS, NO_DAYS),
        (date(2026, 2, 2), date(2026, 2, 28), NO_DAYS, (date(2026, 2, 2), date(2026, 2, 28)), NO_DAYS),
        (date(2026, 2, 1), date(2026, 2, 27), NO_DAYS, (date(2026, 2, 1), date(2026, 2, 27)), NO_DAYS),
        (date(2026, 1, 31), date(2026, 2, 1), NO_DAYS, (date(2026, 1, 31), date(2026, 2, 1)), NO_DAYS),
        (date(2026, 5, 7), date(2026, 5, 7), NO_DAYS, (date(2026, 5, 7), date(2026, 5, 7)), NO_DAYS),
        (date(9999, 12, 5), date.max, NO_DAYS, (date(9999, 12, 5), date.max), NO_DAYS),
    ],
)
def test_known_windows(
    start: date, end: date, months: tuple[date, date], head: tuple[date, date], tail: tuple[date, date]
) -> None:
    assert window_parts(start, end) == WindowParts(months, head, tail)


@given(start=st.dates(date(2020, 1, 1), date(2030, 12, 31)), length=st.integers(0, 800))
def test_the_parts_are_the_window_s_days_with_whole_months_only_in_months(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    parts = window_parts(start, end)
    assert days_of(parts) == [start + timedelta(days=n) for n in range(length + 1)]
    if parts.months != NO_DAYS:
        assert parts.months[0].day == 1 and parts.months[1].day == 1
        assert parts.head == NO_DAYS or (parts.head[1] + timedelta(days=1)) == parts.months[0]
        # Maximal: an edge holds no whole month (it starts after a month's first day, or ends
        # before its last).
        assert parts.head == NO_DAYS or parts.head[0].day != 1
        assert parts.tail == NO_DAYS or (parts.tail[1] + timedelta(days=1)).day != 1
    else:
        assert parts.tail == NO_DAYS
