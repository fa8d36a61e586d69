"""Turns a request body into events, or into one problem naming every invalid field (pure)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.events import (
    EVENT_TYPES,
    Event,
    contract_problems,
    event_adapter,
    event_batch_adapter,
    unit_of,
)
from shared.http_problems import FieldError, ProblemError
from shared.units import UnitTree

SINGLE_TYPES = frozenset({"application/cloudevents+json", "application/json"})
BATCH_TYPES = frozenset({"application/cloudevents-batch+json", "application/json"})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media_type(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind not in SINGLE_TYPES | BATCH_TYPES:
        raise ProblemError(
            415,
            "Unsupported media type",
            f"content type {kind or '(none)'!r} is not accepted; send application/cloudevents+json, "
            "application/cloudevents-batch+json or application/json",
        )
    return kind


def parse_events(body: bytes, content_type: str | None, tree: UnitTree, now: datetime, max_events: int) -> list[Event]:
    kind = check_media_type(content_type)
    first = body.lstrip()[:1]
    is_batch = first == b"["
    if is_batch and kind not in BATCH_TYPES:
        raise ProblemError(400, "Malformed request", "a JSON array needs application/cloudevents-batch+json")
    if not is_batch and kind not in SINGLE_TYPES:
        raise ProblemError(400, "Malformed request", "application/cloudevents-batch+json needs a JSON array")
    if first not in (b"[", b"{"):
        raise ProblemError(400, "Malformed JSON", "the body must be a JSON object or array")
    try:
        parsed = event_batch_adapter.validate_json(body) if is_batch else [event_adapter.validate_json(body)]
    except ValidationError as exc:
        errors = _schema_errors(exc, is_batch)
        items = json.loads(body) if is_batch else []
        _check_count(len(items), max_events)
        # Validate item by item so the valid items' remaining problems are reported too.
        indexed = _valid_items(items)
    else:
        _check_count(len(parsed), max_events)
        if not parsed:
            raise _invalid([FieldError(index=0, field="", message="at least one event is required")])
        errors = []
        indexed = list(enumerate(parsed))
    errors += [
        FieldError(index=index, field=field, message=message)
        for index, event in indexed
        for field, message in _event_problems(event, tree, now)
    ]
    if errors:
        raise _invalid(sorted(errors, key=lambda e: e.index))
    return [event for _, event in indexed]


def _event_problems(event: Event, tree: UnitTree, now: datetime) -> list[tuple[str, str]]:
    problems = contract_problems(event, now)
    unit = unit_of(event)
    if unit is not None and unit not in tree:
        problems.append(("data.unit", f"unknown unit {unit!r}"))
    return problems


def _schema_errors(exc: ValidationError, is_batch: bool) -> list[FieldError]:
    details = exc.errors(include_url=False, include_input=False)
    if any(err["type"] == "json_invalid" for err in details):
        message = details[0]["msg"]
        raise ProblemError(400, "Malformed JSON", f"the body is not valid JSON: {message}")
    if is_batch and any(err["loc"] == () for err in details):
        raise ProblemError(400, "Malformed request", "the body must be a JSON array of events")
    return [_field_error(err, is_batch) for err in details]


def _check_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise ProblemError(413, "Too many events", f"{count} events; at most {max_events} a request")


def _valid_items(items: list[Any]) -> list[tuple[int, Event]]:
    """The items of a batch that are valid events on their own, with their positions."""
    valid: list[tuple[int, Event]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, event_adapter.validate_json(json.dumps(item))))
        except ValidationError:
            continue  # already reported by the batch validation
    return valid


def _field_error(err: Any, is_batch: bool) -> FieldError:
    loc = list(err["loc"])
    index = loc.pop(0) if is_batch and loc and isinstance(loc[0], int) else 0
    if loc and loc[0] in EVENT_TYPES:
        loc.pop(0)  # the discriminator's tag, not a field
    if err["type"] == "union_tag_invalid":
        return FieldError(index=int(index), field="type", message=f"unknown event type {err['ctx']['tag']!r}")
    field = "type" if err["type"] == "union_tag_not_found" else ".".join(str(part) for part in loc)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown field: not part of the contract"
    elif err["type"] == "timezone_aware":
        message = "timestamp needs an offset (RFC 3339)"
    return FieldError(index=int(index), field=field, message=message)


def _invalid(errors: list[FieldError]) -> ProblemError:
    shown = "; ".join(f"[{e.index}] {e.field}: {e.message}" for e in errors[:10])
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return ProblemError(422, "Invalid events", f"{len(errors)} problem(s): {shown}{more}", errors=errors)
