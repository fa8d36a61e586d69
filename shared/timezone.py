"""Calendar days of the contract: Asia/Ho_Chi_Minh (UTC+07:00, no daylight saving)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=LOCAL_TZ)


def end_of_day(day: date) -> datetime:
    """The last representable instant of the day (timestamps have microsecond resolution)."""
    return start_of_day(day + timedelta(days=1)) - timedelta(microseconds=1)
