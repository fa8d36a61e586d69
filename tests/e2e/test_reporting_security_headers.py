"""Security headers of the running reporting service: every HTML page (dashboard, HTML report, /docs)
has a Content-Security-Policy that forbids framing and inline scripts, `nosniff` and a referrer
policy; every other answer (JSON, problem+json, metrics, the event stream) a policy that allows
nothing. In Chromium, when it is installed, each page works under its policy: no violation, no
failed request, the report styled and the pages filled in by their scripts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.reporting_stack import READ
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

DASHBOARD = "/dashboard?unit=my-hao&year=2023"
REPORT = "/v1/reports/annual?unit=my-hao&year=2023&format=html"
PAGES = [DASHBOARD, REPORT, "/docs"]
OTHERS = [
    "/healthz",
    "/openapi.json",
    "/metrics",
    "/v1/snapshot?unit=my-hao&year=2023",
    "/v1/units",  # without a token: 401 problem+json
    "/v1/indicators?unit=no-such-unit",
    "/no/such/path",
    "/assets/dashboard.js",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("security-headers")))
    try:
        stack.start("aggregator", "aggregator")  # creates the schema reporting reads
        stack.start("reporting", "reporting")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def client(services: ServiceSet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.url("reporting"), timeout=30) as http:
        yield http


def directives(policy: str) -> dict[str, str]:
    return {name: value for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}


def check_common(response: httpx.Response) -> dict[str, str]:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = directives(response.headers["content-security-policy"])
    assert policy["frame-ancestors"] == "'none'"
    return policy


@pytest.mark.parametrize("path", PAGES)
async def test_every_html_page_forbids_framing_and_inline_scripts(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=READ if path.startswith("/v1/") else {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    policy = check_common(response)
    script_src = policy.get("script-src", policy["default-src"])
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'unsafe-inline'" not in policy.get("style-src", policy["default-src"])
    assert "*" not in policy["default-src"]
    assert policy.get("base-uri") == "'none'"


async def test_the_dashboard_of_an_unknown_unit_is_a_problem_with_the_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard?unit=no-such-unit")
    assert response.status_code == 404
    assert check_common(response)["default-src"] == "'none'"


@pytest.mark.parametrize("path", OTHERS)
async def test_every_other_answer_allows_nothing(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=READ if path.startswith("/v1/snapshot") else {})
    assert not response.headers["content-type"].startswith("text/html")
    assert check_common(response)["default-src"] == "'none'"


async def test_the_event_stream_has_the_headers_too(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/v1/stream?unit=my-hao&year=2023", headers=READ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert check_common(response)["default-src"] == "'none'"


@pytest.fixture(scope="module")
def browser_available() -> None:
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (dev dependency)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


# Registered before any script of the page runs (an init script is not subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


# What each page shows once its script (or style) worked: the dashboard's live stream connected,
# the report in Times, the documentation rendered from /openapi.json.
@pytest.mark.parametrize(
    ("path", "ready"),
    [
        (DASHBOARD, "document.getElementById('live-text').textContent === 'Trực tuyến'"),
        (REPORT, "getComputedStyle(document.body).fontFamily.includes('Times')"),
        ("/docs", "document.querySelectorAll('section.op').length > 5"),
    ],
)
async def test_each_page_works_under_its_policy_in_chromium(
    browser_available: None, services: ServiceSet, path: str, ready: str
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The report needs the reader token (an officer's browser would send it through a proxy).
            page = await browser.new_page(extra_http_headers=READ if path.startswith("/v1/") else {})
            await page.add_init_script(RECORD_VIOLATIONS)
            problems: list[str] = []
            page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
            page.on("pageerror", lambda error: problems.append(f"error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}") if "Content Security Policy" in message.text else None
                ),
            )
            response = await page.goto(f"{services.url('reporting')}{path}")
            assert response is not None and response.status == 200
            await page.wait_for_function(ready, timeout=15_000)
            violations = await page.evaluate("window.__violations")
            assert violations == [], violations
            assert problems == [], problems
        finally:
            await browser.close()
