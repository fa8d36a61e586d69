"""How a window of days splits into whole calendar months and the days at its edges (pure).

The aggregator keeps monthly roll-ups of the daily counters and cohort changes (migration 0004):
a window's sums are those of its whole months from the roll-ups plus those of its other days from
the daily (or exact) rows. A year of a province then reads 12 rows per unit instead of 365.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

# A range of days that holds none: BETWEEN the later AND the earlier matches no row.
NO_DAYS = (date.max, date.min)


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def _last_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class WindowParts:
    """The days [start, end] as `months` (first days of the whole months, first and last
    inclusive, or NO_DAYS) and the day ranges `head` and `tail` before and after them (NO_DAYS
    when empty). Without a whole month, `head` is the whole window."""

    months: tuple[date, date]
    head: tuple[date, date]
    tail: tuple[date, date]


def window_parts(start: date, end: date) -> WindowParts:
    """Split [start, end] (start <= end) into whole months and edge days."""
    if start.day != 1 and _last_of_month(start) >= end:  # within one month (and never past date.max)
        return WindowParts(NO_DAYS, (start, end), NO_DAYS)
    first_whole = start if start.day == 1 else _last_of_month(start) + timedelta(days=1)
    last_whole_end = end if end == _last_of_month(end) else first_of_month(end) - timedelta(days=1)
    if first_whole > last_whole_end:
        return WindowParts(NO_DAYS, (start, end), NO_DAYS)
    head = (start, first_whole - timedelta(days=1)) if start < first_whole else NO_DAYS
    tail = (last_whole_end + timedelta(days=1), end) if last_whole_end < end else NO_DAYS
    return WindowParts((first_whole, first_of_month(last_whole_end)), head, tail)
