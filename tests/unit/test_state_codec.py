"""The stored form of aggregate states (services/aggregator/state_codec.py): compact, lossless, and
able to read the rows written in the earlier form before migration 0005."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.aggregator.domain import DossierState, State
from services.aggregator.state_codec import dump_state, load_state
from tests.reference_model import DEFAULT_SOURCE, event
from tests.unit.test_domain_cases import CASES, decode_all, fold, received, resolved, simple, t

# Texts the codec wrote before migration 0005, for the folded states of every case below (written by
# that codec's `dump_states` from these same events).
EARLIER_FORM = Path(__file__).parent / "data" / "states_before_0005.json"

# Every v2 fact and flag of a dossier, a fee-bearing catalogue entry, two sources, two offsets.
V2_EVENTS: list[dict[str, Any]] = [
    received(id="r1", fee=True, at="2023-03-10T09:00:00.123456+07:00"),
    simple(
        "dossier.components_digitized", id="c1", at="2023-03-10T09:10:00+07:00", reused=True, from_personal_store=True
    ),
    simple("dossier.paid", id="p1", at="2023-03-10T09:20:00+07:00", method="online", amount_vnd=50000),
    simple("dossier.supplement_requested", id="s1", at="2023-03-11T08:00:00+07:00"),
    simple("dossier.supplement_requested", id="s2", at="2023-03-12T08:00:00+07:00"),
    simple("dossier.supplement_completed", id="s3", at="2023-03-13T08:00:00+07:00"),
    simple("dossier.synced", id="y1", at="2023-03-13T09:00:00Z"),
    resolved(id="z1", at="2023-03-15T03:00:00Z"),
    simple("dossier.result_digitized", id="z2", at="2023-03-15T10:05:00+07:00"),
    simple("dossier.rated", id="z3", at="2023-03-15T12:00:00-05:00", rating="satisfied"),
    event("dossier.withdrawn", "d1", id="w1", source="urn:other:system", withdrawn_at=t("2023-03-16T08:00:00+07:00")),
    event(
        "procedure.published",
        "P9",
        id="q1",
        unit="u1",
        service_level="partial_online",
        fee_bearing=True,
        requires_paper_result=False,
        published_at=t("2023-03-01T08:00:00+07:00"),
    ),
]

NAMED_EVENTS = [(case.name, case.events) for case in CASES] + [("v2 facts", V2_EVENTS)]


def _folded(events: list[dict[str, Any]]) -> dict[tuple[str, str], State]:
    return fold(decode_all(events))  # type: ignore[return-value]


def _instants(value: Any) -> list[str]:
    """Every datetime inside a state, as text with its offset."""
    if isinstance(value, datetime):
        return [value.isoformat()]
    if isinstance(value, tuple | list | frozenset):
        return [text for item in sorted(value, key=repr) for text in _instants(item)]
    return []


@pytest.mark.parametrize(("name", "events"), NAMED_EVENTS, ids=[name for name, _ in NAMED_EVENTS])
def test_round_trip_keeps_every_instant_with_its_offset(name: str, events: list[dict[str, Any]]) -> None:
    for key, state in _folded(events).items():
        decoded = load_state(key, dump_state(state))  # type: ignore[arg-type]
        assert decoded == state
        assert _instants(decoded) == _instants(state)


def test_rows_of_the_earlier_form_read_as_the_same_states() -> None:
    earlier = json.loads(EARLIER_FORM.read_text())
    assert sorted(earlier) == sorted(name for name, _ in NAMED_EVENTS)
    for name, events in NAMED_EVENTS:
        states = _folded(events)
        stored = {(kind, key): text for kind, key, text in earlier[name]}
        assert set(stored) == set(states), name
        for key, state in states.items():
            decoded = load_state(key, stored[key])  # type: ignore[arg-type]
            assert decoded == state, name
            assert _instants(decoded) == _instants(state), name
            assert len(dump_state(decoded)) <= len(stored[key]), name


def test_the_compact_form_of_the_cases_is_a_fraction_of_the_earlier() -> None:
    earlier = json.loads(EARLIER_FORM.read_text())
    before = sum(len(text) for rows in earlier.values() for _kind, _key, text in rows)
    after = sum(len(dump_state(state)) for _name, events in NAMED_EVENTS for state in _folded(events).values())
    assert after < 0.8 * before


def test_a_dossier_lists_each_version_once_and_its_source_once() -> None:
    states = _folded(V2_EVENTS)
    state = states[("dossier", "d1")]
    assert isinstance(state, DossierState)
    raw = orjson.loads(dump_state(state))
    assert raw["v"][0][2] == DEFAULT_SOURCE
    assert [len(v) for v in raw["v"][1:]].count(3) == 1  # after the first, only the withdrawal names its source
    assert len(raw["v"]) == 7  # received (and its due date), resolved, withdrawn, rating, 3 supplement events
    assert raw["received"][0] == raw["due"][0] == 0
    assert raw["flags"] == 0b111111
    assert isinstance(raw["received"][4], int)  # +07:00: an integer
    assert raw["rating"][1] == "2023-03-15T12:00:00-05:00"  # another offset: kept as text
