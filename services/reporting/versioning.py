"""Versions of a snapshot: strong ETags, If-None-Match, how long figures hold, SSE framing (pure).

A snapshot's figures change only when (a) the aggregator commits a batch (the change marker
moves) or (b) time alone crosses an instant at which a level figure changes (a dossier turning
overdue, a procedure published for a future instant) or the local day, and so the window's `to`,
moves. A cached snapshot is therefore exact while the marker is unchanged and `now` is before
`valid_until`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.reporting.indicators import Window, next_local_midnight

# The parts of a snapshot body that its ETag covers: the period and every figure. `as_of` and
# `freshness` are not figures: they say when the figures were computed, not what they are.
VERSIONED_KEYS = ("unit", "scope", "from", "to", "dossiers", "documents", "procedures", "rates")


def etag_of(body: Mapping[str, Any]) -> str:
    """A strong ETag (quoted, no W/) over the period and figures of a snapshot body."""
    figures = {key: body[key] for key in VERSIONED_KEYS}
    digest = hashlib.sha256(json.dumps(figures, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'


def opaque(etag: str) -> str:
    """The ETag without its quotes (and without W/): the SSE `id` of that version."""
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match uses the weak comparison; `*` matches any current version."""
    if header is None:
        return False
    wanted = opaque(etag)
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or (candidate and opaque(candidate) == wanted):
            return True
    return False


def valid_until(window: Window, now: datetime, next_level_change: datetime | None) -> datetime | None:
    """Until when the figures computed at `now` for `window` cannot change by time alone (None: ever).

    A window whose `as_of` is fixed in the past (a past year) never changes by time. Otherwise
    `as_of` is `now`: the figures hold until the next level change after it, or local midnight,
    when `to` (today) moves, whichever comes first.
    """
    if window.as_of < now:
        return None
    midnight = next_local_midnight(now)
    return midnight if next_level_change is None else min(midnight, next_level_change)


@dataclass(frozen=True)
class CachedSnapshot:
    """One version of a unit's snapshot, with its encodings, and how long it stays exact."""

    key: tuple[str, int]  # (unit, year)
    etag: str
    body: dict[str, Any]
    json: bytes
    sse: bytes
    marker: object
    valid_until: datetime | None
    read_started: float  # monotonic clock when the database read began

    def holds_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


def encode_snapshot(
    key: tuple[str, int],
    body: dict[str, Any],
    marker: object,
    valid: datetime | None,
    read_started: float,
    previous: CachedSnapshot | None = None,
) -> CachedSnapshot:
    """A cache entry for `body`; an unchanged version keeps the previous body, so one ETag = one body."""
    etag = etag_of(body)
    if previous is not None and previous.etag == etag:
        return CachedSnapshot(key, etag, previous.body, previous.json, previous.sse, marker, valid, read_started)
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return CachedSnapshot(key, etag, body, raw, sse_message("snapshot", raw, opaque(etag)), marker, valid, read_started)


def sse_message(event: str, data: bytes, event_id: str) -> bytes:
    """One Server-Sent Events message; `data` must be a single line (compact JSON is)."""
    return b"id: " + event_id.encode() + b"\nevent: " + event.encode() + b"\ndata: " + data + b"\n\n"


SSE_HEARTBEAT = b": keep-alive\n\n"


def sse_retry(milliseconds: int) -> bytes:
    """Tells EventSource how long to wait before reconnecting."""
    return f"retry: {milliseconds}\n\n".encode()
