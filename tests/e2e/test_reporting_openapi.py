"""The OpenAPI description of the running reporting service: complete (every endpoint, its
parameters, problem+json errors, examples), accurate (real answers validate against it), and
readable offline at /docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.reporting.schemas import Breakdown, Indicators, Monthly, UnitOut
from tests.conftest import eventually
from tests.reporting_stack import READ, in_2023, post, received, running_services
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

ENDPOINTS = {
    "/v1/units": {"tree"},
    "/v1/indicators": {"unit", "from", "to", "scope", "tree"},
    "/v1/indicators/breakdown": {"unit", "from", "to", "tree"},
    "/v1/indicators/monthly": {"unit", "year", "scope", "tree"},
    "/v1/index766": {"unit", "from", "to", "tree"},
    "/v1/snapshot": {"unit", "year", "if-none-match", "tree"},
    "/v1/stream": {"unit", "year", "last-event-id", "access_token", "tree"},
    "/v1/reports/annual": {"unit", "year", "to", "format", "scope", "tree"},
    "/dashboard": {"unit", "year", "tree"},
    "/healthz": set(),
    "/readyz": set(),
    "/metrics": set(),
}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    with running_services(Path(tmp_path_factory.mktemp("openapi"))) as stack:
        yield stack


@pytest.fixture
async def client(services: ServiceSet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.url("reporting"), timeout=10) as http:
        yield http


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def parameters(operation: dict[str, Any], spec: dict[str, Any]) -> set[str]:
    names = {p["name"].lower() for p in operation.get("parameters", [])}
    for requirement in operation.get("security", []):
        for scheme in requirement:
            definition = spec["components"]["securitySchemes"][scheme]
            if definition.get("in") == "query":
                names.add(definition["name"].lower())
    return names


def test_every_endpoint_is_described_with_its_parameters(spec: dict[str, Any]) -> None:
    assert set(ENDPOINTS) <= set(spec["paths"])
    for path, expected in ENDPOINTS.items():
        operation = spec["paths"][path]["get"]
        assert operation.get("summary") and operation.get("description"), path
        assert parameters(operation, spec) == {name.lower() for name in expected}, path
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), f"{path}: {parameter['name']}"


def test_errors_are_problem_json_with_examples(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])
    for path in ENDPOINTS:
        if not path.startswith("/v1/"):
            continue
        responses = spec["paths"][path]["get"]["responses"]
        assert "401" in responses, path
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                media = response["content"]["application/problem+json"]
                assert media["schema"]["$ref"].endswith("/Problem"), f"{path} {status}"
                assert media["example"]["status"] == int(status), f"{path} {status}"
        if path != "/v1/units":
            assert {"404", "422"} <= set(responses), path
    assert "503" in spec["paths"]["/v1/stream"]["get"]["responses"]
    assert "304" in spec["paths"]["/v1/snapshot"]["get"]["responses"]


def test_answers_have_examples_and_security(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    for path in ("/v1/indicators", "/v1/indicators/breakdown", "/v1/indicators/monthly", "/v1/snapshot"):
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["example"] and ok["schema"], path
        assert spec["paths"][path]["get"]["security"], path
    annual = spec["paths"]["/v1/reports/annual"]["get"]
    assert set(annual["responses"]["200"]["content"]) == {
        "text/markdown",
        "text/html",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
    formats = next(p for p in annual["parameters"] if p["name"] == "format")["schema"]
    assert formats["enum"] == ["md", "html", "docx"]
    stream = spec["paths"]["/v1/stream"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in stream


async def test_real_answers_match_the_description(client: httpx.AsyncClient, services: ServiceSet) -> None:
    async with httpx.AsyncClient(timeout=10) as intake:
        await post(intake, services.url("intake"), [received("my-hao.minh-duc", in_2023())])

    async def applied() -> bool:
        params = {"unit": "my-hao", "from": "2023-01-01"}
        body = (await client.get("/v1/indicators", params=params, headers=READ)).json()
        return body["dossiers"]["received"] == 1

    await eventually(applied, timeout=15, what="the event applied")
    window = {"unit": "my-hao", "from": "2023-01-01", "to": "2023-12-31"}
    Indicators.model_validate((await client.get("/v1/indicators", params=window, headers=READ)).json())
    Indicators.model_validate((await client.get("/v1/snapshot", params={"unit": "my-hao"}, headers=READ)).json())
    Breakdown.model_validate((await client.get("/v1/indicators/breakdown", params=window, headers=READ)).json())
    monthly = (await client.get("/v1/indicators/monthly", params={"unit": "my-hao", "year": 2023}, headers=READ)).json()
    Monthly.model_validate(monthly)
    assert len(monthly["months"]) == 12 and monthly["months"][2]["dossiers"]["received"] == 1
    for unit in (await client.get("/v1/units", headers=READ)).json():
        UnitOut.model_validate(unit)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/indicators", {"unit": "nowhere"}, 404),
        ("/v1/indicators", {"unit": "my-hao", "from": "2023-02-30"}, 422),
        ("/v1/indicators", {"unit": "my-hao", "from": "2023-03-01", "to": "2023-02-01"}, 422),
        ("/v1/indicators/monthly", {"unit": "my-hao", "year": "twenty"}, 422),
        ("/v1/reports/annual", {"unit": "my-hao", "year": "2023", "to": "2024-01-05"}, 422),
        ("/v1/reports/annual", {"unit": "my-hao", "format": "pdf"}, 422),
        ("/v1/snapshot", {"unit": "nowhere"}, 404),
    ],
)
async def test_errors_are_problem_details(
    client: httpx.AsyncClient, path: str, params: dict[str, str], status: int
) -> None:
    response = await client.get(path, params=params, headers=READ)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]


async def test_reads_need_a_token(client: httpx.AsyncClient) -> None:
    for path in ("/v1/units", "/v1/snapshot?unit=my-hao", "/v1/reports/annual?unit=my-hao"):
        response = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_docs_are_served_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert (await client.get(source)).status_code == 200, source
