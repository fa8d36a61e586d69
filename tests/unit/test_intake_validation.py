"""Request bodies -> events or one problem naming every invalid field (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.infra.http_problems import ProblemError
from services.intake.validation import parse_events
from shared.units import UnitRegistry
from tests.factories import received, resolved

TREE = UnitRegistry.load(None)
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
BATCH = "application/cloudevents-batch+json"


def parse(body: Any, content_type: str = BATCH, max_events: int = 1000) -> list[Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_events(raw, content_type, TREE, NOW, max_events)


def problem_of(body: Any, content_type: str = BATCH, max_events: int = 1000) -> dict[str, Any]:
    with pytest.raises(ProblemError) as caught:
        parse(body, content_type, max_events)
    return caught.value.problem.model_dump(exclude_none=True)


def test_batch_of_valid_events_parses_in_order() -> None:
    events = parse([received("d1"), resolved("d1")])
    assert [e.type for e in events] == ["vn.gov.tthc.dossier.received", "vn.gov.tthc.dossier.resolved"]


def test_single_event_with_cloudevents_type() -> None:
    (event,) = parse(received("d1"), "application/cloudevents+json; charset=utf-8")
    assert event.data.dossier_id == "d1"


def test_every_problem_of_every_event_is_reported_at_once() -> None:
    bad_schema = {**received("d1"), "data": {**received("d1")["data"], "channel": "fax", "extra": 1}}
    bad_rules = {**received("d2"), "subject": "x", "time": "2999-01-01T00:00:00Z"}
    problem = problem_of([received("ok"), bad_schema, bad_rules])
    assert problem["status"] == 422
    found = {(e["index"], e["field"]) for e in problem["errors"]}
    assert found == {(1, "data.channel"), (1, "data.extra"), (2, "subject"), (2, "time")}


def test_defaults_of_optional_flags() -> None:
    (event,) = parse([received("d1")])
    assert event.data.digitization_required is True


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[{", BATCH, 400),
        (b"42", "application/json", 400),
        ([received("d1")], "application/cloudevents+json", 400),
        (received("d1"), "application/xml", 415),
        ([], BATCH, 422),
    ],
)
def test_request_shape_errors(body: Any, content_type: str, status: int) -> None:
    assert problem_of(body, content_type)["status"] == status


def test_more_events_than_allowed_is_too_large() -> None:
    assert problem_of([received(f"d{i}") for i in range(3)], max_events=2)["status"] == 413


def test_booleans_are_strict() -> None:
    event = {**received("d1"), "data": {**received("d1")["data"], "fee_required": "yes"}}
    assert problem_of([event])["errors"][0]["field"] == "data.fee_required"


def test_time_five_minutes_ahead_is_tolerated_and_six_is_not() -> None:
    ahead = "2026-11-27T10:04:59+07:00"  # NOW + 4m59s
    parse([{**received("d1"), "time": ahead}])
    problem = problem_of([{**received("d1"), "time": "2026-11-27T10:06:00+07:00"}])
    assert problem["errors"][0]["field"] == "time"


def test_deadline_in_the_future_is_allowed() -> None:
    parse([{**received("d1"), "data": {**received("d1")["data"], "due_at": "2999-01-01T00:00:00+07:00"}}])


def test_a_unit_code_is_valid_only_on_the_days_of_its_unit() -> None:
    """Contract §1.1: the event's unit is the one with its code valid on the local day of its fact date."""
    from shared.units import HUNG_YEN_UNITS_RESOURCE

    registry = UnitRegistry.load_shipped(HUNG_YEN_UNITS_RESOURCE)

    def problems(unit: str, at: str) -> list[dict[str, Any]]:
        body = json.dumps([received("d1", unit=unit, at=at, due_at=None)]).encode()
        try:
            parse_events(body, BATCH, registry, NOW, 10)
        except ProblemError as exc:
            return [e.model_dump() for e in exc.problem.errors or []]
        return []

    assert problems("12106", "2025-06-30T23:59:00+07:00") == []  # Phường Phan Đình Phùng, last day
    (error,) = problems("12106", "2025-07-01T00:00:00+07:00")  # merged into Phường Mỹ Hào that day
    assert error["field"] == "data.unit" and "2025-07-01" in error["message"]
    assert problems("12103", "2024-03-01T08:00:00+07:00") == []  # Bần Yên Nhân then, Mỹ Hào since
    assert problems("12103", "2026-03-01T08:00:00+07:00") == []
    # 17:30Z on 30 June is 00:30 on 1 July in Vietnam: the old unit no longer exists.
    assert problems("12106", "2025-06-30T17:30:00Z")[0]["field"] == "data.unit"
    assert "unknown unit" in problems("99999", "2024-03-01T08:00:00+07:00")[0]["message"]
