"""The Decision 766 reference (tests/reference_index766.py) on small hand-made streams, and the product's
scoring against it.

Every expected count and score below is worked out by hand from the words of contract §5.1.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.index766 import load_formula, render_index, score
from tests import reference_index766 as ref
from tests.reference_index766 import VIETNAM, Counts, event

MARCH = (date(2024, 3, 1), date(2024, 3, 31))
END_OF_MARCH = datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=VIETNAM)
MID_MARCH = datetime(2024, 3, 20, 12, 0, tzinfo=VIETNAM)
UNITS = {"xa-a"}
_ids = itertools.count(1)


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=VIETNAM)


def _id() -> str:
    return f"e{next(_ids)}"


def received(
    dossier: str,
    when: datetime,
    *,
    due: datetime | None = None,
    unit: str = "xa-a",
    code: str = "P1",
    channel: str = "direct",
    fee: bool = False,
    digitization_required: bool = True,
) -> dict[str, Any]:
    return event(
        "dossier.received",
        dossier,
        id=_id(),
        unit=unit,
        procedure_code=code,
        channel=channel,
        received_at=when,
        due_at=due,
        fee_required=fee,
        digitization_required=digitization_required,
    )


def resolved(
    dossier: str, when: datetime, *, result_required: bool = True, time: datetime | None = None
) -> dict[str, Any]:
    return event(
        "dossier.resolved",
        dossier,
        id=_id(),
        time=time,
        resolved_at=when,
        outcome="approved",
        result_digitization_required=result_required,
    )


def withdrawn(dossier: str, when: datetime) -> dict[str, Any]:
    return event("dossier.withdrawn", dossier, id=_id(), withdrawn_at=when)


def due_changed(dossier: str, due: datetime | None, time: datetime) -> dict[str, Any]:
    return event("dossier.due_changed", dossier, id=_id(), time=time, due_at=due)


def supplement(
    dossier: str, when: datetime, *, id: str | None = None, source: str = ref.DEFAULT_SOURCE
) -> dict[str, Any]:
    return event("dossier.supplement_requested", dossier, id=id or _id(), source=source, requested_at=when)


def completed(dossier: str, when: datetime) -> dict[str, Any]:
    return event("dossier.supplement_completed", dossier, id=_id(), completed_at=when)


def synced(dossier: str, when: datetime) -> dict[str, Any]:
    return event("dossier.synced", dossier, id=_id(), synced_at=when)


def digitized(dossier: str, when: datetime, *, reused: bool = False, personal: bool = False) -> dict[str, Any]:
    return event(
        "dossier.components_digitized",
        dossier,
        id=_id(),
        digitized_at=when,
        reused=reused,
        from_personal_store=personal,
    )


def result_digitized(dossier: str, when: datetime) -> dict[str, Any]:
    return event("dossier.result_digitized", dossier, id=_id(), digitized_at=when)


def paid(dossier: str, when: datetime, method: str = "online") -> dict[str, Any]:
    return event("dossier.paid", dossier, id=_id(), paid_at=when, method=method, amount_vnd=50000)


def rated(dossier: str, when: datetime, rating: str) -> dict[str, Any]:
    return event("dossier.rated", dossier, id=_id(), rated_at=when, rating=rating)


def published(
    code: str, when: datetime, level: str, *, unit: str = "xa-a", fee: bool = False, time: datetime | None = None
) -> dict[str, Any]:
    return event(
        "procedure.published",
        code,
        id=_id(),
        time=time,
        unit=unit,
        service_level=level,
        published_at=when,
        fee_bearing=fee,
    )


def unpublished(code: str, when: datetime, *, unit: str = "xa-a") -> dict[str, Any]:
    return event("procedure.unpublished", code, id=_id(), unit=unit, unpublished_at=when)


def document(document_id: str, when: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": _id(),
        "source": ref.DEFAULT_SOURCE,
        "type": "vn.gov.qlvb.document.registered",
        "time": when.isoformat(),
        "subject": document_id,
        "data": {
            "document_id": document_id,
            "unit": "xa-a",
            "direction": "incoming",
            "registered_at": when.isoformat(),
            "electronic": True,
            "confidential": False,
        },
    }


def counts(events: Iterable[dict[str, Any]], as_of: datetime = END_OF_MARCH, units: set[str] = UNITS) -> Counts:
    return ref.count(events, *MARCH, as_of, units)


def nonzero(found: Counts) -> dict[str, int]:
    return {name: value for name, value in found.as_dict().items() if value}


# --- a commune's month, every component by hand ---------------------------------------------------


def commune_month() -> list[dict[str, Any]]:
    return [
        # Procedures of xa-a: P1 full online, fee-bearing; P2 partial online; P3 info, fee-bearing;
        # P4 unpublished before as_of; P5 published after as_of. P6 belongs to another unit.
        published("P1", at(1, 1), "full_online", fee=True),
        published("P2", at(1, 1), "partial_online"),
        published("P3", at(1, 1), "info", fee=True),
        published("P4", at(1, 1), "full_online"),
        unpublished("P4", at(2, 1)),
        published("P5", at(4, 5), "full_online"),
        published("P6", at(1, 1), "full_online", unit="xa-b", fee=True),
        # D1: online, on time, synced, paid online, reused components, e-result.
        received("D1", at(3, 2), due=at(3, 9), code="P1", channel="online", fee=True),
        synced("D1", at(3, 2, 10)),
        paid("D1", at(3, 2, 11)),
        digitized("D1", at(3, 2, 12), reused=True),
        resolved("D1", at(3, 8)),
        result_digitized("D1", at(3, 8, 10)),
        rated("D1", at(3, 9), "satisfied"),
        # D2: direct, late, paid offline, components from the personal store, result not digitized;
        # rated dissatisfied, then corrected to satisfied.
        received("D2", at(3, 3), due=at(3, 10), code="P1", fee=True),
        paid("D2", at(3, 3, 10), method="offline"),
        digitized("D2", at(3, 3, 11), personal=True),
        resolved("D2", at(3, 12)),
        rated("D2", at(3, 13), "dissatisfied"),
        rated("D2", at(3, 14), "satisfied"),
        # D3: in progress, not yet due, synced; two supplement requests would make it late: one only.
        received("D3", at(3, 5), due=at(4, 10), code="P2"),
        synced("D3", at(3, 5, 10)),
        supplement("D3", at(3, 6)),
        completed("D3", at(3, 7)),
        # D4: online, fee, paid offline, synced, digitized, in progress and overdue at as_of.
        received("D4", at(3, 6), due=at(3, 20), code="P3", channel="online", fee=True),
        synced("D4", at(3, 6, 10)),
        paid("D4", at(3, 6, 11), method="offline"),
        digitized("D4", at(3, 6, 12)),
        # D5: received before W, resolved late in W (no result to digitize), rated dissatisfied in W.
        received("D5", at(2, 20), due=at(3, 1), code="P1", channel="online"),
        resolved("D5", at(3, 2), result_required=False),
        rated("D5", at(3, 3), "dissatisfied"),
        # D6: another unit.
        received("D6", at(3, 4), due=at(4, 30), unit="xa-b", code="P6", channel="online", fee=True),
        synced("D6", at(3, 4, 10)),
        # D7: online, synced, withdrawn before its due date.
        received("D7", at(3, 10), due=at(3, 20), code="P2", channel="online"),
        synced("D7", at(3, 10, 10)),
        withdrawn("D7", at(3, 11)),
        # Documents play no part.
        document("V1", at(3, 4)),
    ]


COMMUNE_COUNTS = {
    "received": 5,  # D1 D2 D3 D4 D7
    "received_online": 3,  # D1 D4 D7
    "synced": 4,  # D1 D3 D4 D7
    "components_reused": 1,  # D1
    "components_from_personal_store": 1,  # D2
    "fee_required": 3,  # D1 D2 D4
    "paid_online": 1,  # D1
    "digitized_complete": 2,  # D1 (e-result), D4 (open); not D2 (resolved, no e-result)
    "resolved": 3,  # D1 D2 D5
    "resolved_late": 2,  # D2 D5
    "result_digitization_required": 2,  # D1 D2
    "results_digitized": 1,  # D1
    "in_progress": 2,  # D3 D4
    "in_progress_overdue": 1,  # D4
    "ratings_dissatisfied": 1,  # D5 (D2's winning rating is satisfied)
    "handled": 6,  # D1 D2 D5 D7 ended in W, D3 D4 open
    "handled_on_time": 3,  # D1 D7 by their due dates, D3 open and not due
    "procedures": 3,  # P1 P2 P3
    "procedures_online": 2,  # P1 P2
    "procedures_online_used": 2,  # P1 (D1), P2 (D7)
    "procedures_fee_bearing": 2,  # P1 P3
    "procedures_fee_bearing_with_fee_data": 2,  # P1 (D1), P3 (D4)
    "procedures_fee_bearing_paid_online": 1,  # P1 (D1)
}

# code -> (numerator, denominator, ratio, score)
COMMUNE_ROWS = {
    "1.4": (4, 5, 0.8, 4.80),
    "2.1": (3, 6, 0.5, 10.00),
    "3.1": (2, 3, 0.6667, 1.67),  # 2 × (2/3) / 0.8
    "3.2": (2, 2, 1.0, 4.00),
    "3.3": (3, 5, 0.48, 5.76),  # (3/5 × 4/5) = 0.48 < 0.5: 6 × 0.48 / 0.5
    "3.5a": (2, 2, 1.0, 2.00),
    "3.5b": (1, 2, 0.5, 1.25),  # 2 × 0.5 / 0.8
    "3.6": (1, 3, 0.3333, 2.00),
    "4.1": (1, 2, 0.5, 3.00),
    "4.2": (2, 5, 0.4, 1.60),
    "4.3": (1, 5, 0.2, 0.50),  # 2 × 0.2 / 0.8
    "4.4": (1, 5, 0.2, 0.80),
    "5.4": (3, 5, 0.2, 1.33),  # 1 − (3/5 + 1/5); 6 × 0.2 / 0.9
}


def test_commune_month_counts() -> None:
    assert counts(commune_month()).as_dict() == COMMUNE_COUNTS


def test_commune_month_scores() -> None:
    result = ref.index766(commune_month(), *MARCH, END_OF_MARCH, UNITS)
    assert result.rows() == COMMUNE_ROWS
    assert result.components["3.3"].parts == ((3, 5), (4, 5))
    assert result.components["5.4"].parts == ((3, 5), (1, 5))
    assert result.score == Decimal("38.71")
    assert result.computable_points == 70


def test_commune_month_of_the_other_unit() -> None:
    # xa-b: D6 online, synced, fee, open and not due; P6 full online, fee-bearing, with fee data.
    assert nonzero(counts(commune_month(), units={"xa-b"})) == {
        "received": 1,
        "received_online": 1,
        "synced": 1,
        "fee_required": 1,
        "in_progress": 1,
        "handled": 1,
        "handled_on_time": 1,
        "procedures": 1,
        "procedures_online": 1,
        "procedures_online_used": 1,
        "procedures_fee_bearing": 1,
        "procedures_fee_bearing_with_fee_data": 1,
    }


def test_repeated_events_change_nothing() -> None:
    stream = commune_month()
    assert counts(stream + stream[::-1]).as_dict() == COMMUNE_COUNTS


# --- 2.1, one dossier at a time (as_of = 20 March, 12:00; W = March) -----------------------------

AS_OF = MID_MARCH
HANDLED: list[tuple[str, list[dict[str, Any]], int, int]] = [
    ("ended before W", [received("d", at(2, 10), due=at(2, 20)), resolved("d", at(2, 15))], 0, 0),
    ("received before W, ended on time in W", [received("d", at(2, 25), due=at(3, 5)), resolved("d", at(3, 4))], 1, 1),
    ("ended late in W", [received("d", at(3, 1), due=at(3, 5)), resolved("d", at(3, 6))], 1, 0),
    ("ended exactly at due_at", [received("d", at(3, 1), due=at(3, 5)), resolved("d", at(3, 5))], 1, 1),
    ("ended, no due date", [received("d", at(3, 1)), resolved("d", at(3, 10))], 1, 1),
    ("open, not yet due", [received("d", at(3, 1), due=at(3, 25))], 1, 1),
    ("open, due exactly at as_of: not overdue", [received("d", at(3, 1), due=AS_OF)], 1, 1),
    ("open, overdue", [received("d", at(2, 1), due=at(3, 10))], 1, 0),
    ("open since before W", [received("d", at(1, 10), due=at(4, 1))], 1, 1),
    ("open, no due date", [received("d", at(3, 1))], 1, 1),
    ("ends after as_of: open, not due", [received("d", at(3, 1), due=at(3, 25)), resolved("d", at(3, 22))], 1, 1),
    ("ends after as_of: open, overdue", [received("d", at(3, 1), due=at(3, 15)), resolved("d", at(3, 22))], 1, 0),
    (
        "ends after as_of and after due_at: open and not due at as_of",
        [received("d", at(3, 1), due=at(3, 21)), resolved("d", at(3, 22))],
        1,
        1,
    ),
    ("received after as_of", [received("d", at(3, 21), due=at(3, 25))], 0, 0),
    (
        "two supplement requests: late though on time",
        [
            received("d", at(3, 1), due=at(3, 25)),
            supplement("d", at(3, 2)),
            supplement("d", at(3, 3)),
            resolved("d", at(3, 10)),
        ],
        1,
        0,
    ),
    (
        "two supplement requests: late though open and not due",
        [received("d", at(3, 1), due=at(3, 25)), supplement("d", at(3, 2)), supplement("d", at(3, 3))],
        1,
        0,
    ),
    (
        "a second request after as_of still counts",
        [received("d", at(3, 1), due=at(3, 25)), supplement("d", at(3, 2)), supplement("d", at(3, 20, 13))],
        1,
        0,
    ),
    (
        "one supplement request",
        [received("d", at(3, 1), due=at(3, 25)), supplement("d", at(3, 2)), resolved("d", at(3, 10))],
        1,
        1,
    ),
    (
        "one request sent twice is one request",
        [
            received("d", at(3, 1), due=at(3, 25)),
            supplement("d", at(3, 2), id="s1"),
            supplement("d", at(3, 2), id="s1"),
        ],
        1,
        1,
    ),
    (
        "the same id from two sources is two requests",
        [
            received("d", at(3, 1), due=at(3, 25)),
            supplement("d", at(3, 2), id="s1"),
            supplement("d", at(3, 3), id="s1", source="urn:vn:test:other"),
        ],
        1,
        0,
    ),
    ("withdrawn in W before due", [received("d", at(3, 1), due=at(3, 10)), withdrawn("d", at(3, 4))], 1, 1),
    ("withdrawn in W after due", [received("d", at(3, 1), due=at(3, 10)), withdrawn("d", at(3, 14))], 1, 0),
    ("withdrawn before W", [received("d", at(2, 1), due=at(3, 10)), withdrawn("d", at(2, 10))], 0, 0),
    (
        "ended at the earlier of withdrawn and resolved",
        [received("d", at(3, 1), due=at(3, 5)), withdrawn("d", at(3, 4)), resolved("d", at(3, 6))],
        1,
        1,
    ),
    (
        "resolved before W, withdrawn in W: ended before W",
        [received("d", at(2, 1), due=at(3, 5)), resolved("d", at(2, 20)), withdrawn("d", at(3, 2))],
        0,
        0,
    ),
    (
        "a due_changed moves the deadline",
        [
            received("d", at(3, 1), due=at(3, 5)),
            due_changed("d", at(3, 12), time=at(3, 3)),
            resolved("d", at(3, 10)),
        ],
        1,
        1,
    ),
    (
        "the latest due_changed wins",
        [
            received("d", at(3, 1), due=at(3, 5)),
            due_changed("d", at(3, 12), time=at(3, 3)),
            due_changed("d", at(3, 8), time=at(3, 4)),
            resolved("d", at(3, 10)),
        ],
        1,
        0,
    ),
    (
        "a corrected resolution: the latest wins",
        [
            received("d", at(3, 1), due=at(3, 5)),
            resolved("d", at(3, 4), time=at(3, 8)),
            resolved("d", at(3, 8), time=at(3, 9)),
        ],
        1,
        0,
    ),
    (
        "ended 23:59 local on the last day before W",
        [received("d", at(2, 20), due=at(3, 25)), resolved("d", at(2, 29, 23, 59))],
        0,
        0,
    ),
    (
        "ended 17:30Z on 29 February: 1 March local",
        [
            received("d", at(2, 20), due=at(3, 25)),
            resolved("d", datetime(2024, 2, 29, 17, 30, tzinfo=UTC)),
        ],
        1,
        1,
    ),
    (
        "ended as written, before it was received",
        [received("d", at(3, 5), due=at(3, 25)), resolved("d", at(2, 20))],
        0,
        0,
    ),
    ("another unit", [received("d", at(3, 1), due=at(3, 25), unit="xa-b")], 0, 0),
    ("no received event yet", [resolved("d", at(3, 10)), supplement("d", at(3, 2))], 0, 0),
]


@pytest.mark.parametrize(("case", "stream", "handled", "on_time"), HANDLED, ids=[row[0] for row in HANDLED])
def test_handled_on_time(case: str, stream: list[dict[str, Any]], handled: int, on_time: int) -> None:
    found = counts(stream, as_of=AS_OF)
    assert (found.handled, found.handled_on_time) == (handled, on_time)


def test_handled_scores_linear() -> None:
    stream = [received("a", at(3, 1), due=at(3, 25)), received("b", at(2, 1), due=at(3, 10))]
    result = ref.index766(stream, *MARCH, AS_OF, UNITS)
    assert result.rows()["2.1"] == (1, 2, 0.5, 10.0)
    assert ref.index766([], *MARCH, AS_OF, UNITS).rows()["2.1"] == (0, 0, None, 20.0)


# --- procedures: 3.1, 3.2, 3.5 -------------------------------------------------------------------


def test_procedures_at_as_of() -> None:
    stream = [
        published("A", at(1, 1), "info"),
        published("A", at(2, 1), "full_online"),  # later: A is full online
        published("B", at(1, 1), "full_online"),
        unpublished("B", at(2, 1)),
        published("B", at(3, 1), "partial_online"),  # published again
        published("C", AS_OF, "full_online"),  # exactly at as_of: counts
        published("D", at(1, 1), "full_online"),
        unpublished("D", AS_OF),  # exactly at as_of: gone
        published("E", at(3, 21), "full_online"),  # after as_of
        published("F", at(1, 1), "info", unit="xa-b"),  # another unit
    ]
    found = counts(stream, as_of=AS_OF)
    assert (found.procedures, found.procedures_online) == (3, 3)
    rows = ref.index766(stream, *MARCH, AS_OF, UNITS).rows()
    assert rows["3.1"] == (3, 3, 1.0, 2.0)


def test_procedure_flags_come_from_the_winning_published_event() -> None:
    stream = [
        published("A", at(1, 1), "full_online", fee=True),
        published("A", at(2, 1), "info", fee=False),  # winning: not fee-bearing, not online
        published("B", at(1, 1), "info", fee=False),
        published("B", at(2, 1), "partial_online", fee=True),
        # a published event whose published_at is later but whose time is earlier loses
        published("C", at(2, 1), "info", fee=True, time=at(3, 2)),
        published("C", at(1, 1), "full_online", fee=False, time=at(3, 3)),
    ]
    found = counts(stream, as_of=AS_OF)
    assert (found.procedures, found.procedures_online, found.procedures_fee_bearing) == (3, 2, 1)


def test_online_procedures_used_match_unit_and_code() -> None:
    stream = [
        published("A", at(1, 1), "full_online"),
        published("B", at(1, 1), "partial_online"),
        published("C", at(1, 1), "full_online"),
        published("A", at(1, 1), "full_online", unit="xa-b"),
        published("I", at(1, 1), "info"),
        received("d1", at(3, 2), code="A", channel="online"),  # A used
        received("d2", at(3, 2), code="B", channel="direct"),  # B: not online
        received("d3", at(3, 2), code="C", channel="online", unit="xa-b"),  # C of xa-a: other unit's dossier
        received("d4", at(2, 2), code="C", channel="online"),  # before W
        received("d5", at(3, 2), code="I", channel="online"),  # info procedure: not in 3.2
    ]
    found = counts(stream, units={"xa-a", "xa-b"})
    assert (found.procedures_online, found.procedures_online_used) == (4, 1)
    assert ref.index766(stream, *MARCH, END_OF_MARCH, {"xa-a"}).rows()["3.2"] == (1, 3, 0.3333, 1.33)


def test_online_procedure_used_by_a_corrected_channel() -> None:
    stream = [
        published("A", at(1, 1), "full_online"),
        received("d1", at(3, 2), code="A", channel="direct"),
        event(
            "dossier.received",
            "d1",
            id=_id(),
            time=at(3, 3),
            unit="xa-a",
            procedure_code="A",
            channel="online",
            received_at=at(3, 2),
            due_at=None,
            fee_required=False,
        ),
    ]
    assert counts(stream).procedures_online_used == 1


def test_fee_bearing_procedures() -> None:
    stream = [
        published("A", at(1, 1), "info", fee=True),
        published("B", at(1, 1), "full_online", fee=True),
        published("C", at(1, 1), "full_online", fee=True),
        published("N", at(1, 1), "full_online", fee=False),
        # A: a synced dossier with a fee, paid offline -> fee data, not paid online
        received("a1", at(3, 2), code="A", fee=True),
        synced("a1", at(3, 2, 10)),
        paid("a1", at(3, 2, 11), method="offline"),
        # B: a dossier with a fee, not synced, paid online -> paid online only
        received("b1", at(3, 2), code="B", fee=True),
        paid("b1", at(3, 2, 11)),
        # C: a synced dossier without fee, paid online (3.5b asks only "paid online")
        received("c1", at(3, 2), code="C"),
        synced("c1", at(3, 2, 10)),
        paid("c1", at(3, 2, 11)),
        # C: a synced fee dossier received before W: not in W
        received("c2", at(2, 2), code="C", fee=True),
        synced("c2", at(2, 2, 10)),
        # N: not fee-bearing, whatever its dossiers
        received("n1", at(3, 2), code="N", fee=True),
        synced("n1", at(3, 2, 10)),
        paid("n1", at(3, 2, 11)),
    ]
    found = counts(stream)
    assert (
        found.procedures_fee_bearing,
        found.procedures_fee_bearing_with_fee_data,
        found.procedures_fee_bearing_paid_online,
    ) == (3, 1, 2)
    rows = ref.index766(stream, *MARCH, END_OF_MARCH, UNITS).rows()
    assert rows["3.5a"] == (1, 3, 0.3333, 0.83)  # 2 × (1/3) / 0.8 = 0.8333…
    assert rows["3.5b"] == (2, 3, 0.6667, 1.67)  # 2 × (2/3) / 0.8 = 1.6666…
    # §5's fee_required and paid_online (received in W): a1 b1 n1, of which b1 and n1 paid online.
    assert (found.fee_required, found.paid_online) == (3, 2)


# --- 3.3 ------------------------------------------------------------------------------------------


def test_online_share_times_the_sync_ratio() -> None:
    stream = [
        received("a", at(3, 1), channel="online"),
        received("b", at(3, 1), channel="online"),
        received("c", at(3, 1), channel="postal"),
        received("d", at(3, 1), channel="direct"),
        synced("a", at(3, 1, 10)),
        synced("c", at(3, 1, 10)),
        synced("d", at(3, 1, 10)),
        synced("d", at(3, 2, 10)),  # a second synced event: still one dossier
    ]
    result = ref.index766(stream, *MARCH, END_OF_MARCH, UNITS)
    # (2/4) × (3/4) = 0.375 < 0.5: 6 × 0.375 / 0.5 = 4.5
    assert result.rows()["3.3"] == (2, 4, 0.375, 4.5)
    assert result.rows()["1.4"] == (3, 4, 0.75, 4.5)


def test_online_share_of_nothing_received_scores_full_points() -> None:
    stream = [received("a", at(2, 1), channel="online"), synced("a", at(3, 1))]  # received before W
    assert ref.index766(stream, *MARCH, END_OF_MARCH, UNITS).rows()["3.3"] == (0, 0, None, 6.0)


# --- 4.x ------------------------------------------------------------------------------------------


def test_digitized_dossiers() -> None:
    stream = [
        # a: digitized, open -> counts
        received("a", at(3, 1)),
        digitized("a", at(3, 1, 10)),
        # b: digitized, resolved at or before as_of, result to digitize, none -> not
        received("b", at(3, 1)),
        digitized("b", at(3, 1, 10)),
        resolved("b", at(3, 5)),
        # c: digitized, resolved with an e-result -> counts
        received("c", at(3, 1)),
        digitized("c", at(3, 1, 10)),
        resolved("c", at(3, 5)),
        result_digitized("c", at(3, 5, 10)),
        # d: digitized, resolved, no result to digitize -> counts
        received("d", at(3, 1)),
        digitized("d", at(3, 1, 10)),
        resolved("d", at(3, 5), result_required=False),
        # e: not digitized -> not
        received("e", at(3, 1)),
        # f: digitized, resolved after as_of without e-result -> counts
        received("f", at(3, 1)),
        digitized("f", at(3, 1, 10)),
        resolved("f", at(3, 25)),
        # g: digitization not required, digitized all the same -> counts
        received("g", at(3, 1), digitization_required=False),
        digitized("g", at(3, 1, 10)),
        # h: e-result digitized after as_of: it is known, so it counts
        received("h", at(3, 1)),
        digitized("h", at(3, 1, 10)),
        resolved("h", at(3, 5)),
        result_digitized("h", at(3, 20, 13)),
        # i: digitized, received before W -> not in W
        received("i", at(2, 1)),
        digitized("i", at(2, 1, 10)),
    ]
    found = counts(stream, as_of=AS_OF)
    assert (found.digitized_complete, found.received) == (6, 8)  # a c d f g h of a..h
    assert ref.index766(stream, *MARCH, AS_OF, UNITS).rows()["4.2"] == (6, 8, 0.75, 3.0)
    # 4.1 (§5): resolved in W with a result to digitize: b c f h; digitized: c h.
    assert ref.index766(stream, *MARCH, AS_OF, UNITS).rows()["4.1"] == (2, 4, 0.5, 3.0)


def test_reuse_and_personal_store_flags() -> None:
    stream = [
        received("a", at(3, 1)),
        digitized("a", at(3, 1, 10)),
        digitized("a", at(3, 1, 11), reused=True),  # any event says so
        received("b", at(3, 1)),
        digitized("b", at(3, 1, 10), reused=True, personal=True),
        received("c", at(3, 1)),
        digitized("c", at(3, 1, 10), personal=True),
        received("d", at(3, 1)),
        received("e", at(2, 1)),
        digitized("e", at(2, 1, 10), reused=True, personal=True),  # before W
    ]
    rows = ref.index766(stream, *MARCH, END_OF_MARCH, UNITS).rows()
    assert rows["4.3"] == (2, 4, 0.5, 1.25)  # 2 × 0.5 / 0.8
    assert rows["4.4"] == (2, 4, 0.5, 2.0)


# --- 5.4 ------------------------------------------------------------------------------------------


def test_satisfaction_in_handling() -> None:
    stream = [
        received("a", at(3, 1), due=at(3, 5)),
        resolved("a", at(3, 4)),
        rated("a", at(3, 6), "very_satisfied"),
        received("b", at(3, 1), due=at(3, 5)),
        resolved("b", at(3, 7)),  # late
        rated("b", at(3, 8), "dissatisfied"),
        received("c", at(3, 1), due=at(3, 10)),  # in progress, overdue at as_of
        received("d", at(3, 1), due=at(4, 10)),  # in progress
        rated("d", at(3, 21), "dissatisfied"),  # rated in W after as_of: still rated in W
        received("e", at(3, 2)),
    ]
    found = counts(stream, as_of=AS_OF)
    # late: b resolved late, c overdue; of a b resolved and c d e in progress
    assert (found.resolved_late + found.in_progress_overdue, found.resolved + found.in_progress) == (2, 5)
    assert (found.ratings_dissatisfied, found.received) == (2, 5)
    # 1 − (2/5 + 2/5) = 0.2 < 0.9: 6 × 0.2 / 0.9 = 1.333…
    result = ref.index766(stream, *MARCH, AS_OF, UNITS)
    assert result.rows()["5.4"] == (2, 5, 0.2, 1.33)
    assert result.components["5.4"].parts == ((2, 5), (2, 5))


def test_satisfaction_clamped_at_zero() -> None:
    stream = [
        received("a", at(3, 1), due=at(3, 5)),
        resolved("a", at(3, 7)),
        rated("a", at(3, 8), "dissatisfied"),
    ]
    # 1 − (1/1 + 1/1) < 0: 0
    assert ref.index766(stream, *MARCH, END_OF_MARCH, UNITS).rows()["5.4"] == (1, 1, 0.0, 0.0)


def test_satisfaction_with_a_zero_denominator_scores_zero() -> None:
    nothing = ref.index766([], *MARCH, END_OF_MARCH, UNITS)
    assert nothing.rows()["5.4"] == (0, 0, None, 0.0)
    # handled but nothing received in W: the dissatisfied rate has a zero denominator
    before = [received("a", at(2, 1), due=at(4, 1)), resolved("a", at(3, 3))]
    assert ref.index766(before, *MARCH, END_OF_MARCH, UNITS).rows()["5.4"] == (0, 1, None, 0.0)


def test_nothing_at_all() -> None:
    result = ref.index766([], *MARCH, END_OF_MARCH, UNITS)
    assert result.score == Decimal("64.00")  # 70 computable points, 5.4 scores 0
    assert all(row[2] is None for row in result.rows().values())


def test_window_days_are_local() -> None:
    stream = [
        received("a", datetime(2024, 2, 29, 17, 30, tzinfo=UTC)),  # 1 March 00:30 local
        received("b", datetime(2024, 3, 31, 17, 30, tzinfo=UTC)),  # 1 April 00:30 local
        received("c", datetime(2024, 3, 1, 0, 0, tzinfo=timezone(timedelta(hours=9)))),  # 29 February local
    ]
    assert counts(stream, as_of=datetime(2024, 4, 2, tzinfo=VIETNAM)).received == 1


# --- the product's scoring agrees with the reference ----------------------------------------------

FORMULA = load_formula()


def product_rows(inputs: dict[str, int]) -> tuple[dict[str, tuple[Any, ...]], float, Any]:
    body = render_index(score(FORMULA, inputs))
    rows = {
        c["code"]: (c["numerator"], c["denominator"], c["ratio"], c["score"])
        for group in body["groups"]
        for c in group["components"]
        if c["computed"]
    }
    parts = {
        c["code"]: tuple((p["numerator"], p["denominator"]) for p in c["parts"])
        for group in body["groups"]
        for c in group["components"]
        if "parts" in c
    }
    return rows, body["score"], (parts, body["computable_points"])


def assert_product_agrees(result: ref.Reference766) -> None:
    rows, total, (parts, computable) = product_rows(result.counts.as_dict())
    assert rows == result.rows()
    assert total == float(result.score)
    assert computable == result.computable_points
    assert parts == {code: c.parts for code, c in result.components.items() if c.parts}


def separate(cases: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The streams of several one-dossier cases as one stream: each case its own dossier and ids."""
    merged = []
    for number, stream in enumerate(cases):
        for raw in stream:
            dossier = f"{raw['subject']}-{number}"
            merged.append(
                {
                    **raw,
                    "id": f"{raw['id']}-{number}",
                    "subject": dossier,
                    "data": {**raw["data"], "dossier_id": dossier},
                }
            )
    return merged


def test_separate_cases_add_up() -> None:
    found = counts(separate(case[1] for case in HANDLED), as_of=AS_OF)
    assert found.handled == sum(case[2] for case in HANDLED)
    assert found.handled_on_time == sum(case[3] for case in HANDLED)


@pytest.mark.parametrize(
    "stream",
    [commune_month(), [], separate(case[1] for case in HANDLED)],
    ids=["commune month", "nothing", "all handled cases"],
)
def test_product_scores_the_reference_counts_alike(stream: list[dict[str, Any]]) -> None:
    assert_product_agrees(ref.index766(stream, *MARCH, AS_OF, UNITS))


_COUNT = st.one_of(st.just(0), st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=10**6))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: _COUNT for name in Counts().as_dict()}))
def test_product_scores_any_counts_like_the_reference(values: dict[str, int]) -> None:
    assert_product_agrees(ref.scores(Counts(**values)))
