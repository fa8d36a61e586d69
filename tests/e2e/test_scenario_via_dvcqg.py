"""End to end: the Mỹ Hào 2023 scenario through the DVCQG adapter (`python -m scenario --via dvcqg`)
gives the figures of the CloudEvents path for every unit of the tree, both scopes; sending the whole
DVCQG part again changes no figure and adds no dead letter.

Two stacks, each with its own topics and schema: one fed by `--via cloudevents`, one by `--via dvcqg`
(the whole scenario: about 4 minutes for both on two cores, the DVCQG run about 2 of them; the
pure comparison of a slice is tests/unit/test_scenario_dvcqg.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from scenario.client import post_dvcqg
from scenario.dvcqg import encode
from scenario.generate import generate_events
from scenario.plan import load_scenario
from shared.units import UnitRegistry
from tests.conftest import DATABASE_URL, KAFKA, eventually
from tests.in_process import end_offsets
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

READ = {"Authorization": "Bearer dev-read-token"}
WINDOW = {"from": "2023-01-01", "to": "2023-11-27"}
UNITS = [entry.code for entry in UnitRegistry.load(None).entries]
FIGURE_GROUPS = ("dossiers", "documents", "procedures", "rates")


def _stack(tmp_path_factory: pytest.TempPathFactory, name: str) -> ServiceSet:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp(name)))
    stack.start("aggregator", "aggregator")
    stack.start("intake", "intake")
    stack.start("reporting", "reporting", REPORTING_WORKERS="1")
    return stack


def _replay(stack: ServiceSet, via: str) -> str:
    return stack.run_scenario("--via", via)


@pytest.fixture(scope="module")
def cloudevents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = _stack(tmp_path_factory, "cloudevents")
    try:
        _replay(stack, "cloudevents")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def dvcqg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceSet, str]]:
    stack = _stack(tmp_path_factory, "dvcqg")
    try:
        yield stack, _replay(stack, "dvcqg")
    finally:
        stack.stop_all()


def figures(stack: ServiceSet) -> dict[tuple[str, str], dict[str, Any]]:
    """Every unit's indicators, both scopes, without `freshness` (when, not what)."""
    shown: dict[tuple[str, str], dict[str, Any]] = {}
    with httpx.Client(base_url=stack.url("reporting"), headers=READ, timeout=10) as client:
        for unit in UNITS:
            for scope in ("self", "subtree"):
                response = client.get("/v1/indicators", params={"unit": unit, "scope": scope, **WINDOW})
                assert response.status_code == 200, response.text
                body = response.json()
                shown[(unit, scope)] = {group: body[group] for group in FIGURE_GROUPS}
    return shown


async def _caught_up(stack: ServiceSet) -> bool:
    """Whether the aggregator has applied every record now in the events topic."""
    ends = await end_offsets(KAFKA, stack.topic)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": stack.schema})
    try:
        rows = await conn.fetch("SELECT partition, next_offset FROM consumer_positions WHERE topic = $1", stack.topic)
    finally:
        await conn.close()
    stored = {row["partition"]: row["next_offset"] for row in rows}
    return all(stored.get(partition, 0) >= end for partition, end in ends.items() if end > 0)


async def _dead_letters(stack: ServiceSet) -> int:
    return sum((await end_offsets(KAFKA, stack.dead_letter_topic)).values())


def test_every_unit_shows_the_figures_of_the_cloudevents_path(
    cloudevents: ServiceSet, dvcqg: tuple[ServiceSet, str]
) -> None:
    stack, output = dvcqg
    assert "DVCQG records through the adapter" in output
    expected, shown = figures(cloudevents), figures(stack)
    assert len(shown) == 2 * len(UNITS) == 30
    assert shown["my-hao", "subtree"]["dossiers"]["received"] > 5000  # the scenario, not an empty store
    different = [key for key in expected if expected[key] != shown[key]]
    assert not different, [(key, expected[key], shown[key]) for key in different[:3]]


async def test_resending_the_whole_dvcqg_part_changes_nothing(dvcqg: tuple[ServiceSet, str]) -> None:
    stack, _ = dvcqg
    before = figures(stack)
    dead_before = await _dead_letters(stack)
    ends_before = sum((await end_offsets(KAFKA, stack.topic)).values())
    encoded = encode(generate_events(load_scenario(), 2023), UnitRegistry.load(None), 2023)
    stats = await asyncio.to_thread(post_dvcqg, encoded.requests, stack.url("intake"))
    assert stats.records == encoded.records and stats.events > stats.records
    assert sum((await end_offsets(KAFKA, stack.topic)).values()) >= ends_before + stats.events  # they did arrive
    await eventually(lambda: _true_or_none(_caught_up(stack)), timeout=300, what="the re-sent events applied")
    assert figures(stack) == before
    assert await _dead_letters(stack) == dead_before


async def _true_or_none(check: Any) -> bool | None:
    return True if await check else None
