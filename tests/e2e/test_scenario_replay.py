"""End to end: the three services as processes, the Mỹ Hào 2023 scenario through the intake API,
the report's figures out of the reporting API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.replay import replay_and_compare
from shared.vietnamese import format_points
from tests.conftest import DATABASE_URL, KAFKA, unique
from tests.subprocesses import REPO, ServiceSet

pytestmark = pytest.mark.e2e

READ = {"Authorization": "Bearer dev-read-token"}
SCENARIO = json.loads((REPO / "scenario/my_hao_2023.json").read_text())
WINDOW = {"from": "2023-01-01", "to": "2023-11-27"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("services")))
    try:
        stack.start("aggregator", "aggregator")
        stack.start("intake", "intake")
        stack.start("reporting", "reporting")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def replayed(services: ServiceSet) -> str:
    return services.run_scenario()


def indicators(services: ServiceSet, unit: str) -> dict[str, Any]:
    response = httpx.get(
        f"{services.url('reporting')}/v1/indicators",
        headers=READ,
        timeout=10,
        params={"unit": unit, "scope": "self", **WINDOW},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_town_figures_equal_the_report(services: ServiceSet, replayed: str) -> None:
    target = SCENARIO["targets"]["my-hao"]
    body = indicators(services, "my-hao")
    for group in ("dossiers", "documents", "procedures"):
        for name, value in target[group].items():
            assert body[group][name] == value, f"{group}.{name}"
    assert body["rates"]["components_digitized"] == 0.8109
    assert body["rates"]["results_digitized"] == 0.8256
    assert body["rates"]["paid_online"] == 0.2607
    assert body["rates"]["resolved_on_time"] == 1.0
    assert body["rates"]["signed_by_leader"] == 0.5021
    assert body["as_of"] == "2023-11-27T23:59:59.999999+07:00"


@pytest.mark.parametrize("unit", ["my-hao.minh-duc", "my-hao.xuan-duc", "my-hao.hung-long", "my-hao.ban-yen-nhan"])
def test_pilot_commune_figures_equal_the_report(services: ServiceSet, replayed: str, unit: str) -> None:
    target = SCENARIO["targets"][unit]
    body = indicators(services, unit)
    counts = {k: v for k, v in target.items() if isinstance(v, int)}
    for name, value in counts.items():
        assert body["dossiers"][name] == value, name
    expected_rates = {
        "online": (target["received_online"], target["received"]),
        "results_digitized": (target["results_digitized"], target["result_digitization_required"]),
        "paid_online": (target["paid_online"], target["fee_required"]),
        "satisfaction": (target["ratings_satisfied"], target["ratings"]),
    }
    for name, (numerator, denominator) in expected_rates.items():
        assert body["rates"][name] == round(numerator / denominator, 4), name


def test_breakdown_rows_add_up_to_the_subtree(services: ServiceSet, replayed: str) -> None:
    params = {"unit": "my-hao", **WINDOW}
    breakdown = httpx.get(
        f"{services.url('reporting')}/v1/indicators/breakdown", headers=READ, params=params, timeout=10
    ).json()
    subtree = httpx.get(
        f"{services.url('reporting')}/v1/indicators", headers=READ, params={**params, "scope": "subtree"}, timeout=10
    ).json()
    assert len(breakdown["rows"]) == 14
    for name, value in subtree["dossiers"].items():
        assert sum(row["dossiers"][name] for row in breakdown["rows"]) == value, name


def test_demo_output_names_where_to_look(replayed: str) -> None:
    assert "/dashboard?unit=my-hao" in replayed
    assert "1.763" in replayed
    assert "4.223/8.411 (50,21%)" in replayed


def test_demo_prints_the_decision_766_index_the_api_serves(services: ServiceSet, replayed: str) -> None:
    response = httpx.get(
        f"{services.url('reporting')}/v1/index766",
        headers=READ,
        timeout=10,
        params={"unit": "my-hao", **WINDOW},
    )
    assert response.status_code == 200, response.text
    index = response.json()
    assert f"{format_points(index['score'])}/{format_points(index['computable_points'])} điểm" in replayed
    printed = replayed[replayed.index("Xếp hạng các phường, xã") :]
    places = [printed.index(f"{rank['name']}: {format_points(rank['score'])}") for rank in index["ranking"]]
    assert len(places) == len(SCENARIO["units"]) - 2 and places == sorted(places)  # the communes of the town
    # The scenario's v2 facts reach the index: synchronised dossiers, supplements, reuse, fees.
    components = {c["code"]: c for group in index["groups"] for c in group["components"]}
    computed = [c for c in components.values() if c["computed"]]
    assert computed and all(c["denominator"] > 0 for c in computed), computed
    assert 0 < index["score"] < index["computable_points"]


async def test_replay_reproduces_the_live_tables(services: ServiceSet, replayed: str) -> None:
    settings = AggregatorSettings(
        kafka_bootstrap_servers=KAFKA,
        database_url=DATABASE_URL,
        events_topic=services.topic,
        dead_letter_topic=services.dead_letter_topic,
    )
    report = await replay_and_compare(settings, live_schema=services.schema, replay_schema=unique("replay"))
    assert not report.differences, report.render()
    assert report.records >= 83_000
