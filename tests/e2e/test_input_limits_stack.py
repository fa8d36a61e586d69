"""Contract §2 end to end: whatever the intake accepts, the real aggregator stores on real
PostgreSQL; just outside the limits, the intake answers 422 naming the field.

Generated events carry adversarial text (any character of any Unicode plane outside the forbidden
ranges, quotes, backslashes, the longest identifiers), the earliest and latest instants in
several offsets, and amounts up to 10^15.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import EARLIEST_INSTANT, LATEST_INSTANT, MAX_AMOUNT_VND
from shared.units import UnitRegistry
from tests.conftest import eventually
from tests.in_process import metric_values
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

POST = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
UNITS = sorted(UnitRegistry.load(None).today().units)
CONTROL = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
_serial = itertools.count(1)

allowed_character = st.one_of(
    st.characters(exclude_categories=("Cs", "Cc")),
    # A character of every plane, noncharacters, and the characters that break naive quoting.
    st.sampled_from([chr(plane * 0x10000 + 0x2345) for plane in range(17)] + list("\ufffe\uffff\ufeff'\"\\%_;")),
)
no_space_character = allowed_character.filter(lambda c: not c.isspace())


def identifier(max_size: int, character: st.SearchStrategy[str] = allowed_character) -> st.SearchStrategy[str]:
    """Text ending in a unique serial, up to `max_size` characters, often exactly `max_size`."""

    def build(text: str) -> str:
        suffix = f"~{next(_serial):07d}"
        return text[: max_size - len(suffix)] + suffix

    return st.one_of(
        st.text(character, min_size=max_size, max_size=max_size), st.text(character, min_size=1, max_size=24)
    ).map(build)


def instant(at: datetime) -> st.SearchStrategy[str]:
    offsets = [timedelta(hours=h) for h in (-12, -3, 0, 7, 14)] + [timedelta(hours=5, minutes=45)]
    return st.sampled_from(offsets).map(lambda offset: at.astimezone(timezone(offset)).isoformat())


def recent() -> datetime:
    return datetime.now(timezone(timedelta(hours=7))).replace(microsecond=0) - timedelta(days=3)


@st.composite
def dossier_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A received and a paid event of one dossier, within every limit."""
    dossier = draw(identifier(64))
    source = draw(identifier(200, no_space_character))
    received_at = draw(st.one_of(instant(EARLIEST_INSTANT), instant(recent())))
    due_at = draw(st.one_of(st.none(), instant(LATEST_INSTANT), instant(recent() + timedelta(days=10))))
    amount = draw(st.one_of(st.just(MAX_AMOUNT_VND), st.integers(0, MAX_AMOUNT_VND)))

    def envelope(type_: str, data: dict[str, Any], at: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": draw(identifier(128)),
            "source": source,
            "type": f"vn.gov.tthc.dossier.{type_}",
            "time": at,
            "subject": dossier,
            "data": {"dossier_id": dossier, **data},
        }

    return [
        envelope(
            "received",
            {
                "unit": draw(st.sampled_from(UNITS)),
                "procedure_code": draw(identifier(64)),
                "channel": draw(st.sampled_from(["online", "direct", "postal"])),
                "received_at": received_at,
                "due_at": due_at,
                "fee_required": True,
            },
            received_at,
        ),
        envelope("paid", {"paid_at": received_at, "method": "online", "amount_vnd": amount}, received_at),
    ]


# One value just outside a limit: (field the 422 must name, change to a valid received event).
def _outside() -> st.SearchStrategy[tuple[str, Callable[[dict[str, Any]], None]]]:
    def control_in(path: str) -> st.SearchStrategy[tuple[str, Callable[[dict[str, Any]], None]]]:
        def change(char: str) -> Callable[[dict[str, Any]], None]:
            def apply(event: dict[str, Any]) -> None:
                target, name = _target(event, path)
                target[name] = target[name][:10] + char + target[name][10:]
                if path == "data.dossier_id":
                    event["subject"] = event["data"]["dossier_id"]

            return apply

        return st.sampled_from(CONTROL).map(lambda char: (path, change(char)))

    def setting(path: str, value: Any) -> tuple[str, Callable[[dict[str, Any]], None]]:
        def apply(event: dict[str, Any]) -> None:
            target, name = _target(event, path)
            target[name] = value

        return path, apply

    too_early = (EARLIEST_INSTANT - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-12))).isoformat()
    too_late = (LATEST_INSTANT + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=14))).isoformat()
    return st.one_of(
        *(control_in(path) for path in ("id", "source", "subject", "data.dossier_id", "data.procedure_code")),
        st.just(setting("data.procedure_code", "p" * 65)),
        st.just(setting("id", "i" * 129)),
        st.just(setting("time", too_early)),
        st.just(setting("data.received_at", too_early)),
        st.just(setting("data.due_at", too_late)),
        st.just(setting("data.due_at", "9999-12-31T23:59:59-12:00")),
        st.just(setting("data.received_at", "0001-01-01T00:00:00+07:00")),
    )


def _target(event: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, name = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    return target, name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    services = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("limits")))
    try:
        services.start("aggregator", "aggregator")
        services.start("intake", "intake")
        yield services
    finally:
        services.stop_all()


def aggregator_figures(stack: ServiceSet) -> dict[str, float]:
    text = httpx.get(f"{stack.url('aggregator')}/metrics", timeout=5).text
    return {
        "applied": sum(metric_values(text, "tthc_aggregator_events_applied_total")),
        "dead_letters": sum(metric_values(text, "tthc_aggregator_dead_letters_total")),
        # Batches refused for an event's data. A batch retried for a reason about the world (a
        # deadlock or a rebalance while the machine is loaded) is not an error of its events: it
        # commits later, and the applied count below shows each event counted exactly once.
        "split": sum(metric_values(text, "tthc_aggregator_batches_total", lambda labels: labels["outcome"] == "split")),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(dossier_events(), min_size=1, max_size=8))
def test_every_event_the_intake_accepts_is_applied_without_error(
    stack: ServiceSet, batch: list[list[dict[str, Any]]]
) -> None:
    events = [event for dossier in batch for event in dossier]
    before = aggregator_figures(stack)
    response = httpx.post(f"{stack.url('intake')}/v1/events", json=events, headers=POST, timeout=30)
    assert response.status_code == 202, response.text
    wanted = before["applied"] + len(events)

    async def all_applied() -> dict[str, float] | None:
        now = await asyncio.to_thread(aggregator_figures, stack)
        return now if now["applied"] >= wanted else None

    now = asyncio.run(eventually(all_applied, timeout=30, what=f"{len(events)} events applied"))
    assert now == {**before, "applied": wanted}  # no dead letter, no batch refused for its data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dossier=dossier_events(), outside=_outside())
def test_just_outside_the_limits_the_intake_answers_422_naming_the_field(
    stack: ServiceSet, dossier: list[dict[str, Any]], outside: tuple[str, Callable[[dict[str, Any]], None]]
) -> None:
    path, change = outside
    event = dossier[0]
    change(event)
    response = httpx.post(f"{stack.url('intake')}/v1/events", json=[event], headers=POST, timeout=30)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert path in {error["field"] for error in problem["errors"]}, problem
