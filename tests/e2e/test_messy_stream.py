"""A messy stream through the intake API (10% duplicates, shuffled, corrections, late and orphan
events, identity conflicts, timestamps on both sides of local midnight): the reporting API agrees
with the reference model, which recomputes every figure from the distinct events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.timezone import end_of_day
from shared.units import UnitTree
from tests import reference_model
from tests.conftest import eventually
from tests.processes import ServiceSet
from tests.streams import first_accepted, messy_stream

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


async def test_reporting_api_agrees_with_the_reference_model(services: ServiceSet) -> None:
    events = messy_stream(11, dossiers=3_000, documents=800, procedures=120)
    async with httpx.AsyncClient(timeout=60) as client:
        for start in range(0, len(events), 500):
            batch = events[start : start + 500]
            response = await client.post(f"{services.url('intake')}/v1/events", content=json.dumps(batch), headers=POST)
            assert response.status_code == 202, response.text
        accepted = first_accepted(events)

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
