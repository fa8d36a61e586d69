"""Bounded schemathesis runs against the running intake and reporting services: a few hundred
generated requests each with a fixed seed, from the OpenAPI the service serves. No answer is a 5xx,
and every answer matches the documented status codes, content types, headers and schemas.

Intake: most generated events are refused with 422 (schemathesis warns about it): the schema cannot
say which unit codes the registry has, nor the cross-field rules (subject = the data's identifier,
no fact in the future); those answers are documented problems, which is what is checked.

Reporting: GET /v1/stream is left out. A successful answer is an endless text/event-stream, so
schemathesis would wait on each such case until its request timeout and then fail it as a timeout;
its errors (401, 404, 422, 503) are the same dependencies and parameters as /v1/snapshot's, which the
run covers. The stream is tested as a stream in tests/e2e/test_live_stream.py. Most generated
unit codes are unknown (404): the schema cannot list the tree's codes.

Days and years at the end of the date type used to answer 500 (a window ending 9999-12-31 has no
next day; year 9999's December has no 1 January after it). Random dates rarely hit those few, and
this seed and budget do not, so `test_days_outside_the_contract_range_are_422_naming_the_parameter`
asks for them: they are 422 naming the parameter, as the contract says for any day outside
1970-01-01..2999-12-31."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

SEED = 20000103
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    services = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("schemathesis")))
    try:
        services.start("intake", "intake")
        yield services
    finally:
        services.stop_all()


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    services = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("schemathesis-reporting")))
    try:
        services.start("aggregator", "aggregator")  # creates the schema reporting reads
        services.start("reporting", "reporting")
        yield services
    finally:
        services.stop_all()


def run_schemathesis(
    base_url: str, token: str, max_examples: int, report: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--phases",
        # The coverage phase alone makes thousands of cases; examples and fuzzing stay bounded.
        "examples,fuzzing",
        "--header",
        f"Authorization: Bearer {token}",
        "--generation-database",
        "none",
        "--request-timeout",
        "15",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        *extra,
    ]
    # Its cache folder goes beside the report, not into the checkout.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=report.parent)


def test_intake_answers_generated_requests_as_documented(intake: ServiceSet, tmp_path: Path) -> None:
    report = tmp_path / "intake.xml"
    done = run_schemathesis(intake.url("intake"), "dev-intake-token", 250, report)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + intake.log("intake")[-2000:]
    assert report.exists()
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases is not None, done.stdout[-3000:]
    assert 200 <= int(cases.group(1)) == int(cases.group(2)) <= 1000


def test_reporting_answers_generated_requests_as_documented(reporting: ServiceSet, tmp_path: Path) -> None:
    report = tmp_path / "reporting.xml"
    # Eleven operations: a few dozen cases each keeps the run to a few hundred.
    done = run_schemathesis(reporting.url("reporting"), "dev-read-token", 40, report, "--exclude-path", "/v1/stream")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + reporting.log("reporting")[-2000:]
    assert report.exists()
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases is not None, done.stdout[-3000:]
    assert 200 <= int(cases.group(1)) == int(cases.group(2)) <= 1000
    assert "/v1/stream" not in report.read_text()


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("/v1/indicators?unit=my-hao&to=9999-12-31", "to"),
        ("/v1/indicators?unit=my-hao&from=1969-12-31", "from"),
        ("/v1/indicators/breakdown?unit=my-hao&from=0001-01-01&to=2023-01-01", "from"),
        ("/v1/index766?unit=my-hao&from=2023-01-01&to=3000-01-01", "to"),
        ("/v1/indicators/monthly?unit=my-hao&year=9999", "year"),
        ("/v1/snapshot?unit=my-hao&year=1969", "year"),
        ("/v1/reports/annual?unit=my-hao&year=3000", "year"),
        ("/v1/reports/annual?unit=my-hao&year=2023&to=9999-12-31", "to"),
        ("/v1/stream?unit=my-hao&year=9999", "year"),
        ("/dashboard?unit=my-hao&year=9999", "year"),
    ],
)
async def test_days_outside_the_contract_range_are_422_naming_the_parameter(
    reporting: ServiceSet, query: str, parameter: str
) -> None:
    async with httpx.AsyncClient(base_url=reporting.url("reporting"), timeout=30) as client:
        response = await client.get(query, headers={"Authorization": "Bearer dev-read-token"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422 and body["title"] and parameter in body["detail"]
    assert [error["field"] for error in body["errors"]] == [parameter]


async def test_the_last_days_of_the_range_are_answered(reporting: ServiceSet) -> None:
    async with httpx.AsyncClient(base_url=reporting.url("reporting"), timeout=30) as client:
        for query in (
            "/v1/indicators?unit=my-hao&from=1970-01-01&to=2999-12-31",
            "/v1/index766?unit=my-hao&from=2999-12-31&to=2999-12-31",
            "/v1/indicators/monthly?unit=my-hao&year=1970",
            "/v1/indicators/breakdown?unit=my-hao&from=1970-01-01&to=1970-01-01",
        ):
            response = await client.get(query, headers={"Authorization": "Bearer dev-read-token"})
            assert response.status_code == 200, f"{query}: {response.text}"
