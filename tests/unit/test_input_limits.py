"""Input limits of contract §2: control characters, lone surrogates, timestamps, amounts (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.intake.validation import parse_events
from shared.http_problems import ProblemError
from shared.units import UnitRegistry
from tests.factories import envelope, received

TREE = UnitRegistry.load(None)
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
BATCH = "application/cloudevents-batch+json"


def _problem(raw: bytes) -> dict[str, Any]:
    with pytest.raises(ProblemError) as caught:
        parse_events(raw, BATCH, TREE, NOW, 1000)
    return caught.value.problem.model_dump(exclude_none=True)


def _fields(raw: bytes) -> set[tuple[int, str]]:
    problem = _problem(raw)
    assert problem["status"] == 422, problem
    return {(e["index"], e["field"]) for e in problem["errors"]}


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    target = copy
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return copy


@pytest.mark.parametrize("path", ["id", "source", "subject", "data.dossier_id", "data.procedure_code"])
@pytest.mark.parametrize("character", ["\u0000", "\u0001", "\u001f", "\u007f", "\u0085", "\u009f"])
def test_control_characters_are_refused_by_field(path: str, character: str) -> None:
    event = _with(received("d1"), path, f"x{character}y")
    if path in ("subject", "data.dossier_id"):  # keep subject and dossier_id equal
        event = _with(_with(event, "subject", f"x{character}y"), "data.dossier_id", f"x{character}y")
    found = _fields(json.dumps([received("ok"), event]).encode())
    assert (1, path) in found
    assert all(index == 1 for index, _ in found)


def test_message_names_the_limit() -> None:
    problem = _problem(json.dumps([_with(received("d1"), "id", "a\u0000")]).encode())
    assert "control characters" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        # a lone surrogate, escaped: the strict JSON parser refuses it
        b'"x\\ud800y"',
        # a raw (unescaped) control character inside a string
        b'"x\x01y"',
    ],
)
def test_lone_surrogates_and_raw_control_characters_are_422_naming_the_field(raw: bytes) -> None:
    text = json.dumps([received("ok"), received("d2")]).encode()
    body = text.replace(b'"evt-', raw[:-1] + b"-evt-", 1)  # the first event's id
    assert _fields(body) == {(0, "id")}


def test_forbidden_text_in_an_extension_attribute_is_refused() -> None:
    event = {**received("d1"), "traceparent": "00-\u0000"}
    assert _fields(json.dumps([event]).encode()) == {(0, "traceparent")}


def test_other_malformed_json_stays_400() -> None:
    assert _problem(b'[{"id": NaN}')["status"] == 400
    assert _problem(b"[{")["status"] == 400


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("time", "1969-12-31T23:59:59+07:00"),
        ("time", "0001-01-01T00:00:00+07:00"),
        ("time", "1969-12-31T16:59:59Z"),
        ("data.received_at", "0001-01-01T00:00:00+07:00"),
        ("data.due_at", "9999-12-31T23:59:59-12:00"),
        ("data.due_at", "3000-01-01T00:00:00+07:00"),
        ("data.due_at", "2999-12-31T23:59:59.000001+07:00"),
    ],
)
def test_timestamps_outside_the_range_are_refused(path: str, value: str) -> None:
    assert (0, path) in _fields(json.dumps([_with(received("d1"), path, value)]).encode())


@pytest.mark.parametrize("due_at", ["2999-12-31T23:59:59+07:00", "2999-12-31T16:59:59Z", "2999-12-31T04:59:59-12:00"])
def test_the_latest_instant_is_accepted_whatever_its_offset(due_at: str) -> None:
    (event,) = parse_events(json.dumps([_with(received("d1"), "data.due_at", due_at)]).encode(), BATCH, TREE, NOW, 9)
    assert event.data.due_at is not None


def test_the_earliest_instant_is_accepted() -> None:
    at = "1970-01-01T00:00:00+07:00"
    event = received("d1", at=at, due_at=None)
    (parsed,) = parse_events(json.dumps([event]).encode(), BATCH, TREE, NOW, 9)
    assert parsed.time == datetime(1969, 12, 31, 17, tzinfo=UTC)


def _paid(amount: int) -> dict[str, Any]:
    data = {"dossier_id": "d1", "paid_at": "2023-03-02T08:00:00+07:00", "method": "online", "amount_vnd": amount}
    return envelope("vn.gov.tthc.dossier.paid", "d1", "2023-03-02T08:00:00+07:00", data)


def test_amount_up_to_ten_to_the_fifteenth() -> None:
    parse_events(json.dumps([_paid(10**15)]).encode(), BATCH, TREE, NOW, 9)
    assert _fields(json.dumps([_paid(10**15 + 1)]).encode()) == {(0, "data.amount_vnd")}


def test_any_unicode_plane_outside_the_forbidden_ranges_is_accepted() -> None:
    text = "Mỹ Hào \u00a0\u2028\uffff\U0001f600\U0010ffff"
    (event,) = parse_events(json.dumps([_with(received("d1"), "id", text)]).encode(), BATCH, TREE, NOW, 9)
    assert event.id == text
