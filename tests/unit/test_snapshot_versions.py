"""ETags, If-None-Match, how long figures hold, SSE framing (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.reporting.bodies import indicators_body
from services.reporting.etags import etag_of, if_none_match_matches, opaque
from services.reporting.indicators import figure_groups, year_window
from services.reporting.snapshots import CachedSnapshot, encode_snapshot, valid_until
from services.reporting.sse import sse_message
from shared.counters import ALL_COUNTERS
from shared.timezone import LOCAL_TZ

NOW = datetime(2025, 6, 10, 10, 0, tzinfo=LOCAL_TZ)


def body(now: datetime = NOW, year: int = 2025, **counts: int) -> dict[str, Any]:
    window = year_window(year, now)
    return indicators_body("my-hao", "subtree", window, dict.fromkeys(ALL_COUNTERS, 0) | counts, now)


def test_etag_is_strong_and_covers_figures_not_timestamps() -> None:
    tag = etag_of(body())
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    later = body(NOW + timedelta(hours=1))  # another as_of and freshness, same day and figures
    assert etag_of(later) == tag
    assert etag_of(body(received=1)) != tag
    assert etag_of(body(in_progress_overdue=1)) != tag
    assert etag_of(body(NOW + timedelta(days=1))) != tag, "the period (`to`) is part of the version"


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert if_none_match_matches(header, '"abc"') is matches


def test_opaque_strips_quotes_and_weakness() -> None:
    assert opaque('"abc"') == opaque('W/"abc"') == opaque("abc") == "abc"


def test_a_past_year_never_changes_by_time() -> None:
    window = year_window(2023, NOW)
    assert valid_until(window, NOW, None) is None
    assert valid_until(window, NOW, NOW + timedelta(seconds=5)) is None


def test_this_year_holds_until_the_next_level_change_or_midnight() -> None:
    window = year_window(2025, NOW)
    midnight = datetime(2025, 6, 11, tzinfo=LOCAL_TZ)
    assert valid_until(window, NOW, None) == midnight
    soon = NOW + timedelta(minutes=3)
    assert valid_until(window, NOW, soon) == soon
    assert valid_until(window, NOW, midnight + timedelta(days=2)) == midnight


def test_a_cached_version_holds_strictly_before_its_limit() -> None:
    limit = NOW + timedelta(seconds=1)
    entry = encode_snapshot(("my-hao", 2025), body(), marker=1, valid=limit, read_started=0.0)
    assert entry.holds_at(NOW) and not entry.holds_at(limit)
    assert encode_snapshot(("my-hao", 2023), body(), 1, None, 0.0).holds_at(NOW + timedelta(days=999))


def test_an_unchanged_version_keeps_its_first_body_one_etag_one_body() -> None:
    first = encode_snapshot(("my-hao", 2025), body(), marker=1, valid=None, read_started=1.0)
    again = encode_snapshot(("my-hao", 2025), body(NOW + timedelta(minutes=5)), 2, None, 2.0, previous=first)
    assert again.etag == first.etag and again.json == first.json and again.body is first.body
    assert again.marker == 2 and again.read_started == 2.0
    changed = encode_snapshot(("my-hao", 2025), body(received=3), 3, None, 3.0, previous=first)
    assert changed.etag != first.etag and b'"received":3' in changed.json


def test_sse_message_framing() -> None:
    entry: CachedSnapshot = encode_snapshot(("my-hao", 2025), body(received=1), 1, None, 0.0)
    lines = entry.sse.decode().split("\n")
    assert lines[0] == f"id: {opaque(entry.etag)}"
    assert lines[1] == "event: snapshot"
    assert lines[2].startswith("data: {") and lines[3:] == ["", ""]
    assert sse_message("x", b"{}", "1") == b"id: 1\nevent: x\ndata: {}\n\n"


def test_rates_are_part_of_the_body() -> None:
    assert body(received=4, received_online=3)["rates"]["online"] == 0.75
    assert figure_groups(dict.fromkeys(ALL_COUNTERS, 0))["rates"]["online"] is None


def test_as_of_of_this_year_is_now_and_of_a_past_year_its_last_instant() -> None:
    assert body()["as_of"] == NOW.isoformat()
    assert body(year=2023)["as_of"] == "2023-12-31T23:59:59.999999+07:00"
    assert body(NOW.astimezone(UTC))["to"] == "2025-06-10"
