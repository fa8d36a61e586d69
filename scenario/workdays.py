"""The 2023 working calendar of a Vietnamese public office, and random moments within it.

Offices work Monday to Friday, 07:30-17:00 local time (UTC+07:00), except on public holidays.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta, timezone
from random import Random

LOCAL = timezone(timedelta(hours=7))
YEAR = 2023
OPENS = time(7, 30)
CLOSES = time(17, 0)

# Public holidays of 2023 falling on weekdays or bridging them (New Year, Tết, 30/4-1/5, 2/9).
HOLIDAYS: frozenset[date] = frozenset(
    [date(2023, 1, 2)]
    + [date(2023, 1, 20) + timedelta(days=offset) for offset in range(7)]
    + [date(2023, 4, 29) + timedelta(days=offset) for offset in range(5)]
    + [date(2023, 9, 1) + timedelta(days=offset) for offset in range(4)]
)

# The last instant any scenario timestamp may take.
YEAR_END = datetime(YEAR, 12, 31, 23, 59, 59, tzinfo=LOCAL)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def _working_days_of_year() -> tuple[date, ...]:
    first = date(YEAR, 1, 1)
    days = (first + timedelta(days=offset) for offset in range(365))
    return tuple(day for day in days if is_working_day(day))


WORKING_DAYS: tuple[date, ...] = _working_days_of_year()
LAST_WORKING_DAY: date = WORKING_DAYS[-1]


def working_days_between(first: date, last: date) -> tuple[date, ...]:
    """The working days in [first, last]."""
    return WORKING_DAYS[bisect.bisect_left(WORKING_DAYS, first) : bisect.bisect_right(WORKING_DAYS, last)]


def working_day_index(day: date) -> int:
    """The position of a working day in the year's calendar."""
    index = bisect.bisect_left(WORKING_DAYS, day)
    if index == len(WORKING_DAYS) or WORKING_DAYS[index] != day:
        raise ValueError(f"{day} is not a working day")
    return index


def add_working_days(day: date, count: int) -> date:
    """The `count`-th working day after the working day `day`, capped at the year's last working day."""
    return WORKING_DAYS[min(working_day_index(day) + count, len(WORKING_DAYS) - 1)]


def at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=LOCAL)


def opening(day: date) -> datetime:
    return at(day, OPENS)


def closing(day: date) -> datetime:
    return at(day, CLOSES)


def uniform_moment(rng: Random, low: datetime, high: datetime) -> datetime:
    """A whole-second moment in [low, high] (low itself when the interval is shorter than a second)."""
    low = low.replace(microsecond=0) + (timedelta(seconds=1) if low.microsecond else timedelta(0))
    if low > high:
        return high
    span = int((high - low).total_seconds())
    return low + timedelta(seconds=rng.randint(0, span)) if span > 0 else low


OFFICE_SECONDS = int((closing(WORKING_DAYS[0]) - opening(WORKING_DAYS[0])).total_seconds())
_OPENINGS: dict[date, datetime] = {day: opening(day) for day in WORKING_DAYS}


def office_moment(rng: Random, day: date) -> datetime:
    """A whole-second moment within the office hours of the working day `day`."""
    return _OPENINGS[day] + timedelta(seconds=int(rng.random() * (OFFICE_SECONDS + 1)))


def moment_between(rng: Random, start: datetime, end: datetime, skew: float = 1.0) -> datetime:
    """A moment in (start, end], in office hours of a working day whenever one fits.

    `skew` > 1 favours the early days of the interval (work usually ends well before a deadline).
    """
    earliest = start + timedelta(seconds=1)
    if end < earliest:
        raise ValueError(f"empty interval ({start}, {end}]")
    days = list(working_days_between(earliest.astimezone(LOCAL).date(), end.astimezone(LOCAL).date()))
    # Only the first and the last day can lack office time inside the interval.
    if days and max(earliest, opening(days[-1])) > min(end, closing(days[-1])):
        days.pop()
    if days and max(earliest, opening(days[0])) > min(end, closing(days[0])):
        days.pop(0)
    if not days:
        return uniform_moment(rng, earliest, end)
    day = days[int(len(days) * rng.random() ** skew)]
    return uniform_moment(rng, max(earliest, opening(day)), min(end, closing(day)))
