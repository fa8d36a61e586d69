"""Deployment configuration: docker-compose.yml against the Compose Specification with the rules and
dashboards mounted, the dashboards' lint, and the scrape configuration of deploy/prometheus.sh."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tools.dashboard_lint import lint
from tools.promql import metric_names, selectors

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("."):
            found[container] = host
    return found


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests/ops/schemas/compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(_compose())
    broken = copy.deepcopy(_compose())
    broken["services"]["grafana"]["volumes"] = "not a list"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_compose_mounts_the_rules_the_scrape_config_and_the_dashboards() -> None:
    services = _compose()["services"]
    prometheus, grafana = _mounts(services["prometheus"]), _mounts(services["grafana"])
    for host in [*prometheus.values(), *grafana.values()]:
        assert (REPO / host).exists(), host
    config = yaml.safe_load((REPO / prometheus["/etc/prometheus/prometheus.yml"]).read_text())
    for rule_file in config["rule_files"]:
        assert prometheus[rule_file] == "./deploy/prometheus/alerts.yml"
    assert {job["job_name"] for job in config["scrape_configs"]} == {"tthc-intake", "tthc-aggregator", "tthc-reporting"}
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/tthc.yml").read_text())["providers"][0]
    assert grafana[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert grafana["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def test_dashboards_default_to_the_provisioned_data_source() -> None:
    datasources = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    assert {"pipeline-overview.json", "reporting.json"} <= {path.name for path in DASHBOARDS}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variable = next(t for t in dashboard["templating"]["list"] if t["type"] == "datasource")
        assert variable["current"]["value"] == uid, path.name


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboards_pass_the_lint(path: Path) -> None:
    assert lint(json.loads(path.read_text())) == []


def _first_panel(dashboard: dict[str, Any]) -> dict[str, Any]:
    panel: dict[str, Any] = dashboard["panels"][1]
    return panel


MUTATIONS = {
    "target-rate-interval-rule": lambda d: _first_panel(d)["targets"][0].update(
        expr='sum(rate(tthc_intake_events_accepted_total{job=~"$job", instance=~"$instance"}[5m]))'
    ),
    "target-counter-agg-rule": lambda d: _first_panel(d)["targets"][0].update(
        expr='sum(tthc_intake_events_accepted_total{job=~"$job", instance=~"$instance"})'
    ),
    "target-job-rule": lambda d: _first_panel(d)["targets"][0].update(
        expr='sum(rate(tthc_intake_events_accepted_total{instance=~"$instance"}[$__rate_interval]))'
    ),
    "target-datasource-rule": lambda d: _first_panel(d)["targets"][0].update(datasource={"uid": "prometheus"}),
    "panel-datasource-rule": lambda d: _first_panel(d).update(datasource={"uid": "prometheus"}),
    "panel-title-description-rule": lambda d: _first_panel(d).update(description=""),
    "panel-title-vietnamese-rule": lambda d: _first_panel(d).update(title="Accepted events per second"),
    "panel-units-rule": lambda d: _first_panel(d)["fieldConfig"]["defaults"].update(unit="events"),
    "panel-no-targets-rule": lambda d: _first_panel(d).update(targets=[]),
    "uneditable-dashboard": lambda d: d.update(editable=True),
    "template-datasource-rule": lambda d: d["templating"].update(
        list=[t for t in d["templating"]["list"] if t["type"] != "datasource"]
    ),
    "template-instance-rule": lambda d: d["templating"]["list"][2].update(allValue=None),
    "template-on-time-change-reload-rule": lambda d: d["templating"]["list"][1].update(refresh=1),
}


@pytest.mark.parametrize("rule", sorted(MUTATIONS))
def test_the_lint_finds_each_rule_broken(rule: str) -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    MUTATIONS[rule](dashboard)
    assert [problem for problem in lint(dashboard) if problem.startswith(f"{rule}:")]


def test_promql_scanner_finds_metrics_functions_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job"}[5m]))) '
        "> 1 and deriv(sum(b)[10m:30s]) > 0 or c_total offset 10m unless sum without (x) (d)"
    )
    found = {s.metric: (s.function, s.range) for s in selectors(expr)}
    assert found == {"a_bucket": ("rate", "5m"), "b": ("sum", None), "c_total": (None, None), "d": ("sum", None)}
    assert metric_names('up{job=~"tthc-.*"} == 0') == {"up"}


def test_prometheus_script_scrapes_the_given_ports() -> None:
    env = {**os.environ, "INTAKE_PORT": "18001", "AGGREGATOR_PORT": "18003", "REPORTING_PORT": "18002"}
    output = subprocess.run(
        ["bash", str(REPO / "deploy/prometheus.sh"), "config"], env=env, capture_output=True, text=True, check=True
    ).stdout
    config = yaml.safe_load(output)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "tthc-intake": ["127.0.0.1:18001"],
        "tthc-aggregator": ["127.0.0.1:18003"],
        "tthc-reporting": ["127.0.0.1:18002"],
    }
    assert config["rule_files"] == [str(REPO / "deploy/prometheus/alerts.yml")]
