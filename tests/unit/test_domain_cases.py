"""Tables of cases of the pure core (services/aggregator/domain.py), one row per rule of the contract.

Each row is a set of events, a window, an `as_of`, a set of units and the non-zero figures expected;
every other figure must be zero. The figures are read from the core's contributions the way the
reporting reads the stored counters, and checked against the reference model as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.aggregator.domain import (
    AggregateKey,
    Contributions,
    DossierState,
    State,
    aggregate_key,
    apply,
    contributions,
    initial_state,
)
from services.aggregator.state_codec import load_state
from shared.events import Event, decode_event
from tests import reference_model as ref
from tests.planning import add_into, dump_state, is_empty, plan_batch
from tests.reference_model import event

# --- reading the core like the reporting does ----------------------------------------------------

# Stored counter -> figure name (the reporting's mapping, restated from the contract's names).
_DAILY_FIGURES = {name: name for name in ref.DOSSIER_FIGURES if name not in ("in_progress", "in_progress_overdue")}
_DAILY_FIGURES |= {
    "documents_incoming": "incoming",
    "documents_outgoing": "outgoing",
    "documents_electronic": "electronic",
    "signed_by_organization": "signed_by_organization",
    "signed_by_leader": "signed_by_leader",
}
# Counters that only feed the Decision 766 index (checked against its own reference).
_INDEX_ONLY = {"received_digitized", "procedures_fee_bearing", "handled_ended", "handled_ended_on_time", "open_on_time"}
_LEVEL_FIGURES = {
    "in_progress": "in_progress",
    "in_progress_overdue": "in_progress_overdue",
    "procedures_info": "info",
    "procedures_partial_online": "partial_online",
    "procedures_full_online": "full_online",
}
ALL_FIGURES = (*ref.DOSSIER_FIGURES, *ref.DOCUMENT_FIGURES, *ref.PROCEDURE_FIGURES)


def core_figures(total: Contributions, start: date, end: date, as_of: datetime, units: Iterable[str]) -> dict[str, int]:
    """Window sums of the daily counters and level counters summed up to `as_of`, for `units`."""
    chosen = set(units)
    result = dict.fromkeys(ALL_FIGURES, 0)
    for (unit, counter, day), value in total.daily.items():
        if unit in chosen and start <= day <= end and counter not in _INDEX_ONLY:
            result[_DAILY_FIGURES[counter]] += value
    for (unit, counter, at), value in total.levels.items():
        if unit in chosen and at <= as_of and counter not in _INDEX_ONLY:
            result[_LEVEL_FIGURES[counter]] += value
    result["total"] = result["info"] + result["partial_online"] + result["full_online"]
    return result


def reference_figures(events: Iterable[Any], start: date, end: date, as_of: datetime, units: Iterable[str]) -> dict:
    groups = ref.figures(events, start, end, as_of, units)
    return {**groups["dossiers"], **groups["documents"], **groups["procedures"]}


def decode_all(raws: Iterable[Mapping[str, Any]]) -> list[Event]:
    return [decode_event(ref.to_json_bytes(raw)) for raw in raws]


def fold(events: Iterable[Event]) -> dict[AggregateKey, State]:
    """Final states, one event at a time."""
    states: dict[AggregateKey, State] = {}
    for item in events:
        key = aggregate_key(item)
        states[key] = apply(states.get(key) or initial_state(key), item)
    return states


def total_contributions(states: Iterable[State]) -> Contributions:
    total = Contributions.empty()
    for state in states:
        add_into(total, contributions(state))
    return total


# --- times ----------------------------------------------------------------------------------------


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


MARCH_1 = date(2023, 3, 1)
MARCH_31 = date(2023, 3, 31)
END_OF_MARCH = t("2023-03-31T23:59:59.999999+07:00")
TICK = timedelta(microseconds=1)


def received(
    dossier: str = "d1",
    *,
    id: str,
    at: str = "2023-03-10T09:00:00+07:00",
    time: str | None = None,
    unit: str = "u1",
    channel: str = "online",
    due: str | None = "2023-03-20T17:00:00+07:00",
    fee: bool = False,
    digitization: bool = True,
    procedure: str = "P1",
) -> dict[str, Any]:
    return event(
        "dossier.received",
        dossier,
        id=id,
        time=t(time) if time else None,
        unit=unit,
        procedure_code=procedure,
        channel=channel,
        received_at=t(at),
        due_at=t(due) if due else None,
        fee_required=fee,
        digitization_required=digitization,
    )


def due_changed(dossier: str = "d1", *, id: str, due: str | None, time: str) -> dict[str, Any]:
    return event("dossier.due_changed", dossier, id=id, time=t(time), due_at=t(due) if due else None)


def resolved(
    dossier: str = "d1",
    *,
    id: str,
    at: str = "2023-03-15T10:00:00+07:00",
    time: str | None = None,
    outcome: str = "approved",
    result_digitization: bool = True,
) -> dict[str, Any]:
    return event(
        "dossier.resolved",
        dossier,
        id=id,
        time=t(time) if time else None,
        resolved_at=t(at),
        outcome=outcome,
        result_digitization_required=result_digitization,
    )


def simple(kind: str, dossier: str = "d1", *, id: str, at: str, time: str | None = None, **data: Any) -> dict:
    """A dossier event whose only timestamp is its fact (digitized, paid, withdrawn, rated)."""
    fact = {
        "dossier.components_digitized": "digitized_at",
        "dossier.result_digitized": "digitized_at",
        "dossier.paid": "paid_at",
        "dossier.withdrawn": "withdrawn_at",
        "dossier.rated": "rated_at",
        "dossier.supplement_requested": "requested_at",
        "dossier.supplement_completed": "completed_at",
        "dossier.synced": "synced_at",
    }[kind]
    return event(kind, dossier, id=id, time=t(time) if time else None, **{fact: t(at)}, **data)


def registered(
    document: str = "doc1",
    *,
    id: str,
    at: str = "2023-03-05T08:00:00+07:00",
    time: str | None = None,
    unit: str = "u1",
    direction: str = "incoming",
    electronic: bool = True,
    confidential: bool = False,
) -> dict[str, Any]:
    return event(
        "document.registered",
        document,
        id=id,
        time=t(time) if time else None,
        unit=unit,
        direction=direction,
        registered_at=t(at),
        electronic=electronic,
        confidential=confidential,
    )


def signed(document: str = "doc1", *, id: str, at: str, signer: str, time: str | None = None) -> dict[str, Any]:
    return event("document.signed", document, id=id, time=t(time) if time else None, signed_at=t(at), signer=signer)


def published(
    code: str = "P1", *, id: str, at: str, level: str = "full_online", unit: str = "u1", time: str | None = None
) -> dict[str, Any]:
    return event(
        "procedure.published",
        code,
        id=id,
        time=t(time) if time else None,
        unit=unit,
        service_level=level,
        published_at=t(at),
    )


def unpublished(code: str = "P1", *, id: str, at: str, unit: str = "u1", time: str | None = None) -> dict[str, Any]:
    return event("procedure.unpublished", code, id=id, time=t(time) if time else None, unit=unit, unpublished_at=t(at))


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    events: list[dict[str, Any]]
    expected: dict[str, int]  # the non-zero figures; every other figure is 0
    start: date = MARCH_1
    end: date = MARCH_31
    as_of: datetime = END_OF_MARCH
    units: frozenset[str] = field(default_factory=lambda: frozenset({"u1"}))


# A dossier received 10 March (online, due 20 March, digitization required), still open at as_of.
OPEN = {"received": 1, "received_online": 1, "digitization_required": 1, "in_progress": 1, "in_progress_overdue": 1}
# The same, resolved on time on 15 March (result digitization required).
RESOLVED_ON_TIME = {
    "received": 1,
    "received_online": 1,
    "digitization_required": 1,
    "resolved": 1,
    "resolved_on_time": 1,
    "result_digitization_required": 1,
}
LATE = {**RESOLVED_ON_TIME, "resolved_on_time": 0, "resolved_late": 1}

CASES = [
    # -- corrections of a dossier's `received` facts: latest time, then greater id ---------------
    Case(
        "received.unit: the later event wins even with a smaller id",
        [received(id="b", unit="u1", time="2023-03-10T09:00:00+07:00"),
         received(id="a", unit="u2", time="2023-03-10T09:05:00+07:00")],
        OPEN, units=frozenset({"u2"}),
    ),
    Case(
        "received.unit: the earlier event leaves no count behind",
        [received(id="b", unit="u1", time="2023-03-10T09:00:00+07:00"),
         received(id="a", unit="u2", time="2023-03-10T09:05:00+07:00")],
        {}, units=frozenset({"u1"}),
    ),
    Case(
        "received.unit: equal time, the greater id wins",
        [received(id="b", unit="u2"), received(id="a", unit="u1")],
        OPEN, units=frozenset({"u2"}),
    ),
    Case(
        "received.unit: equal time, the smaller id loses",
        [received(id="b", unit="u2"), received(id="a", unit="u1")],
        {}, units=frozenset({"u1"}),
    ),
    Case(
        "received.channel: corrected to direct",
        [received(id="a", channel="online"), received(id="b", channel="direct", time="2023-03-10T10:00:00+07:00")],
        {**OPEN, "received_online": 0, "received_direct": 1},
    ),
    Case(
        "received.channel: equal time, greater id says postal",
        [received(id="z", channel="postal"), received(id="y", channel="online")],
        {**OPEN, "received_online": 0, "received_postal": 1},
    ),
    Case(
        "received.received_at: corrected from February into March",
        [received(id="a", at="2023-02-28T09:00:00+07:00"),
         received(id="b", at="2023-03-01T09:00:00+07:00", time="2023-03-02T09:00:00+07:00")],
        OPEN,
    ),
    Case(
        "received.received_at: corrected out of the window (still in progress at as_of)",
        [received(id="a", at="2023-03-01T09:00:00+07:00"),
         received(id="b", at="2023-02-28T09:00:00+07:00", time="2023-03-02T09:00:00+07:00")],
        {"in_progress": 1, "in_progress_overdue": 1},
    ),
    Case(
        "received.fee_required: corrected to false, the online payment no longer counts",
        [received(id="a", fee=True), received(id="b", fee=False, time="2023-03-10T09:30:00+07:00"),
         simple("dossier.paid", id="p", at="2023-03-10T09:10:00+07:00", method="online", amount_vnd=50000)],
        OPEN,
    ),
    Case(
        "received.fee_required: equal time, greater id says true; paid online",
        [received(id="a", fee=False), received(id="b", fee=True),
         simple("dossier.paid", id="p", at="2023-03-10T09:10:00+07:00", method="online", amount_vnd=50000)],
        {**OPEN, "fee_required": 1, "paid_online": 1},
    ),
    Case(
        "received.fee_required: paid offline is not paid online",
        [received(id="a", fee=True),
         simple("dossier.paid", id="p", at="2023-03-10T09:10:00+07:00", method="offline", amount_vnd=50000)],
        {**OPEN, "fee_required": 1},
    ),
    Case(
        "received.digitization_required: corrected to false",
        [received(id="a", digitization=True), received(id="b", digitization=False, time="2023-03-11T09:00:00+07:00"),
         simple("dossier.components_digitized", id="c", at="2023-03-10T09:30:00+07:00")],
        {**OPEN, "digitization_required": 0},
    ),
    Case(
        "received.digitization_required: components digitized before the correction to true",
        [simple("dossier.components_digitized", id="c", at="2023-03-10T09:30:00+07:00"),
         received(id="a", digitization=False), received(id="b", digitization=True, time="2023-03-11T09:00:00+07:00")],
        {**OPEN, "components_digitized": 1},
    ),
    # -- due_at: `received` and `due_changed` taken together -------------------------------------
    Case(
        "due_changed extends the deadline: resolved on time",
        [received(id="a", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="b", due="2023-03-20T17:00:00+07:00", time="2023-03-11T08:00:00+07:00"),
         resolved(id="c")],
        RESOLVED_ON_TIME,
    ),
    Case(
        "due_changed shortens the deadline: resolved late",
        [received(id="a"), due_changed(id="b", due="2023-03-14T17:00:00+07:00", time="2023-03-11T08:00:00+07:00"),
         resolved(id="c")],
        LATE,
    ),
    Case(
        "a received correction later than the due_changed sets due_at again",
        [received(id="a", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="b", due="2023-03-20T17:00:00+07:00", time="2023-03-11T08:00:00+07:00"),
         received(id="d", due="2023-03-13T17:00:00+07:00", time="2023-03-12T08:00:00+07:00"),
         resolved(id="c")],
        LATE,
    ),
    Case(
        "due_changed older than the received event loses",
        [received(id="a", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="b", due="2023-03-20T17:00:00+07:00", time="2023-03-09T08:00:00+07:00"),
         resolved(id="c")],
        LATE,
    ),
    Case(
        "due_changed at the received event's time with a greater id wins",
        [received(id="a", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="b", due="2023-03-20T17:00:00+07:00", time="2023-03-10T09:00:00+07:00"),
         resolved(id="c")],
        RESOLVED_ON_TIME,
    ),
    Case(
        "due_changed at the received event's time with a smaller id loses",
        [received(id="b", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="a", due="2023-03-20T17:00:00+07:00", time="2023-03-10T09:00:00+07:00"),
         resolved(id="c")],
        LATE,
    ),
    Case(
        "due_changed to no deadline: on time, and never overdue",
        [received(id="a", due="2023-03-12T17:00:00+07:00"),
         due_changed(id="b", due=None, time="2023-03-11T08:00:00+07:00")],
        {**OPEN, "in_progress_overdue": 0},
    ),
    Case(
        "resolved exactly at due_at is on time",
        [received(id="a", due="2023-03-15T10:00:00+07:00"), resolved(id="c", at="2023-03-15T10:00:00+07:00")],
        RESOLVED_ON_TIME,
    ),
    Case(
        "resolved one microsecond after due_at is late",
        [received(id="a", due="2023-03-15T10:00:00+07:00"), resolved(id="c", at="2023-03-15T10:00:00.000001+07:00")],
        LATE,
    ),
    # -- resolved facts ----------------------------------------------------------------------------
    Case(
        "resolved.resolved_at: corrected into April, so still in progress at the end of March",
        [received(id="a", due=None), resolved(id="c", at="2023-03-15T10:00:00+07:00"),
         resolved(id="d", at="2023-04-02T10:00:00+07:00", time="2023-04-02T10:00:00+07:00")],
        {**OPEN, "in_progress_overdue": 0},
    ),
    Case(
        "resolved.result_digitization_required: corrected to false",
        [received(id="a"), resolved(id="c"),
         resolved(id="d", result_digitization=False, time="2023-03-16T10:00:00+07:00"),
         simple("dossier.result_digitized", id="e", at="2023-03-15T11:00:00+07:00")],
        {**RESOLVED_ON_TIME, "result_digitization_required": 0},
    ),
    Case(
        "resolved: equal time, the greater id's resolved_at wins",
        [received(id="a"), resolved(id="c", at="2023-03-25T10:00:00+07:00", time="2023-03-16T10:00:00+07:00"),
         resolved(id="d", at="2023-03-15T10:00:00+07:00", time="2023-03-16T10:00:00+07:00"),
         simple("dossier.result_digitized", id="e", at="2023-03-15T11:00:00+07:00")],
        {**RESOLVED_ON_TIME, "results_digitized": 1},
    ),
    # -- withdrawn ---------------------------------------------------------------------------------
    Case(
        "withdrawn ends in_progress and still counts as received",
        [received(id="a"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00")],
        {**OPEN, "in_progress": 0, "in_progress_overdue": 0, "withdrawn": 1},
    ),
    Case(
        "withdrawn after as_of: still in progress at as_of",
        [received(id="a"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00")],
        {"in_progress": 1},
        as_of=t("2023-03-11T10:00:00+07:00"), start=date(2023, 4, 1), end=date(2023, 4, 1),
    ),
    Case(
        "withdrawn exactly at as_of: not in progress",
        [received(id="a"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00")],
        {"received": 1, "received_online": 1, "digitization_required": 1, "withdrawn": 1},
        as_of=t("2023-03-12T03:00:00Z"),
    ),
    Case(
        "withdrawn_at: later correction moves it out of the window",
        [received(id="a"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00"),
         simple("dossier.withdrawn", id="v", at="2023-04-01T10:00:00+07:00", time="2023-04-01T10:00:00+07:00")],
        OPEN,
    ),
    Case(
        "withdrawn_at: equal time, greater id",
        [received(id="a"),
         simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00", time="2023-03-12T10:00:00+07:00"),
         simple("dossier.withdrawn", id="v", at="2023-04-01T10:00:00+07:00", time="2023-03-12T10:00:00+07:00")],
        {**OPEN, "in_progress": 0, "in_progress_overdue": 0, "withdrawn": 1},
    ),
    # -- rated -------------------------------------------------------------------------------------
    Case(
        "rating: corrected from dissatisfied to satisfied",
        [received(id="a"), resolved(id="c"),
         simple("dossier.rated", id="r1", at="2023-03-16T10:00:00+07:00", rating="dissatisfied"),
         simple("dossier.rated", id="r0", at="2023-03-17T10:00:00+07:00", rating="satisfied")],
        {**RESOLVED_ON_TIME, "ratings": 1, "ratings_satisfied": 1},
    ),
    Case(
        "rating: equal time, the greater id's dissatisfied wins",
        [received(id="a"), resolved(id="c"),
         simple("dossier.rated", id="r1", at="2023-03-16T10:00:00+07:00", rating="dissatisfied"),
         simple("dossier.rated", id="r0", at="2023-03-16T10:00:00+07:00", rating="very_satisfied")],
        {**RESOLVED_ON_TIME, "ratings": 1},
    ),
    Case(
        "rated_at: the winning rating lies outside the window",
        [received(id="a"), resolved(id="c"),
         simple("dossier.rated", id="r1", at="2023-03-16T10:00:00+07:00", rating="satisfied"),
         simple("dossier.rated", id="r2", at="2023-04-01T10:00:00+07:00", rating="satisfied")],
        RESOLVED_ON_TIME,
    ),
    # -- in progress and overdue at as_of ------------------------------------------------------------
    Case(
        "overdue: due_at < as_of",
        [received(id="a", due="2023-03-20T17:00:00+07:00")],
        {"in_progress": 1, "in_progress_overdue": 1},
        as_of=t("2023-03-20T17:00:00.000001+07:00"), start=date(2023, 4, 1), end=date(2023, 4, 1),
    ),
    Case(
        "not overdue: due_at == as_of",
        [received(id="a", due="2023-03-20T17:00:00+07:00")],
        {"in_progress": 1},
        as_of=t("2023-03-20T10:00:00Z"), start=date(2023, 4, 1), end=date(2023, 4, 1),
    ),
    Case(
        "in progress from received_at itself, whatever the window start",
        [received(id="a")],
        {"in_progress": 1},
        as_of=t("2023-03-10T02:00:00Z"), start=date(2023, 3, 11), end=date(2023, 3, 11),
    ),
    Case(
        "not yet in progress one microsecond before received_at",
        [received(id="a")],
        {},
        as_of=t("2023-03-10T09:00:00+07:00") - TICK, start=date(2023, 3, 11), end=date(2023, 3, 11),
    ),
    Case(
        "resolved exactly at as_of: not in progress",
        [received(id="a"), resolved(id="c")],
        RESOLVED_ON_TIME,
        as_of=t("2023-03-15T10:00:00+07:00"),
    ),
    Case(
        "resolved one microsecond after as_of: in progress, not overdue",
        [received(id="a"), resolved(id="c")],
        {**RESOLVED_ON_TIME, "in_progress": 1},
        as_of=t("2023-03-15T10:00:00+07:00") - TICK,
    ),
    Case(
        "resolved late: overdue until resolved",
        [received(id="a", due="2023-03-12T17:00:00+07:00"), resolved(id="c")],
        {"in_progress": 1, "in_progress_overdue": 1},
        as_of=t("2023-03-14T00:00:00+07:00"), start=date(2023, 4, 1), end=date(2023, 4, 1),
    ),
    Case(
        "resolved before received (odd data): never in progress",
        [received(id="a"), resolved(id="c", at="2023-03-09T10:00:00+07:00")],
        {"received": 1, "received_online": 1, "digitization_required": 1, "resolved": 1, "resolved_on_time": 1,
         "result_digitization_required": 1},
    ),
    # -- orphans: kept until `received` arrives ----------------------------------------------------
    Case(
        "orphan events count nowhere",
        [resolved(id="c"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00"),
         simple("dossier.rated", id="r", at="2023-03-16T10:00:00+07:00", rating="satisfied"),
         simple("dossier.paid", id="p", at="2023-03-10T09:10:00+07:00", method="online", amount_vnd=1),
         simple("dossier.components_digitized", id="cd", at="2023-03-10T09:30:00+07:00"),
         simple("dossier.result_digitized", id="rd", at="2023-03-15T11:00:00+07:00"),
         due_changed(id="dc", due="2023-03-30T00:00:00+07:00", time="2023-03-11T00:00:00+07:00"),
         signed(id="s", at="2023-03-06T10:00:00+07:00", signer="leader")],
        {},
    ),
    Case(
        "orphan events count once their received event arrives",
        [resolved(id="c"), simple("dossier.rated", id="r", at="2023-03-16T10:00:00+07:00", rating="satisfied"),
         simple("dossier.paid", id="p", at="2023-03-10T09:10:00+07:00", method="online", amount_vnd=1),
         simple("dossier.components_digitized", id="cd", at="2023-03-10T09:30:00+07:00"),
         simple("dossier.result_digitized", id="rd", at="2023-03-15T11:00:00+07:00"),
         due_changed(id="dc", due="2023-03-14T00:00:00+07:00", time="2023-03-11T00:00:00+07:00"),
         received(id="a", fee=True)],
        {**LATE, "fee_required": 1, "paid_online": 1, "components_digitized": 1, "results_digitized": 1,
         "ratings": 1, "ratings_satisfied": 1},
    ),
    # -- documents ---------------------------------------------------------------------------------
    Case(
        "document counts by direction; electronic",
        [registered(id="a", direction="outgoing", electronic=True)],
        {"outgoing": 1, "electronic": 1},
    ),
    Case(
        "registered.direction and electronic: corrected",
        [registered(id="a", direction="outgoing", electronic=True),
         registered(id="b", direction="incoming", electronic=False, time="2023-03-06T08:00:00+07:00")],
        {"incoming": 1},
    ),
    Case(
        "registered.unit: equal time, greater id",
        [registered(id="b", unit="u2"), registered(id="a", unit="u1")],
        {"incoming": 1, "electronic": 1},
        units=frozenset({"u2"}),
    ),
    Case(
        "registered.registered_at: corrected into April",
        [registered(id="a"), registered(id="b", at="2023-04-01T08:00:00+07:00")],
        {},
    ),
    Case(
        "confidential documents count nowhere, signatures included",
        [registered(id="a", confidential=True), signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="leader"),
         signed(id="s2", at="2023-03-06T10:00:00+07:00", signer="organization")],
        {},
    ),
    Case(
        "registered.confidential: corrected to false, everything counts",
        [registered(id="b", confidential=True), registered(id="a", confidential=False, time="2023-03-06T00:00:00Z"),
         signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="leader")],
        {"incoming": 1, "electronic": 1, "signed_by_leader": 1},
    ),
    Case(
        "registered.confidential: corrected to true, nothing counts",
        [registered(id="a", confidential=False), registered(id="b", confidential=True),
         signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="leader")],
        {},
    ),
    Case(
        "signatures: once per kind",
        [registered(id="a"), signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="leader"),
         signed(id="s2", at="2023-03-07T10:00:00+07:00", signer="leader"),
         signed(id="s3", at="2023-03-06T11:00:00+07:00", signer="organization"),
         signed(id="s4", at="2023-03-08T11:00:00+07:00", signer="organization")],
        {"incoming": 1, "electronic": 1, "signed_by_leader": 1, "signed_by_organization": 1},
    ),
    Case(
        "signed_at: the latest leader signature lies in April, the organization's in March",
        [registered(id="a"), signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="leader"),
         signed(id="s2", at="2023-04-01T10:00:00+07:00", signer="leader"),
         signed(id="s3", at="2023-03-06T11:00:00+07:00", signer="organization")],
        {"incoming": 1, "electronic": 1, "signed_by_organization": 1},
    ),
    Case(
        "signed_at: equal time, greater id",
        [registered(id="a"),
         signed(id="s2", at="2023-03-06T10:00:00+07:00", signer="leader", time="2023-04-01T00:00:00Z"),
         signed(id="s1", at="2023-04-01T10:00:00+07:00", signer="leader", time="2023-04-01T00:00:00Z")],
        {"incoming": 1, "electronic": 1, "signed_by_leader": 1},
    ),
    Case(
        "signature of a document registered outside the window still counts in it",
        [registered(id="a", at="2023-02-27T08:00:00+07:00"),
         signed(id="s1", at="2023-03-06T10:00:00+07:00", signer="organization")],
        {"signed_by_organization": 1},
    ),
    # -- procedures at as_of -----------------------------------------------------------------------
    Case(
        "published before as_of",
        [published(id="a", at="2023-03-01T08:00:00+07:00", level="partial_online")],
        {"total": 1, "partial_online": 1},
    ),
    Case(
        "published after as_of: not yet",
        [published(id="a", at="2023-04-01T08:00:00+07:00")],
        {},
    ),
    Case(
        "unpublished at as_of",
        [published(id="a", at="2023-03-01T08:00:00+07:00"), unpublished(id="b", at="2023-03-10T08:00:00+07:00")],
        {},
        as_of=t("2023-03-10T08:00:00+07:00"),
    ),
    Case(
        "unpublished after as_of",
        [published(id="a", at="2023-03-01T08:00:00+07:00"), unpublished(id="b", at="2023-03-10T08:00:00+07:00")],
        {"total": 1, "full_online": 1},
        as_of=t("2023-03-10T08:00:00+07:00") - TICK,
    ),
    Case(
        "service level change at as_of",
        [published(id="a", at="2023-03-01T08:00:00+07:00", level="info"),
         published(id="b", at="2023-03-05T08:00:00+07:00", level="full_online")],
        {"total": 1, "full_online": 1},
        as_of=t("2023-03-05T08:00:00+07:00"),
    ),
    Case(
        "service level before the change",
        [published(id="a", at="2023-03-01T08:00:00+07:00", level="info"),
         published(id="b", at="2023-03-05T08:00:00+07:00", level="full_online")],
        {"total": 1, "info": 1},
        as_of=t("2023-03-05T08:00:00+07:00") - TICK,
    ),
    Case(
        "the winner is the latest event time among those in force, not the latest effective time",
        [unpublished(id="a", at="2023-03-10T08:00:00+07:00", time="2023-03-02T00:00:00+07:00"),
         published(id="b", at="2023-03-01T08:00:00+07:00", level="info", time="2023-03-03T00:00:00+07:00")],
        {"total": 1, "info": 1},
    ),
    Case(
        "a republication in force after an unpublication",
        [published(id="a", at="2023-03-01T08:00:00+07:00", level="info"),
         unpublished(id="b", at="2023-03-05T08:00:00+07:00"),
         published(id="c", at="2023-03-07T08:00:00+07:00", level="partial_online")],
        {"total": 1, "partial_online": 1},
    ),
    Case(
        "published and unpublished at the same time: the greater id wins",
        [published(id="b", at="2023-03-01T08:00:00+07:00"), unpublished(id="a", at="2023-03-01T08:00:00+07:00")],
        {"total": 1, "full_online": 1},
    ),
    Case(
        "a procedure is identified by (unit, code): same code in two units counts twice",
        [published(id="a", at="2023-03-01T08:00:00+07:00", unit="u1"),
         published(id="b", at="2023-03-01T08:00:00+07:00", unit="u2"),
         unpublished(id="c", at="2023-03-02T08:00:00+07:00", unit="u2")],
        {"total": 1, "full_online": 1},
        units=frozenset({"u1", "u2"}),
    ),
    # -- local days in Asia/Ho_Chi_Minh ------------------------------------------------------------
    Case(
        "2023-03-01T23:30:00+07:00 belongs to 1 March",
        [received(id="a", at="2023-03-01T23:30:00+07:00", due=None)],
        {"received": 1, "received_online": 1, "digitization_required": 1, "in_progress": 1},
        start=MARCH_1, end=MARCH_1,
    ),
    Case(
        "2023-03-01T17:30:00Z belongs to 2 March, not 1 March",
        [received(id="a", at="2023-03-01T17:30:00Z", due=None)],
        {"in_progress": 1},
        start=MARCH_1, end=MARCH_1,
    ),
    Case(
        "2023-03-01T17:30:00Z belongs to 2 March",
        [received(id="a", at="2023-03-01T17:30:00Z", due=None)],
        {"received": 1, "received_online": 1, "digitization_required": 1, "in_progress": 1},
        start=date(2023, 3, 2), end=date(2023, 3, 2),
    ),
    Case(
        "local midnight: 2023-02-28T17:00:00Z is 1 March",
        [registered(id="a", at="2023-02-28T17:00:00Z")],
        {"incoming": 1, "electronic": 1},
        start=MARCH_1, end=MARCH_1,
    ),
    Case(
        "one microsecond before local midnight is 28 February",
        [registered(id="a", at="2023-02-28T16:59:59.999999Z")],
        {},
        start=MARCH_1, end=MARCH_1,
    ),
    Case(
        "an offset west of UTC: 2023-03-01T12:00:00-05:00 is 2 March",
        [signed(id="s", at="2023-03-01T12:00:00-05:00", signer="leader"), registered(id="a")],
        {"signed_by_leader": 1},
        start=date(2023, 3, 2), end=date(2023, 3, 2),
    ),
    Case(
        "a correction with the same instant in another offset changes nothing",
        [received(id="a", at="2023-03-01T23:30:00+07:00", due=None),
         received(id="b", at="2023-03-01T16:30:00Z", due=None, time="2023-03-02T00:00:00+07:00")],
        {"received": 1, "received_online": 1, "digitization_required": 1, "in_progress": 1},
        start=MARCH_1, end=MARCH_1,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_figures(case: Case) -> None:
    events = decode_all(case.events)
    expected = dict.fromkeys(ALL_FIGURES, 0) | case.expected
    expected["total"] = expected["info"] + expected["partial_online"] + expected["full_online"]

    states = fold(events)
    core = core_figures(total_contributions(states.values()), case.start, case.end, case.as_of, case.units)
    assert core == expected
    assert reference_figures(case.events, case.start, case.end, case.as_of, case.units) == expected


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_any_order_and_one_batch_give_the_same_counters(case: Case) -> None:
    events = decode_all(case.events)
    forward = total_contributions(fold(events).values())
    backward = total_contributions(fold(reversed(events * 2)).values())
    batch = plan_batch(events, {})
    assert forward == backward == batch.delta


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_state_codec_round_trip(case: Case) -> None:
    for key, state in fold(decode_all(case.events)).items():
        stored = dump_state(state)
        decoded = load_state(key, stored)
        assert decoded == state
        assert dump_state(decoded) == stored
        assert contributions(decoded) == contributions(state)


# --- single-rule cases that are about states, not figures ----------------------------------------


def test_procedure_code_correction_by_time_then_id() -> None:
    events = decode_all(
        [
            received(id="b", procedure="P-old", time="2023-03-10T09:00:00+07:00"),
            received(id="a", procedure="P-new", time="2023-03-10T09:00:01+07:00"),
            received(id="c", procedure="P-tie", time="2023-03-10T09:00:01+07:00"),
        ]
    )
    state = fold(events)[("dossier", "d1")]
    assert isinstance(state, DossierState) and state.received is not None
    assert state.received.value.procedure_code == "P-tie"


def test_outcome_correction() -> None:
    events = decode_all(
        [resolved(id="a", outcome="rejected", time="2023-03-16T00:00:00+07:00"), resolved(id="b", outcome="approved")]
    )
    state = fold(events)[("dossier", "d1")]
    assert isinstance(state, DossierState) and state.resolved is not None
    assert state.resolved.value.outcome == "rejected"


def test_duplicate_yields_no_delta_and_correction_its_difference() -> None:
    first, again = decode_all([received(id="a", channel="online")] * 2)
    (correction,) = decode_all([received(id="b", channel="direct", time="2023-03-11T00:00:00+07:00")])
    key = aggregate_key(first)
    one = plan_batch([first], {})
    assert is_empty(plan_batch([again], one.states).delta)
    assert plan_batch([again], one.states).states == {}
    moved = plan_batch([correction], one.states).delta
    day = date(2023, 3, 10)
    assert moved.daily == Counter({("u1", "received_online", day): -1, ("u1", "received_direct", day): 1})
    assert moved.levels == Counter()
    assert key == ("dossier", "d1")


def test_orphan_delta_arrives_with_received() -> None:
    orphans = decode_all([resolved(id="c"), simple("dossier.withdrawn", id="w", at="2023-03-12T10:00:00+07:00")])
    before = plan_batch(orphans, {})
    assert is_empty(before.delta) and before.states  # kept, though nothing counts
    after = plan_batch(decode_all([received(id="a")]), before.states)
    figures = core_figures(after.delta, MARCH_1, MARCH_31, END_OF_MARCH, {"u1"})
    assert figures["received"] == figures["resolved"] == figures["withdrawn"] == 1
    assert figures["in_progress"] == 0


def test_state_codec_round_trip_of_the_empty_states() -> None:
    for key in (("dossier", "d"), ("document", "doc"), ("procedure", "u1 P 1 with spaces")):
        state = initial_state(key)  # type: ignore[arg-type]
        assert load_state(key, dump_state(state)) == state  # type: ignore[arg-type]
