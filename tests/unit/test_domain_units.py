"""The core's stored units across a reorganization (contract §1.1), with a registry resolver (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.aggregator.domain import Contributions, UnitPlacement, contributions, unit_end
from tests.planning import is_empty, plan_batch
from tests.unit.test_domain_cases import decode_all, fold, published, received, resolved, simple, unpublished

REFORM = date(2025, 7, 1)


def reform_registry(code: str, day: date) -> UnitPlacement:
    """Unit "u1" until 30 June 2025 (it then ends), a new "u1" (code reused) from 1 July 2025."""
    if day < REFORM:
        return UnitPlacement(code, unit_end(REFORM) if code == "u1" else None)
    return UnitPlacement(f"{code}@{REFORM}", None)


def delta_of(raws: list[dict], prior: dict | None = None) -> Contributions:
    plan = plan_batch(decode_all(raws), prior or {}, units=reform_registry)
    return plan.delta


def test_a_dossier_counts_in_the_unit_valid_on_its_received_day() -> None:
    before = delta_of([received(id="a", at="2025-06-30T16:00:00+07:00", due=None)])
    after = delta_of([received(id="a", at="2025-07-01T08:00:00+07:00", due=None)])
    assert before.daily[("u1", "received", date(2025, 6, 30))] == 1
    assert after.daily[("u1@2025-07-01", "received", date(2025, 7, 1))] == 1


def test_a_correction_across_the_reform_moves_the_dossier() -> None:
    first = decode_all([received(id="a", at="2025-06-30T16:00:00+07:00", due=None)])
    states = plan_batch(first, {}, units=reform_registry).states
    moved = delta_of(
        [received(id="b", at="2025-07-02T08:00:00+07:00", due=None, time="2025-07-03T08:00:00+07:00")], states
    )
    assert moved.daily[("u1", "received", date(2025, 6, 30))] == -1
    assert moved.daily[("u1@2025-07-01", "received", date(2025, 7, 2))] == 1


def test_a_dossier_of_an_ended_unit_stays_in_it_until_resolved_after_the_reform() -> None:
    delta = delta_of(
        [
            received(id="a", at="2025-06-20T08:00:00+07:00", due=None),
            resolved(id="r", at="2025-07-10T08:00:00+07:00"),
        ]
    )
    assert delta.daily[("u1", "resolved", date(2025, 7, 10))] == 1
    assert delta.levels[("u1", "in_progress", datetime(2025, 7, 10, 1, tzinfo=UTC))] == -1


def test_a_procedure_stops_counting_when_its_unit_ends() -> None:
    (state,) = fold(decode_all([published(id="p", at="2024-01-01T08:00:00+07:00", level="full_online")])).values()
    levels = contributions(state, reform_registry).levels
    end = datetime(2025, 6, 30, 17, tzinfo=UTC)  # 1 July 2025 00:00 +07:00
    assert levels[("u1", "procedures_full_online", end)] == -1
    assert levels[("u1", "procedures_full_online", datetime(2024, 1, 1, 1, tzinfo=UTC))] == 1
    assert not any(key[0] == "u1@2025-07-01" for key in levels)


def test_the_new_unit_with_the_reused_code_counts_its_own_publication_only() -> None:
    events = [
        published(id="p1", at="2024-01-01T08:00:00+07:00", level="info"),
        published(id="p2", at="2025-08-01T08:00:00+07:00", level="partial_online"),
        unpublished(id="p3", at="2025-09-01T08:00:00+07:00"),
    ]
    (state,) = fold(decode_all(events)).values()
    delta = contributions(state, reform_registry)
    new = {k: v for k, v in delta.levels.items() if k[0] == "u1@2025-07-01"}
    assert new == {
        ("u1@2025-07-01", "procedures_partial_online", datetime(2025, 8, 1, 1, tzinfo=UTC)): 1,
        ("u1@2025-07-01", "procedures_partial_online", datetime(2025, 9, 1, 1, tzinfo=UTC)): -1,
    }
    august, september = datetime(2025, 8, 1, 1, tzinfo=UTC), datetime(2025, 9, 1, 1, tzinfo=UTC)
    assert delta.procedure_periods == {("u1@2025-07-01", "P1", august, september, True, False): 1}


def test_documents_count_in_the_unit_of_their_registration_day() -> None:
    from tests.unit.test_domain_cases import registered

    delta = delta_of([registered(id="d", at="2025-07-01T00:00:00+07:00")])
    assert {key[0] for key in delta.daily} == {"u1@2025-07-01"}
    delta = delta_of([registered(id="d", at="2025-06-30T23:59:59+07:00")])
    assert {key[0] for key in delta.daily} == {"u1"}


def test_without_a_registry_every_code_is_its_own_unit() -> None:
    delta = plan_batch(decode_all([simple("dossier.synced", id="s", at="2025-07-01T08:00:00+07:00")]), {}).delta
    assert is_empty(delta)  # an orphan until received
