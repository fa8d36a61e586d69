"""A messy stream through the intake API (10% duplicates, shuffled, corrections, late and orphan
events, identity conflicts, timestamps on both sides of local midnight): the reporting API agrees
with the reference model, which recomputes every figure from the distinct events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.timezone import end_of_day
from shared.units import UnitTree
from tests import reference_index766, reference_model
from tests.conftest import DATABASE_URL, eventually
from tests.in_process import overlapping_periods, roll_up_differences
from tests.streams import UNITS as STREAM_UNITS
from tests.streams import first_accepted, index_stream, messy_stream
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

TREE = UnitTree.load(None)
POST = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
READ = {"Authorization": "Bearer dev-read-token"}
QUERIES = [
    ("hung-yen", "subtree", date(2023, 1, 1), date(2023, 12, 31)),
    ("my-hao", "self", date(2023, 3, 1), date(2023, 3, 31)),
    ("my-hao.minh-duc", "self", date(2023, 1, 1), date(2023, 6, 30)),
    ("my-hao", "subtree", date(2023, 5, 2), date(2023, 5, 2)),
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("messy")))
    try:
        for name in ("aggregator", "intake", "reporting"):
            stack.start(name, name)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def posted() -> list[dict[str, Any]]:
    """Every event the tests of this module posted to the stack, in order (the figures count them all)."""
    return []


async def test_reporting_api_agrees_with_the_reference_model(
    services: ServiceSet, posted: list[dict[str, Any]]
) -> None:
    events = messy_stream(11, dossiers=3_000, documents=800, procedures=120)
    async with httpx.AsyncClient(timeout=60) as client:
        for start in range(0, len(events), 500):
            batch = events[start : start + 500]
            response = await client.post(f"{services.url('intake')}/v1/events", content=json.dumps(batch), headers=POST)
            assert response.status_code == 202, response.text
            posted.extend(batch)
        accepted = first_accepted(posted)

        for unit, scope, first, last in QUERIES:
            units = TREE.subtree(unit) if scope == "subtree" else [unit]
            expected = reference_model.figures(accepted, first, last, end_of_day(last), units)
            params = {"unit": unit, "scope": scope, "from": first.isoformat(), "to": last.isoformat()}

            async def agrees(params: dict[str, str] = params, expected: dict[str, Any] = expected) -> bool:
                body = (
                    await client.get(f"{services.url('reporting')}/v1/indicators", params=params, headers=READ)
                ).json()
                return all(body[group] == expected[group] for group in ("dossiers", "documents", "procedures", "rates"))

            await eventually(agrees, timeout=60, interval=0.2, what=f"figures of {params}")


# Every unit of the tree, for a day, a month and a year (a supplement request or an end on either
# side of each boundary is frequent in the stream).
INDEX_WINDOWS = [
    (date(2023, 5, 2), date(2023, 5, 2)),
    (date(2023, 3, 1), date(2023, 3, 31)),
    (date(2023, 2, 14), date(2023, 11, 20)),  # whole months from the roll-ups, edge days from the day rows
    (date(2023, 1, 1), date(2023, 12, 31)),
]
INDEX_QUERIES = [(unit, first, last) for unit in TREE.units for first, last in INDEX_WINDOWS]


def reference_body(accepted: list[Any], unit: str, first: date, last: date) -> dict[str, Any]:
    """The components and ranking of /v1/index766 as the reference computes them."""
    as_of = end_of_day(last)
    index = reference_index766.scores(reference_index766.count(accepted, first, last, as_of, TREE.subtree(unit)))
    children = [
        (child, reference_index766.scores(reference_index766.count(accepted, first, last, as_of, TREE.subtree(child))))
        for child in TREE.children[unit]
    ]
    ranking = sorted(children, key=lambda item: (-item[1].score, item[0]))
    return {
        "components": index.rows(),
        "score": float(index.score),
        "ranking": [(child, float(ref.score)) for child, ref in ranking],
    }


def shown(body: dict[str, Any]) -> dict[str, Any]:
    components = {
        c["code"]: (c["numerator"], c["denominator"], c["ratio"], c["score"])
        for group in body["groups"]
        for c in group["components"]
        if c["computed"]
    }
    return {
        "components": components,
        "score": body["score"],
        "ranking": [(row["unit"], row["score"]) for row in body["ranking"]],
    }


async def test_decision_766_index_agrees_with_the_reference(services: ServiceSet, posted: list[dict[str, Any]]) -> None:
    events = index_stream(23, dossiers=2_500, procedures=150)
    async with httpx.AsyncClient(timeout=60) as client:
        for start in range(0, len(events), 500):
            batch = events[start : start + 500]
            response = await client.post(f"{services.url('intake')}/v1/events", content=json.dumps(batch), headers=POST)
            assert response.status_code == 202, response.text
            posted.extend(batch)
        accepted = [item.model_dump(mode="json", by_alias=True) for item in first_accepted(posted)]
        url = f"{services.url('reporting')}/v1/index766"

        for unit, first, last in INDEX_QUERIES:
            expected = reference_body(accepted, unit, first, last)
            if last > first and unit in STREAM_UNITS:  # the stream exercises what it checks
                assert expected["components"]["2.1"][1] > 0
            if unit == TREE.roots[0] and (first, last) == INDEX_WINDOWS[-1]:
                assert all(expected["components"][code][0] > 0 for code in ("3.2", "3.5a", "3.5b", "4.2"))
            params = {"unit": unit, "from": first.isoformat(), "to": last.isoformat()}

            async def agrees(params: dict[str, str] = params, expected: dict[str, Any] = expected) -> bool:
                response = await client.get(url, params=params, headers=READ)
                assert response.status_code == 200, response.text
                return shown(response.json()) == expected

            try:
                await eventually(agrees, timeout=60, interval=0.3, what=f"Decision 766 index of {params}")
            except AssertionError:  # show what differs
                response = await client.get(url, params=params, headers=READ)
                assert shown(response.json()) == expected
                raise
    pool = await asyncpg.create_pool(
        DATABASE_URL, min_size=1, max_size=1, server_settings={"search_path": services.schema}
    )
    try:
        differences = await roll_up_differences(pool)
        overlaps = await overlapping_periods(pool)
        periods = await pool.fetchval("SELECT count(*) FROM procedure_periods WHERE n > 0")
    finally:
        await pool.close()
    assert differences.pop("months") > 0 and set(differences.values()) == {0}, differences
    assert periods > 0 and overlaps == 0
