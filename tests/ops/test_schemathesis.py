"""A bounded schemathesis run against the running intake: a few hundred generated requests with a
fixed seed, from the OpenAPI the service serves. No answer is a 5xx, and every answer matches the
documented status codes, content types, headers and schemas.

Most generated events are refused with 422 (schemathesis warns about it): the schema cannot say
which unit codes the registry has, nor the cross-field rules (subject = the data's identifier, no
fact in the future); those answers are documented problems, which is what is checked."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ServiceSet

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


def run_schemathesis(base_url: str, token: str, max_examples: int, report: Path) -> subprocess.CompletedProcess[str]:
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
