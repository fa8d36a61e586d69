"""The monitoring of a running stack: the three services as processes and Debian's Prometheus
scraping them (deploy/prometheus.sh, a configuration generated for the test ports).

- Every metric a Grafana panel or an alert rule queries is exposed by the service that should
  expose it, except those listed in PENDING (metrics other parts of the system add): a listed
  metric that appears fails the test too, so the list can only shrink to empty.
- After a burst of events and snapshot reads, what Prometheus reports through its HTTP API matches
  what the services did: events accepted, requests by route and status (reporting runs two workers,
  as deployed, and is counted as one), snapshot answers, events applied, the lag per partition
  (back to 0) and the freshness histogram (one observation per event).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eventually, unique
from tests.factories import received
from tests.subprocesses import REPO, ServiceSet, free_port
from tools.promql import metric_names

pytestmark = pytest.mark.e2e

JOBS = {"intake": "tthc-intake", "aggregator": "tthc-aggregator", "reporting": "tthc-reporting"}
# Metrics that Prometheus itself makes, not a service.
PROMETHEUS_METRICS = {"up"}
# Metrics queried by both HTTP services' panels.
HTTP_METRICS = {"tthc_http_requests_total", "tthc_http_request_duration_seconds_bucket"}
# Where each queried metric must be exposed (by metric name prefix).
OWNERS = {
    "tthc_intake_": {"tthc-intake"},
    "tthc_aggregator_": {"tthc-aggregator"},
    "tthc_reporting_": {"tthc-reporting"},
}

# (metric, job) pairs queried by a dashboard or an alert rule that the services do not expose yet.
# None is left; a metric a new panel or rule queries before its service exposes it goes here.
PENDING: set[tuple[str, str]] = set()
LAG = "tthc_aggregator_partition_lag_records"
FRESHNESS = "tthc_aggregator_freshness_seconds_bucket"

POST = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
BURST_REQUESTS, EVENTS_PER_REQUEST = 6, 50
READ = {"Authorization": "Bearer dev-read-token"}
SNAPSHOT_REQUESTS = 20
SNAPSHOTS_OK = 'sum(tthc_http_requests_total{job="tthc-reporting",route="/v1/snapshot",method="GET",status="200"})'
SNAPSHOTS_FULL = 'sum(tthc_reporting_snapshot_responses_total{kind="full"})'


def queried_metrics() -> set[str]:
    """Every metric name a dashboard panel or an alert rule queries."""
    names: set[str] = set()
    for path in sorted((REPO / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                names |= metric_names(target["expr"])
    for group in yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= metric_names(rule["expr"])
    return names


def expected_jobs(metric: str) -> set[str]:
    if metric in HTTP_METRICS:
        return {"tthc-intake", "tthc-reporting"}
    return next(jobs for prefix, jobs in OWNERS.items() if metric.startswith(prefix))


def exposed(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    services = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("monitoring")))
    try:
        services.start("aggregator", "aggregator")
        services.start("intake", "intake")
        # As deployed: two workers, whose metrics Prometheus must see as one.
        services.start("reporting", "reporting", REPORTING_WORKERS="2")
        yield services
    finally:
        services.stop_all()


@pytest.fixture(scope="module")
def prometheus(stack: ServiceSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        **os.environ,
        "PROMETHEUS_HOME": str(tmp_path_factory.mktemp("prometheus")),
        "PROMETHEUS_PORT": str(free_port()),
        "PROMETHEUS_SCRAPE_INTERVAL": "1s",
        "INTAKE_PORT": str(stack.ports["intake"]),
        "AGGREGATOR_PORT": str(stack.ports["aggregator"]),
        "REPORTING_PORT": str(stack.ports["reporting"]),
    }
    script = str(REPO / "deploy/prometheus.sh")
    subprocess.run(["bash", script, "start"], env=env, check=True, timeout=120)
    try:
        yield subprocess.run(
            ["bash", script, "url"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
    finally:
        subprocess.run(["bash", script, "stop"], env=env, check=True, timeout=60)


async def send_burst(client: httpx.AsyncClient, stack: ServiceSet) -> int:
    for _ in range(BURST_REQUESTS):
        batch = [received(unique("burst")) for _ in range(EVENTS_PER_REQUEST)]
        response = await client.post(f"{stack.url('intake')}/v1/events", content=json.dumps(batch), headers=POST)
        assert response.status_code == 202, response.text
    return BURST_REQUESTS * EVENTS_PER_REQUEST


async def read_snapshots(stack: ServiceSet) -> int:
    """Snapshot requests, each on a new connection so that both reporting workers answer some."""
    for _ in range(SNAPSHOT_REQUESTS):
        async with httpx.AsyncClient(timeout=30) as fresh:
            response = await fresh.get(
                f"{stack.url('reporting')}/v1/snapshot", params={"unit": "my-hao", "year": "2023"}, headers=READ
            )
            assert response.status_code == 200, response.text
    return SNAPSHOT_REQUESTS


async def query(client: httpx.AsyncClient, prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = await client.get(f"{prometheus}/api/v1/query", params={"query": expr})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


async def scalar(client: httpx.AsyncClient, prometheus: str, expr: str) -> float | None:
    result = await query(client, prometheus, expr)
    return float(result[0]["value"][1]) if result else None


async def test_every_metric_the_dashboards_and_alerts_query_is_exposed(stack: ServiceSet) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        await send_burst(client, stack)  # labelled series exist once something happened
        await client.get(f"{stack.url('reporting')}/healthz")
        texts = {JOBS[name]: (await client.get(f"{stack.url(name)}/metrics")).text for name in JOBS}
    series = {job: exposed(text) for job, text in texts.items()}
    missing = {
        (metric, job)
        for metric in queried_metrics() - PROMETHEUS_METRICS
        for job in expected_jobs(metric)
        if metric not in series[job]
    }
    assert not missing - PENDING, f"queried but not exposed: {sorted(missing - PENDING)}"
    assert not PENDING - missing, f"exposed now, remove from PENDING: {sorted(PENDING - missing)}"


async def test_prometheus_reports_what_the_services_did(stack: ServiceSet, prometheus: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:

        async def all_up() -> bool:
            result = await query(client, prometheus, 'up{job=~"tthc-.*"}')
            return {r["metric"]["job"] for r in result if r["value"][1] == "1"} == set(JOBS.values())

        await eventually(all_up, timeout=30, interval=0.5, what="the three jobs scraped")
        before = {
            "accepted": await scalar(client, prometheus, "sum(tthc_intake_events_accepted_total)") or 0.0,
            "requests": await scalar(
                client, prometheus, 'sum(tthc_http_requests_total{route="/v1/events",method="POST",status="202"})'
            )
            or 0.0,
            "applied": await scalar(client, prometheus, "sum(tthc_aggregator_events_applied_total)") or 0.0,
            "snapshots": await scalar(client, prometheus, SNAPSHOTS_OK) or 0.0,
            "full": await scalar(client, prometheus, SNAPSHOTS_FULL) or 0.0,
        }
        freshness_before = await scalar(client, prometheus, f'sum({FRESHNESS}{{le="+Inf"}})') or 0.0
        events = await send_burst(client, stack)
        snapshots = await read_snapshots(stack)

        async def reports(expr: str, expected: float) -> bool:
            return await scalar(client, prometheus, expr) == expected

        await eventually(
            lambda: reports("sum(tthc_intake_events_accepted_total)", before["accepted"] + events),
            timeout=30,
            interval=0.5,
            what="events accepted in Prometheus",
        )
        await eventually(
            lambda: reports(
                'sum(tthc_http_requests_total{route="/v1/events",method="POST",status="202"})',
                before["requests"] + BURST_REQUESTS,
            ),
            timeout=30,
            interval=0.5,
            what="intake requests in Prometheus",
        )
        await eventually(
            lambda: reports(SNAPSHOTS_OK, before["snapshots"] + snapshots),
            timeout=30,
            interval=0.5,
            what="reporting requests of both workers in Prometheus",
        )
        await eventually(
            lambda: reports(SNAPSHOTS_FULL, before["full"] + snapshots),
            timeout=30,
            interval=0.5,
            what="snapshot answers of both workers in Prometheus",
        )
        await eventually(
            lambda: reports("sum(tthc_aggregator_events_applied_total)", before["applied"] + events),
            timeout=60,
            interval=0.5,
            what="events applied in Prometheus",
        )
        if (LAG, "tthc-aggregator") not in PENDING:
            partitions = await query(client, prometheus, LAG)
            assert len(partitions) == 6, partitions  # EVENTS_PARTITIONS of the test stack
            await eventually(
                lambda: reports(f"sum({LAG})", 0.0), timeout=30, interval=0.5, what="lag back to 0 once applied"
            )
        if (FRESHNESS, "tthc-aggregator") not in PENDING:
            await eventually(
                lambda: reports(f'sum({FRESHNESS}{{le="+Inf"}})', freshness_before + events),
                timeout=30,
                interval=0.5,
                what="one freshness observation per event",
            )
