"""The DVCQG synchronisation adapter (contract §3.1): a request body -> CloudEvents, or the problems (pure).

The HTTP route (`POST /v1/adapters/dvcqg`) authenticates, reads `source` and `MaDinhDanhDV` from
the query, calls `events_from_request`, answers 400/413 for `MalformedRequest`/`TooManyRecords`,
422 with the errors when there are any (nothing is published), and otherwise publishes the events
like `POST /v1/events` and answers `202 {"accepted": records, "events": len(events)}`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from services.intake.dvcqg_mapping import Mapped, OrganResolver, dossier_events, step_events
from services.intake.dvcqg_model import (
    MAX_RECORDS,
    DossierRecord,
    MalformedRequest,
    RecordError,
    TooManyRecords,
    parse_request,
)
from shared.events import contract_problems, event_adapter

__all__ = [
    "MAX_RECORDS",
    "Derived",
    "MalformedRequest",
    "OrganResolver",
    "RecordError",
    "TooManyRecords",
    "events_from_request",
]

# What the events' `source` attribute accepts (shared/events.py), checked once for the request.
_SOURCE = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f]{1,1024}$")


class Derived(NamedTuple):
    records: int  # the records of the request (the 202's `accepted`)
    events: list[dict[str, Any]]  # JSON-ready CloudEvents, each valid for shared.events; empty on errors
    errors: list[RecordError]  # by record index; the request is refused whole when there are any


def events_from_request(
    body: bytes, *, source: str, organ_code: str | None, resolve_organ: OrganResolver, now: datetime
) -> Derived:
    """The events a DVCQG request implies, with `source`; the unit of a dossier via `resolve_organ`.

    Raises MalformedRequest (400) or TooManyRecords (413). Identical events (a record sent twice in
    one request) are given once.
    """
    parsed = parse_request(body)
    errors = list(parsed.errors)
    if not _SOURCE.match(source):
        errors.append(RecordError(0, "source", "must be a URI-reference without spaces or control characters"))
        return Derived(parsed.count, [], errors)
    organ = organ_code.strip() if organ_code else None
    events: dict[str, dict[str, Any]] = {}
    for index, record in parsed.records:
        if isinstance(record, DossierRecord):
            mapped = dossier_events(record, source=source, organ_code=organ, resolve_organ=resolve_organ, now=now)
        else:
            mapped = step_events(record, source=source, now=now)
        errors += [RecordError(index, path, message) for path, message in mapped.problems]
        errors += _derived_event_problems(index, mapped, now)
        for event in mapped.events:
            events.setdefault(event["id"], event)
    if errors:
        return Derived(parsed.count, [], sorted(errors, key=lambda error: error.index))
    return Derived(parsed.count, list(events.values()), [])


def _derived_event_problems(index: int, mapped: Mapped, now: datetime) -> list[RecordError]:
    """The record's events checked against the contract's models: a safety net, for a unit code from
    the registry, say, that is not a valid code. Only field paths are named, never values."""
    problems: list[RecordError] = []
    for event in mapped.events:
        kind = event["type"].rsplit(".", 1)[-1]
        try:
            parsed = event_adapter.validate_json(json.dumps(event))
        except ValidationError as exc:
            paths = sorted({".".join(str(part) for part in err["loc"][1:]) for err in exc.errors(include_input=False)})
            problems.append(RecordError(index, "", f"the derived {kind} event would be invalid at {', '.join(paths)}"))
            continue
        paths = sorted({path for path, _ in contract_problems(parsed, now)})
        if paths:
            problems.append(RecordError(index, "", f"the derived {kind} event would be invalid at {', '.join(paths)}"))
    return problems
