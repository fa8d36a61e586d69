"""Contract §3 error classes: right status, problem+json naming the field, nothing published."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import KAFKA, unique
from tests.factories import received
from tests.in_process import intake_client, read_topic

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-intake-token"}
SINGLE = {**AUTH, "Content-Type": "application/cloudevents+json"}
BATCH = {**AUTH, "Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture
async def topic() -> str:
    return unique("events")


@pytest.fixture
async def client(topic: str) -> AsyncIterator[httpx.AsyncClient]:
    async with intake_client(
        kafka_bootstrap_servers=KAFKA, events_topic=topic, dead_letter_topic=unique("dlq"), events_partitions=3
    ) as c:
        yield c


def with_data(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **changes}}


INVALID_CASES = [
    ("invalid value", with_data(received("d-1"), channel="fax"), "data.channel"),
    ("unknown data field", with_data(received("d-2"), citizen_name="Nguyễn Văn A"), "data.citizen_name"),
    ("unknown type", {**received("d-3"), "type": "vn.gov.tthc.dossier.teleported"}, "type"),
    ("timestamp without offset", with_data(received("d-4"), received_at="2023-03-01T08:00:00"), "data.received_at"),
    ("future time", {**received("d-5"), "time": "2999-01-01T00:00:00+07:00"}, "time"),
    ("future fact", with_data(received("d-6"), received_at="2999-01-01T00:00:00+07:00"), "data.received_at"),
    ("unknown unit", with_data(received("d-7"), unit="no-such-unit"), "data.unit"),
    ("subject differs", {**received("d-8"), "subject": "other"}, "subject"),
    ("due before received", with_data(received("d-9"), due_at="2023-02-01T08:00:00+07:00"), "data.due_at"),
]


@pytest.mark.parametrize(("case", "event", "field"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
async def test_invalid_event_is_refused_naming_the_field(
    client: httpx.AsyncClient, topic: str, case: str, event: dict[str, Any], field: str
) -> None:
    valid = received(unique("ok"))
    response = await client.post("/v1/events", content=json.dumps([valid, event]), headers=BATCH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == 422
    assert {"index": 1, "field": field} in [{"index": e["index"], "field": e["field"]} for e in problem["errors"]]
    assert all(e["index"] == 1 for e in problem["errors"]), "the valid event has no problem"
    assert await read_topic(KAFKA, topic) == [], "nothing of a refused request is published"


@pytest.mark.parametrize(
    ("case", "body", "headers", "status"),
    [
        ("malformed JSON", b'{"specversion": "1.0",', SINGLE, 400),
        ("too large", b"[" + b" " * (1024 * 1024) + b"]", BATCH, 413),
        ("too many events", json.dumps([received(f"m-{i}") for i in range(1001)]).encode(), BATCH, 413),
        ("wrong content type", json.dumps(received("c-1")).encode(), {**AUTH, "Content-Type": "text/plain"}, 415),
        ("missing token", json.dumps(received("c-2")).encode(), {"Content-Type": "application/json"}, 401),
        (
            "unknown token",
            json.dumps(received("c-3")).encode(),
            {"Authorization": "Bearer wrong", "Content-Type": "application/json"},
            401,
        ),
    ],
)
async def test_request_level_errors(
    client: httpx.AsyncClient, topic: str, case: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert await read_topic(KAFKA, topic) == []


async def test_valid_batch_is_published_keyed_by_subject(client: httpx.AsyncClient, topic: str) -> None:
    events = [received("k-1"), received("k-2"), {**received("k-3"), "ignored-extension": "x"}]
    response = await client.post("/v1/events", content=json.dumps(events), headers=BATCH)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    published = [json.loads(v) for v in await read_topic(KAFKA, topic)]
    assert sorted(e["id"] for e in published) == sorted(e["id"] for e in events)
    assert all("ignored-extension" not in e for e in published)


async def test_single_event_is_accepted(client: httpx.AsyncClient, topic: str) -> None:
    event = received("s-1")
    response = await client.post("/v1/events", content=json.dumps(event), headers=SINGLE)
    assert response.status_code == 202, response.text
    assert [json.loads(v)["id"] for v in await read_topic(KAFKA, topic)] == [event["id"]]
