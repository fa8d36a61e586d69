"""The Mỹ Hào 2023 scenario: valid events whose figures are exactly the report's (no I/O)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, date, datetime, time
from random import Random
from typing import Any

import httpx
import pytest

from scenario.__main__ import ALONE, ALREADY, ON_TOP, Targets, indicators_url, wait_for_figures
from scenario.client import IntakeError, post_events, retry_after_seconds
from scenario.expected import Window, combined, decode, differences, expected_figures
from scenario.generate import MOTCUA, QLVB, generate_events, plan_for
from scenario.plan import PILOTS, TOWN, build_plan, load_scenario
from scenario.workdays import LOCAL, is_working_day
from services.aggregator.domain import Contributions, State
from services.reporting.indicators import figure_groups
from shared.counters import ALL_COUNTERS
from shared.events import Event, contract_problems, event_batch_adapter, unit_of
from shared.units import UnitTree
from tests.planning import add_into, contributions_of, plan_batch

SEED = 2023


def counts(delta: Contributions, unit: str, window: Window) -> dict[str, int]:
    """Stored-counter totals of one unit (scope self): daily ones over the window, levels at as_of."""
    result = dict.fromkeys(ALL_COUNTERS, 0)
    for (counted_unit, counter, day), value in delta.daily.items():
        if counted_unit == unit and window.start <= day <= window.end:
            result[counter] += value
    as_of = window.as_of
    for (counted_unit, counter, instant), value in delta.levels.items():
        if counted_unit == unit and instant <= as_of:
            result[counter] += value
    return result


def figures(delta: Contributions, unit: str, window: Window) -> dict[str, dict[str, Any]]:
    """The figures the reporting API computes from the aggregator's counters (its indicator code)."""
    return figure_groups(counts(delta, unit, window))


YEAR_END = datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=LOCAL)
PILOT_RATES = {
    "online": ("received_online", "received"),
    "results_digitized": ("results_digitized", "result_digitization_required"),
    "paid_online": ("paid_online", "fee_required"),
    "satisfaction": ("ratings_satisfied", "ratings"),
}


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    return load_scenario()


