"""The intake's OpenAPI (request bodies from the event model, examples that cannot count as data,
/metrics as text), its request metrics and the security headers of its answers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from services.infra.security_headers import script_hash
from shared.events import EVENT_TYPES, event_adapter
from shared.units import UnitTree
from tests.conftest import KAFKA, unique
from tests.factories import received
from tests.in_process import intake_client

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-intake-token"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with intake_client(
        kafka_bootstrap_servers=KAFKA,
        events_topic=unique("events"),
        dead_letter_topic=unique("dlq"),
        events_partitions=3,
    ) as c:
        yield c


async def _openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_request_bodies_are_the_event_model(client: httpx.AsyncClient) -> None:
    spec = await _openapi(client)
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]
    content = body["content"]
    assert content["application/cloudevents+json"]["schema"] == {"$ref": "#/components/schemas/Event"}
    assert content["application/cloudevents-batch+json"]["schema"] == {"$ref": "#/components/schemas/EventBatch"}
    schemas = spec["components"]["schemas"]
    expected = event_adapter.json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["Event"]["oneOf"] == expected["oneOf"]
    assert set(schemas["Event"]["discriminator"]["mapping"]) == EVENT_TYPES
    for name, definition in expected["$defs"].items():
        assert schemas[name] == definition, name
    assert schemas["EventBatch"]["maxItems"] == 1000
    assert "415" in spec["paths"]["/v1/events"]["post"]["responses"]


async def test_examples_cannot_count_as_real_data(client: httpx.AsyncClient) -> None:
    spec = await _openapi(client)
    examples = [media["example"] for media in spec["paths"]["/v1/events"]["post"]["requestBody"]["content"].values()]
    assert examples
    tree = UnitTree.load(None)
    for example in examples:
        for event in example if isinstance(example, list) else [example]:
            event_adapter.validate_python(event, strict=False)  # a well-formed event of the model...
            assert event["data"]["unit"] not in tree  # ...for a unit no registry has
            assert event["time"].startswith("2000-")
    single = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/cloudevents+json"]
    response = await client.post(
        "/v1/events",
        content=json.dumps(single["example"]),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 422
    assert {"index": 0, "field": "data.unit"} in [
        {"index": e["index"], "field": e["field"]} for e in response.json()["errors"]
    ]


async def test_metrics_are_text_exposition_with_requests_by_route(client: httpx.AsyncClient) -> None:
    spec = await _openapi(client)
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    headers = {**AUTH, "Content-Type": "application/cloudevents+json"}
    assert (
        await client.post("/v1/events", content=json.dumps(received(unique("m"))), headers=headers)
    ).status_code == 202
    assert (await client.get("/no/such/path")).status_code == 404
    response = await client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["tthc_http_requests"].samples
        if s.name == "tthc_http_requests_total"
    }
    assert requests[("/v1/events", "POST", "202")] >= 1
    assert requests[("(unmatched)", "GET", "404")] >= 1
    assert not [route for route, _, _ in requests if route.startswith("/no/")]
    for name in (
        "tthc_http_request_duration_seconds",
        "tthc_intake_events_accepted",
        "tthc_intake_publish_seconds",
        "tthc_intake_dvcqg_records",
    ):
        assert name in families, name


async def test_the_docs_page_has_security_headers_and_allows_only_its_own_script(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in directives["script-src"]
    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert inline, "Swagger UI starts from an inline script"
    assert all(script_hash(script) in directives["script-src"] for script in inline)
    assert (await client.get("/redoc")).status_code == 404  # one documentation page only


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/metrics", "/no/such/path"])
async def test_every_answer_has_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert not response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
