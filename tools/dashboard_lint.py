"""Lint of the Grafana dashboards: the rules of Grafana's dashboard-linter, in Python.

The linter itself (github.com/grafana/dashboard-linter) is a Go module the module proxy does not
serve, so this implements the same rules for the dashboards of this repository, plus one of the
project: panel titles are Vietnamese (what an officer or operator in Vietnam reads).

    python -m tools.dashboard_lint deploy/grafana/dashboards/*.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.promql import PromQLError, selectors

PANELS_WITH_QUERIES = frozenset({"stat", "singlestat", "graph", "table", "timeseries", "gauge", "bargauge"})
TEMPLATED_DATASOURCES = frozenset({"$datasource", "${datasource}"})
RATE_INTERVAL = "$__rate_interval"
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase"})
VIETNAMESE_LETTERS = frozenset("ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ")
# The units Grafana knows (dashboard-linter's panel-units-rule, the ones a dashboard here may use).
VALID_UNITS = frozenset(
    {
        *("none", "string", "short", "percent", "percentunit", "ops", "reqps", "rps", "cps"),
        *("s", "ms", "µs", "ns", "dtdurations", "bytes", "decbytes", "dateTimeAsIso", "dateTimeFromNow", "bool"),
    }
)


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # rows


def lint(dashboard: dict[str, Any]) -> list[str]:
    """Every rule the dashboard breaks, as `rule: message` lines (empty: clean)."""
    problems: list[str] = []
    title = dashboard.get("title", "?")

    def add(rule: str, where: str, message: str) -> None:
        problems.append(f"{rule}: {title} / {where}: {message}")

    templates = {t.get("name"): t for t in dashboard.get("templating", {}).get("list", [])}
    datasources = [t for t in templates.values() if t.get("type") == "datasource"]
    if not datasources:
        add("template-datasource-rule", "templating", "does not have a templated data source")
    for template in datasources:
        if template.get("name") != "datasource":
            add("template-datasource-rule", "templating", f"data source variable named {template.get('name')!r}")
        if template.get("query") != "prometheus":
            add("template-datasource-rule", "templating", "the data source variable is not a Prometheus one")
    for name, label in (("job", "Job"), ("instance", "Instance")):
        template = templates.get(name)
        if template is None:
            add(f"template-{name}-rule", "templating", f"is missing the {name} template")
            continue
        if template.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
            add(f"template-{name}-rule", "templating", f"{name} template should use datasource '$datasource'")
        if template.get("type") != "query":
            add(f"template-{name}-rule", "templating", f"{name} template should be a Prometheus query")
        if template.get("label") != label:
            add(f"template-{name}-rule", "templating", f"{name} template should be labeled {label!r}")
        if not template.get("multi"):
            add(f"template-{name}-rule", "templating", f"{name} template should be a multi select")
        if template.get("allValue") != ".+":
            add(f"template-{name}-rule", "templating", f"{name} template allValue should be '.+'")
    for template in templates.values():
        if template.get("type") == "query" and template.get("refresh") != 2:
            add(
                "template-on-time-change-reload-rule",
                "templating",
                f"{template.get('name')} should refresh on time change (2)",
            )
    if dashboard.get("editable", True):
        add("uneditable-dashboard", "dashboard", "is editable, it should be set to 'editable: false'")

    for panel in _panels(dashboard):
        if panel.get("type") not in PANELS_WITH_QUERIES:
            continue
        where = f"panel {panel.get('title') or panel.get('id')!r}"
        if not panel.get("title") or not panel.get("description"):
            add("panel-title-description-rule", where, "has missing title or description")
        if not VIETNAMESE_LETTERS & set(panel.get("title", "").lower()):
            add("panel-title-vietnamese-rule", where, "the title is not Vietnamese")
        if panel.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
            add("panel-datasource-rule", where, "does not use a templated datasource")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit not in VALID_UNITS:
            add("panel-units-rule", where, f"has no or an invalid unit: {unit!r}")
        targets = panel.get("targets")
        if not targets:
            add("panel-no-targets-rule", where, "has no targets")
        for target in targets or []:
            problems += [f"{rule}: {title} / {where}: {message}" for rule, message in lint_target(target)]
    return problems


def lint_target(target: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    expr = target.get("expr", "")
    if target.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
        found.append(("target-datasource-rule", f"target {target.get('refId')} does not use '$datasource'"))
    try:
        parsed = selectors(expr)
    except PromQLError as exc:
        return [*found, ("target-promql-rule", str(exc))]
    if not parsed:
        found.append(("target-promql-rule", f"{expr!r} selects no series"))
    for selector in parsed:
        if selector.function in ("rate", "irate") and selector.range != RATE_INTERVAL:
            found.append(("target-rate-interval-rule", f"{expr!r}: should use {RATE_INTERVAL}"))
        if selector.metric.endswith("_total") and (
            selector.range is None or selector.function not in COUNTER_FUNCTIONS
        ):
            found.append(
                ("target-counter-agg-rule", f"counter {selector.metric} is not aggregated with rate, irate or increase")
            )
        for label in ("job", "instance"):
            if selector.matchers.get(label) != ("=~", f"${label}"):
                found.append((f"target-{label}-rule", f'{selector.metric} has no {label}=~"${label}" matcher'))
    return found


def main(paths: list[str]) -> int:
    problems = [problem for path in paths for problem in lint(json.loads(Path(path).read_text()))]
    for problem in problems:
        sys.stderr.write(problem + "\n")
    sys.stderr.write(f"dashboard lint: {len(paths)} dashboard(s), {len(problems)} problem(s)\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
