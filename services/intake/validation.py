"""Turns a request body into events, or into one problem naming every invalid field (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.infra.http_problems import FieldError, ProblemError
from shared.events import (
    CONTROL_CHARACTERS,
    EVENT_TYPES,
    FORBIDDEN_TEXT_MESSAGE,
    Event,
    contract_problems,
    event_adapter,
    event_batch_adapter,
    has_forbidden_text,
    unit_fact,
)
from shared.timezone import local_day
from shared.units import UnitRegistry

SINGLE_TYPES = frozenset({"application/cloudevents+json", "application/json"})
BATCH_TYPES = frozenset({"application/cloudevents-batch+json", "application/json"})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# The HTTP binding's binary content mode carries the attributes in ce-* headers and only `data` in the
# body; ce-specversion is the one header every binary-mode request has.
BINARY_MODE_HEADER = "ce-specversion"


def check_content_mode(headers: Mapping[str, str]) -> None:
    """Refuse CloudEvents binary content mode: the intake takes structured mode (and batches) only.

    One content mode keeps one decoding path, the models of shared.events straight from the body.
    """
    if BINARY_MODE_HEADER in {name.lower() for name in headers}:
        raise ProblemError(
            415,
            "Structured mode only",
            "CloudEvents binary content mode (ce-* headers) is not supported: send each event in structured "
            "mode, the whole event as the body with Content-Type application/cloudevents+json, or a JSON array "
            "of events as application/cloudevents-batch+json",
        )


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


def parse_events(
    body: bytes, content_type: str | None, registry: UnitRegistry, now: datetime, max_events: int
) -> list[Event]:
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
        details = exc.errors(include_url=False, include_input=False)
        if any(err["type"] == "json_invalid" for err in details):
            # Lone surrogates and raw control characters make the body invalid for the strict
            # parser; they are input limits of the contract, so name the fields that hold them.
            items = _lenient_items(body, is_batch, details[0]["msg"])
            _check_count(len(items), max_events)
            indexed, errors = _validate_items(items)
        else:
            errors = _schema_errors(details, is_batch)
            items = json.loads(body) if is_batch else []
            _check_count(len(items), max_events)
            # Validate item by item so the valid items' remaining problems are reported too.
            indexed, _ = _validate_items(items)
    else:
        _check_count(len(parsed), max_events)
        if not parsed:
            raise _invalid([FieldError(index=0, field="", message="at least one event is required")])
        errors = []
        indexed = list(enumerate(parsed))
    errors += [
        FieldError(index=index, field=field, message=message)
        for index, event in indexed
        for field, message in _event_problems(event, registry, now)
    ]
    if errors:
        raise _invalid(sorted(errors, key=lambda e: e.index))
    return [event for _, event in indexed]


def _event_problems(event: Event, registry: UnitRegistry, now: datetime) -> list[tuple[str, str]]:
    problems = contract_problems(event, now)
    fact = unit_fact(event)
    if fact is not None:
        unit, at = fact
        day = local_day(at)
        if not registry.entries_of(unit):
            problems.append(("data.unit", f"unknown unit {unit!r}"))
        elif registry.resolve(unit, day) is None:
            message = f"unit {unit!r} does not exist on {day.isoformat()} (the local day of its fact date)"
            problems.append(("data.unit", message))
    return problems


def _lenient_items(body: bytes, is_batch: bool, strict_message: str) -> list[Any]:
    """The body's items parsed by a parser that lets lone surrogates and raw control characters through.

    Only a body that holds such a string is answered 422; any other malformed body stays a 400.
    """
    try:
        loaded = json.loads(body, strict=False)
    except (ValueError, RecursionError):
        loaded = None
    if loaded is None or not has_forbidden_text(loaded):
        raise ProblemError(400, "Malformed JSON", f"the body is not valid JSON: {strict_message}")
    return loaded if is_batch and isinstance(loaded, list) else [loaded]


def _schema_errors(details: list[Any], is_batch: bool) -> list[FieldError]:
    if is_batch and any(err["loc"] == () for err in details):
        raise ProblemError(400, "Malformed request", "the body must be a JSON array of events")
    return [_field_error(err, is_batch) for err in details]


def _check_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise ProblemError(413, "Too many events", f"{count} events; at most {max_events} a request")


def _validate_items(items: list[Any]) -> tuple[list[tuple[int, Event]], list[FieldError]]:
    """The items that are valid events on their own (with their positions), and the others' problems."""
    valid: list[tuple[int, Event]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        forbidden = _forbidden_text_paths(item)
        if forbidden:
            errors += [FieldError(index=index, field=path, message=FORBIDDEN_TEXT_MESSAGE) for path in forbidden]
            continue
        try:
            valid.append((index, event_adapter.validate_json(json.dumps(item))))
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_input=False)
            errors += [_field_error(err, False).model_copy(update={"index": index}) for err in details]
    return valid, errors


def _forbidden_text_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the strings (values or keys) that hold forbidden characters."""
    if isinstance(value, str):
        return [path] if has_forbidden_text(value) else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = key.encode("unicode_escape").decode() if has_forbidden_text(key) else key
            child = f"{path}.{name}" if path else name
            found += [child] if name != key else _forbidden_text_paths(item, child)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _forbidden_text_paths(item, f"{path}.{position}" if path else str(position))
    return found


def _field_error(err: Any, is_batch: bool) -> FieldError:
    loc = list(err["loc"])
    index = loc.pop(0) if is_batch and loc and isinstance(loc[0], int) else 0
    if loc and loc[0] in EVENT_TYPES:
        loc.pop(0)  # the discriminator's tag, not a field
    if err["type"] == "union_tag_invalid":
        return FieldError(index=int(index), field="type", message=f"unknown event type {err['ctx']['tag']!r}")
    field = "type" if err["type"] == "union_tag_not_found" else ".".join(str(part) for part in loc)
    message = err["msg"]
    if err["type"] == "string_pattern_mismatch" and CONTROL_CHARACTERS in str(err.get("ctx", {}).get("pattern")):
        message = FORBIDDEN_TEXT_MESSAGE
        if field == "source":
            message = "must be a URI-reference without spaces or control characters"
    elif err["type"] == "extra_forbidden":
        message = "unknown field: not part of the contract"
    elif err["type"] == "timezone_aware":
        message = "timestamp needs an offset (RFC 3339)"
    return FieldError(index=int(index), field=field, message=message)


def _invalid(errors: list[FieldError]) -> ProblemError:
    shown = "; ".join(f"[{e.index}] {e.field}: {e.message}" for e in errors[:10])
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return ProblemError(422, "Invalid events", f"{len(errors)} problem(s): {shown}{more}", errors=errors)
