"""Strong ETags of snapshot bodies and the If-None-Match comparison (pure, RFC 9110)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

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