@pytest.fixture(scope="module")
def events(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    return generate_events(scenario, SEED)


@pytest.fixture(scope="module")
def decoded(events: list[dict[str, Any]]) -> list[Event]:
    return event_batch_adapter.validate_json(json.dumps(events).encode())


@pytest.fixture(scope="module")
def delta(decoded: list[Event]) -> Contributions:
    return contributions_of(decoded)


@pytest.fixture(scope="module")
def window(scenario: dict[str, Any]) -> Window:
    return Window.of(scenario)


# --- the events are valid -----------------------------------------------------------------------


def test_events_pass_the_contract_rules_and_name_only_known_units(
    scenario: dict[str, Any], decoded: list[Event]
) -> None:
    tree = UnitTree.from_json(json.dumps(scenario["units"]))
    now = datetime.now(UTC)
    assert len(decoded) > 10_000
    for event in decoded:
        assert contract_problems(event, now) == [], event
        unit = unit_of(event)
        assert unit is None or unit in tree, event


def test_envelopes_use_the_contract_sources_and_local_time(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert event["specversion"] == "1.0"
        expected_source = QLVB if event["type"].startswith("vn.gov.qlvb.") else MOTCUA
        assert event["source"] == expected_source
        assert event["time"].endswith("+07:00")
        assert datetime.fromisoformat(event["time"]) <= YEAR_END
        for value in event["data"].values():
            if isinstance(value, str) and value.startswith("2023-"):
                assert value.endswith("+07:00")
                assert datetime.fromisoformat(value) <= YEAR_END


def test_event_time_is_the_moment_of_its_fact(decoded: list[Event]) -> None:
    for event in decoded:
        stamps = list(event.fact_timestamps().values())
        if stamps:
            assert stamps == [event.time], event


def test_ids_are_unique_per_source(events: list[dict[str, Any]]) -> None:
    identities = Counter((event["source"], event["id"]) for event in events)
    assert identities.most_common(1)[0][1] == 1


def test_dossiers_are_received_on_working_days_in_office_hours(decoded: list[Event]) -> None:
    for event in decoded:
        if event.type != "vn.gov.tthc.dossier.received":
            continue
        received_at = event.data.received_at.astimezone(LOCAL)
        assert is_working_day(received_at.date())
        assert time(7, 30) <= received_at.time() <= time(17, 0)
        assert event.data.due_at is not None and event.data.due_at.astimezone(LOCAL).time() == time(17, 0)


def test_same_seed_same_events_other_seed_other_events(scenario: dict[str, Any], events: list[dict[str, Any]]) -> None:
    assert generate_events(scenario, SEED) == events
    assert generate_events(scenario, SEED + 1) != events


# --- the figures are the report's ---------------------------------------------------------------


def test_town_figures_are_exactly_the_targets(scenario: dict[str, Any], delta: Contributions, window: Window) -> None:
    shown = figures(delta, TOWN, window)
    targets = scenario["targets"][TOWN]
    for group in ("dossiers", "documents", "procedures"):
        for name, value in targets[group].items():
            assert shown[group][name] == value, f"{group}.{name}"
    assert shown["dossiers"]["withdrawn"] == 0
    assert shown["documents"]["electronic"] == shown["documents"]["incoming"] + shown["documents"]["outgoing"]


def test_town_rates(delta: Contributions, window: Window) -> None:
    rates = figures(delta, TOWN, window)["rates"]
    assert rates["components_digitized"] == 0.8109
    assert rates["results_digitized"] == 0.8256
    assert rates["paid_online"] == 0.2607
    assert rates["signed_by_leader"] == 0.5021
    assert rates["resolved_on_time"] == 1.0
    assert rates["in_progress_overdue"] == 0.0


@pytest.mark.parametrize("unit", PILOTS)
def test_pilot_counts_and_rates(scenario: dict[str, Any], delta: Contributions, window: Window, unit: str) -> None:
    shown = figures(delta, unit, window)
    given = scenario["targets"][unit]
    for name, value in given.items():
        if isinstance(value, int):
            assert shown["dossiers"][name] == value, name
    for rate, (numerator, denominator) in PILOT_RATES.items():
        assert shown["rates"][rate] == round(given[numerator] / given[denominator], 4), rate
    dossiers = shown["dossiers"]
    assert dossiers["resolved"] >= max(dossiers["result_digitization_required"], dossiers["ratings"])


def test_minh_duc_rates_as_printed(delta: Contributions, window: Window) -> None:
    rates = figures(delta, "my-hao.minh-duc", window)["rates"]
    assert (rates["online"], rates["satisfaction"], rates["results_digitized"], rates["paid_online"]) == (
        0.9778,
        0.7792,
        0.5723,
        0.7805,
    )


def test_every_unit_shows_its_plan(scenario: dict[str, Any], delta: Contributions, window: Window) -> None:
    plan = plan_for(scenario, SEED)
    assert len(plan.units) == 14  # the town and its 13 wards and communes
    for unit, unit_plan in plan.units.items():
        assert differences(unit_plan.figures(), figures(delta, unit, window)) == [], unit


def test_the_demo_expects_what_the_core_computes_from_the_events(
    scenario: dict[str, Any], events: list[dict[str, Any]], delta: Contributions, window: Window
) -> None:
    expected = expected_figures(scenario, SEED, events)
    assert set(expected) == set(plan_for(scenario, SEED).units)
    for unit, unit_figures in expected.items():
        computed = figures(delta, unit, window)
        assert unit_figures == {group: computed[group] for group in unit_figures}, unit
        assert set(unit_figures["dossiers"]) == set(computed["dossiers"]), unit  # every dossier figure
    assert expected[TOWN]["dossiers"]["synced"] > 0  # the v2 facts are there to compare


def test_order_and_batches_do_not_matter(decoded: list[Event], delta: Contributions) -> None:
    shuffled = list(decoded)
    Random(7).shuffle(shuffled)
    states: dict[Any, State] = {}
    total = Contributions.empty()
    for start in range(0, len(shuffled), 1_000):
        batch = plan_batch(shuffled[start : start + 1_000], states)
        states.update(batch.states)
        add_into(total, batch.delta)
    assert total.daily == delta.daily
    assert total.levels == delta.levels


def test_an_inconsistent_target_is_refused(scenario: dict[str, Any]) -> None:
    broken = copy.deepcopy(scenario)
    broken["targets"][TOWN]["dossiers"]["received"] += 1  # received = resolved + in progress no longer holds
    with pytest.raises(ValueError, match="in the plan"):
        build_plan(broken, Random(SEED))


def test_decode_helper_validates(events: list[dict[str, Any]]) -> None:
    assert len(decode(events[:50])) == 50


# --- the client ---------------------------------------------------------------------------------


def _recording_client(answers: list[httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_client_posts_batches_and_retries_after_503(events: list[dict[str, Any]]) -> None:
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(202, json={"accepted": 2}),
        httpx.Response(503, headers={"Retry-After": "3"}, json={"status": 503}),
        httpx.Response(202, json={"accepted": 1}),
    ]
    sleeps: list[float] = []
    with _recording_client(answers, seen) as client:
        stats = post_events(events[:3], "http://intake", batch_size=2, client=client, sleep=sleeps.append)
    assert (stats.events, stats.requests, stats.retries, sleeps) == (3, 3, 1, [3.0])
    assert [len(json.loads(request.content)) for request in seen] == [2, 1, 1]
    assert seen[0].headers["authorization"] == "Bearer dev-intake-token"
    assert seen[0].headers["content-type"] == "application/cloudevents-batch+json"
    assert str(seen[0].url) == "http://intake/v1/events"


def test_client_raises_with_the_problem_body(events: list[dict[str, Any]]) -> None:
    problem = {"type": "about:blank", "title": "Invalid events", "status": 422, "detail": "bad"}
    with (
        _recording_client([httpx.Response(422, json=problem)], []) as client,
        pytest.raises(IntakeError, match="Invalid events") as raised,
    ):
        post_events(events[:1], "http://intake", client=client)
    assert raised.value.status == 422


def test_client_gives_up_after_bounded_503s(events: list[dict[str, Any]]) -> None:
    answers = [httpx.Response(503, headers={"Retry-After": "1"}) for _ in range(3)]
    with _recording_client(answers, []) as client, pytest.raises(IntakeError):
        post_events(events[:1], "http://intake", client=client, attempts=3, sleep=lambda _: None)


def test_retry_after_forms() -> None:
    now = datetime(2023, 11, 27, 8, 0, tzinfo=UTC)
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) == 1.0
    assert retry_after_seconds("Mon, 27 Nov 2023 08:00:05 GMT", now) == 5.0
    assert retry_after_seconds("soon") == 1.0


def test_window_ends_at_the_end_of_the_last_day(window: Window) -> None:
    assert window.start == date(2023, 1, 1)
    assert window.as_of == datetime(2023, 11, 27, 23, 59, 59, 999999, tzinfo=LOCAL)


# --- waiting for the figures --------------------------------------------------------------------


def _one_foreign_procedure() -> dict[str, Any]:
    return figure_groups({**dict.fromkeys(ALL_COUNTERS, 0), "procedures_full_online": 1})


def test_targets_accept_the_figures_alone_or_on_top_of_what_the_store_held(
    delta: Contributions, window: Window
) -> None:
    expected = figures(delta, TOWN, window)
    before = _one_foreign_procedure()
    targets = Targets.of(expected, before)
    assert targets.problems(expected) == ([], ALONE)
    assert targets.problems(combined(before, expected)) == ([], ON_TOP)
    assert targets.problems(before)[0]  # nothing applied yet
    rerun = Targets.of(expected, combined(before, expected))
    assert rerun.problems(combined(before, expected)) == ([], ALREADY)
    assert Targets.of(expected, None).candidates == ((ALONE, expected),)


def test_waiting_polls_until_every_unit_shows_its_figures(delta: Contributions, window: Window) -> None:
    expected = figures(delta, TOWN, window)
    bodies = [_one_foreign_procedure(), expected]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=bodies.pop(0) if len(bodies) > 1 else bodies[0])

    targets = {TOWN: Targets.of(expected, None)}
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        outcome = wait_for_figures(http, "http://reporting", window, targets, since=0.0, timeout=5.0)
    assert outcome.delay is not None and outcome.met == {ALONE}
    assert outcome.shown[TOWN] == expected
    assert seen[0] == indicators_url("http://reporting", TOWN, window)
    assert seen[0] == "http://reporting/v1/indicators?unit=my-hao&scope=self&from=2023-01-01&to=2023-11-27"


def test_waiting_reports_the_differences_at_the_timeout(delta: Contributions, window: Window) -> None:
    expected = figures(delta, TOWN, window)
    wrong = combined(_one_foreign_procedure(), expected)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=wrong)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        outcome = wait_for_figures(http, "http://r", window, {TOWN: Targets.of(expected, None)}, 0.0, timeout=0.0)
    assert outcome.delay is None
    assert "procedures.total: expected 226, got 227" in outcome.problems[TOWN]
