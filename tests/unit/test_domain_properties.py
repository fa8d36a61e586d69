"""Property tests of the pure core: random histories of dossiers, documents and procedures.

Histories mix corrections, events at the same time with different ids, orphans, confidential
documents and timestamps around local midnight written with various UTC offsets. The final states
and counters must not depend on order, repetition or batching, and the figures read from them must
equal the reference model's.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregator.domain import AggregateKey, Contributions, State
from services.aggregator.state_codec import load_state
from shared.events import Event
from tests.planning import add_into, dump_state, plan_batch
from tests.reference_model import event
from tests.unit.test_domain_cases import (
    core_figures,
    decode_all,
    fold,
    reference_figures,
    total_contributions,
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VIETNAM = timezone(timedelta(hours=7))
TICK = timedelta(microseconds=1)
UNITS = ("u1", "u2", "u3")
DAYS = [date(2023, 2, 27) + timedelta(days=n) for n in range(6)]  # 27 Feb .. 4 Mar


def _instants() -> list[datetime]:
    """A small pool, so that equal times are frequent: around local midnight and at noon."""
    result: list[datetime] = []
    for day in DAYS[1:5]:
        midnight = datetime(day.year, day.month, day.day, tzinfo=VIETNAM)
        result += [midnight - TICK, midnight, midnight + TICK, midnight + timedelta(hours=12)]
    return result


INSTANTS = _instants()
OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((7, 0), (0, 0), (-5, 0), (9, 30), (5, 45))]


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """An instant of the pool, written with one of several UTC offsets."""
    return draw(st.sampled_from(INSTANTS)).astimezone(draw(st.sampled_from(OFFSETS)))


def _maybe(draw: st.DrawFn, data: dict[str, Any], name: str) -> None:
    """Sets a boolean field that has a default, or leaves it out (then the default, true, applies)."""
    choice = draw(st.sampled_from([True, False, None]))
    if choice is not None:
        data[name] = choice


@st.composite
def dossier_spec(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    subject = draw(st.sampled_from(["d1", "d2"]))
    kind = draw(
        st.sampled_from(
            [
                "received",
                "received",
                "due_changed",
                "components_digitized",
                "resolved",
                "result_digitized",
                "paid",
                "withdrawn",
                "rated",
                "supplement_requested",
                "supplement_completed",
                "synced",
            ]
        )
    )
    data: dict[str, Any]
    match kind:
        case "received":
            received_at = draw(moments())
            due_at = draw(st.none() | moments())
            data = {
                "unit": draw(st.sampled_from(UNITS)),
                "procedure_code": draw(st.sampled_from(["P1", "P2"])),
                "channel": draw(st.sampled_from(["online", "direct", "postal"])),
                "received_at": received_at,
                "due_at": None if due_at is None else max(due_at, received_at),
                "fee_required": draw(st.booleans()),
            }
            _maybe(draw, data, "digitization_required")
        case "due_changed":
            data = {"due_at": draw(st.none() | moments())}
        case "components_digitized":
            data = {"digitized_at": draw(moments())}
            for flag in ("reused", "from_personal_store"):
                if draw(st.booleans()):
                    data[flag] = draw(st.booleans())
        case "result_digitized":
            data = {"digitized_at": draw(moments())}
        case "supplement_requested":
            data = {"requested_at": draw(moments())}
        case "supplement_completed":
            data = {"completed_at": draw(moments())}
        case "synced":
            data = {"synced_at": draw(moments())}
        case "resolved":
            data = {"resolved_at": draw(moments()), "outcome": draw(st.sampled_from(["approved", "rejected"]))}
            _maybe(draw, data, "result_digitization_required")
        case "paid":
            data = {
                "paid_at": draw(moments()),
                "method": draw(st.sampled_from(["online", "offline"])),
                "amount_vnd": draw(st.integers(0, 10**6)),
            }
        case "withdrawn":
            data = {"withdrawn_at": draw(moments())}
        case _:
            rating = draw(st.sampled_from(["very_satisfied", "satisfied", "dissatisfied"]))
            data = {"rated_at": draw(moments()), "rating": rating}
    return (f"dossier.{kind}", subject, data)


@st.composite
def document_spec(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    subject = draw(st.sampled_from(["doc1", "doc2"]))
    if draw(st.booleans()):
        data = {
            "unit": draw(st.sampled_from(UNITS)),
            "direction": draw(st.sampled_from(["incoming", "outgoing"])),
            "registered_at": draw(moments()),
            "electronic": draw(st.booleans()),
            "confidential": draw(st.sampled_from([False, False, True])),
        }
        return ("document.registered", subject, data)
    return (
        "document.signed",
        subject,
        {"signed_at": draw(moments()), "signer": draw(st.sampled_from(["leader", "organization"]))},
    )


@st.composite
def procedure_spec(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    subject = draw(st.sampled_from(["P1", "P2"]))
    unit = draw(st.sampled_from(UNITS[:2]))
    if draw(st.booleans()):
        level = draw(st.sampled_from(["info", "partial_online", "full_online"]))
        data: dict[str, Any] = {"unit": unit, "service_level": level, "published_at": draw(moments())}
        for flag in ("fee_bearing", "requires_paper_result"):
            if draw(st.booleans()):
                data[flag] = draw(st.booleans())
        return ("procedure.published", subject, data)
    return ("procedure.unpublished", subject, {"unit": unit, "unpublished_at": draw(moments())})


@st.composite
def histories(draw: st.DrawFn, max_size: int = 40) -> list[dict[str, Any]]:
    """Distinct events (distinct identities) of a few dossiers, documents and procedures."""
    specs = draw(
        st.lists(st.one_of(dossier_spec(), dossier_spec(), document_spec(), procedure_spec()), max_size=max_size)
    )
    # Distinct short ids, so equal times are often decided by the id, in string order.
    ids = draw(st.lists(st.text("abc1", min_size=1, max_size=3), min_size=len(specs), max_size=len(specs), unique=True))
    return [
        event(
            kind,
            subject,
            id=ident,
            time=draw(moments()),
            source=draw(st.sampled_from(["urn:a", "urn:b"])),
            **data,
        )
        for (kind, subject, data), ident in zip(specs, ids, strict=True)
    ]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Event]]:
    """A history, and the same events delivered shuffled with repeats."""
    history = draw(histories())
    repeats = draw(st.lists(st.sampled_from(history), max_size=10)) if history else []
    delivered = draw(st.permutations(history + repeats))
    return history, decode_all(delivered)


@st.composite
def windows(draw: st.DrawFn) -> tuple[date, date, datetime, frozenset[str]]:
    start, end = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=2)))
    as_of = draw(st.sampled_from(INSTANTS)) + draw(st.sampled_from([-TICK, timedelta(0), TICK]))
    units = draw(st.frozensets(st.sampled_from(UNITS), min_size=1))
    return start, end, as_of, units


def _split(events: list[Event], sizes: list[int]) -> list[list[Event]]:
    batches: list[list[Event]] = []
    rest = list(events)
    for size in sizes:
        if not rest:
            break
        batches.append(rest[:size])
        rest = rest[size:]
    if rest:
        batches.append(rest)
    return batches


def _apply_in_batches(batches: list[list[Event]]) -> tuple[dict[AggregateKey, State], Contributions]:
    """What the aggregator does: plan each batch against the states the previous ones left."""
    states: dict[AggregateKey, State] = {}
    total = Contributions.empty()
    for batch in batches:
        plan = plan_batch(batch, states)
        states.update(plan.states)
        add_into(total, plan.delta)
    return states, total


@PROPERTY_SETTINGS
@given(deliveries(), st.data())
def test_order_and_repetition_do_not_matter(delivery: tuple[list[dict[str, Any]], list[Event]], data: Any) -> None:
    history, delivered = delivery
    once = decode_all(history)
    other = data.draw(st.permutations(delivered))
    expected_states = fold(once)
    assert fold(delivered) == expected_states
    assert fold(other) == expected_states
    expected = total_contributions(expected_states.values())
    assert total_contributions(fold(delivered).values()) == expected
    assert total_contributions(fold(other).values()) == expected


@PROPERTY_SETTINGS
@given(deliveries(), st.lists(st.integers(1, 8), max_size=20))
def test_batches_of_any_size_equal_one_by_one(
    delivery: tuple[list[dict[str, Any]], list[Event]], sizes: list[int]
) -> None:
    history, delivered = delivery
    expected_states = fold(decode_all(history))
    expected = total_contributions(expected_states.values())

    one_by_one_states, one_by_one = _apply_in_batches([[item] for item in delivered])
    batched_states, batched = _apply_in_batches(_split(delivered, sizes))
    whole_states, whole = _apply_in_batches([delivered])

    assert one_by_one == batched == whole == expected
    assert one_by_one_states == batched_states == whole_states == expected_states


@PROPERTY_SETTINGS
@given(deliveries(), st.lists(windows(), min_size=1, max_size=4))
def test_figures_equal_the_reference_model(
    delivery: tuple[list[dict[str, Any]], list[Event]], cases: list[tuple[date, date, datetime, frozenset[str]]]
) -> None:
    history, delivered = delivery
    _states, total = _apply_in_batches([delivered])
    for start, end, as_of, units in cases:
        assert core_figures(total, start, end, as_of, units) == reference_figures(history, start, end, as_of, units)


@PROPERTY_SETTINGS
@given(deliveries())
def test_counters_never_go_negative(delivery: tuple[list[dict[str, Any]], list[Event]]) -> None:
    """Daily counts are counts; a level counter summed to any instant is a count too."""
    _history, delivered = delivery
    _states, total = _apply_in_batches([[item] for item in delivered])
    assert all(value > 0 for value in total.daily.values())
    running: dict[tuple[str, str], int] = {}
    for (unit, counter, _at), value in sorted(total.levels.items(), key=lambda item: item[0][2]):
        running[(unit, counter)] = running.get((unit, counter), 0) + value
        assert running[(unit, counter)] >= 0


@PROPERTY_SETTINGS
@given(deliveries())
def test_every_state_survives_its_stored_form(delivery: tuple[list[dict[str, Any]], list[Event]]) -> None:
    """States (v2 facts, flags and catalogue entries included) are stored as JSON and read back equal."""
    _history, delivered = delivery
    for key, state in fold(delivered).items():
        assert load_state(key, dump_state(state)) == state
