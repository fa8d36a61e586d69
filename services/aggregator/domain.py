"""The pure core of the aggregator: event + prior state -> new state -> counter contributions.

No I/O here. States and their parts are immutable named tuples, cheap to build (the aggregator
builds a few per event). Every state is a join-semilattice: `apply` keeps, for each fact, the
value of the event with the greatest version (time, then id, then source), and sets one-way
flags. So the final state depends only on the set of events, never on their order or
repetition, and the counters a state contributes are a function of the state alone. The
aggregator writes the contributions of the new state minus those of the old: a duplicate yields
zero, a correction its difference.

Counts are stored per *stored unit*: the registry entry of the event's unit code valid on the local
day of its fact date (contract §1.1). A `UnitResolver` given to `Contributions` makes that choice,
so corrections that move a fact date across a reorganization move the counts with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, Literal, NamedTuple, TypeVar, get_args

from shared.events import (
    DocumentEvent,
    DocumentRegistered,
    DocumentSigned,
    DossierComponentsDigitized,
    DossierDueChanged,
    DossierEvent,
    DossierPaid,
    DossierRated,
    DossierReceived,
    DossierResolved,
    DossierResultDigitized,
    DossierSupplementCompleted,
    DossierSupplementRequested,
    DossierSynced,
    DossierWithdrawn,
    Event,
    ProcedureEvent,
    ProcedurePublished,
    ProcedureUnpublished,
)
from shared.timezone import local_day, start_of_day

T = TypeVar("T")

# (time in UTC, id, source): the order that decides which event sets a fact (contract §2).
Version = tuple[datetime, str, str]

# One microsecond: timestamps have microsecond resolution, so "due_at < t" starts here.
TICK = timedelta(microseconds=1)


def version_of(event: Event) -> Version:
    return (event.time.astimezone(UTC), event.id, event.source)


class Versioned(NamedTuple, Generic[T]):
    version: Version
    value: T


def latest(current: Versioned[T] | None, candidate: Versioned[T]) -> Versioned[T]:
    if current is None or candidate.version > current.version:
        return candidate
    return current


# --- dossiers -----------------------------------------------------------------------------------


class ReceivedFacts(NamedTuple):
    unit: str
    procedure_code: str
    channel: Literal["online", "direct", "postal"]
    received_at: datetime
    fee_required: bool
    digitization_required: bool


class ResolvedFacts(NamedTuple):
    resolved_at: datetime
    outcome: Literal["approved", "rejected"]
    result_digitization_required: bool


class RatingFacts(NamedTuple):
    rated_at: datetime
    rating: Literal["very_satisfied", "satisfied", "dissatisfied"]


class V2Facts(NamedTuple):
    """The dossier facts contract v2 added (for the Decision 766 index), kept apart so the events of
    v1 rebuild the state with one field fewer to copy."""

    supplement_requests: frozenset[Version] = frozenset()  # distinct events: each one counts
    supplement_completions: frozenset[Version] = frozenset()
    synced: bool = False
    components_reused: bool = False
    components_from_personal_store: bool = False


NO_V2_FACTS = V2Facts()


class DossierState(NamedTuple):
    received: Versioned[ReceivedFacts] | None = None
    due: Versioned[datetime | None] | None = None
    resolved: Versioned[ResolvedFacts] | None = None
    withdrawn: Versioned[datetime] | None = None
    rating: Versioned[RatingFacts] | None = None
    components_digitized: bool = False
    result_digitized: bool = False
    paid_online: bool = False
    v2: V2Facts = NO_V2_FACTS


# --- documents ----------------------------------------------------------------------------------


class RegisteredFacts(NamedTuple):
    unit: str
    direction: Literal["incoming", "outgoing"]
    registered_at: datetime
    electronic: bool
    confidential: bool


class DocumentState(NamedTuple):
    registered: Versioned[RegisteredFacts] | None = None
    signed_by_organization: Versioned[datetime] | None = None
    signed_by_leader: Versioned[datetime] | None = None


# --- procedures ---------------------------------------------------------------------------------

ServiceLevel = Literal["info", "partial_online", "full_online"]


class CatalogueEntry(NamedTuple):
    """One published/unpublished event of a procedure: in force from `effective_at` on."""

    version: Version
    effective_at: datetime
    service_level: ServiceLevel | None  # None: unpublished
    fee_bearing: bool = False
    requires_paper_result: bool = True


class ProcedureState(NamedTuple):
    unit: str
    procedure_code: str
    entries: frozenset[CatalogueEntry] = frozenset()


State = DossierState | DocumentState | ProcedureState
AggregateKind = Literal["dossier", "document", "procedure"]
AGGREGATE_KINDS: tuple[AggregateKind, ...] = get_args(AggregateKind)
AggregateKey = tuple[AggregateKind, str]


def _procedure_key(event: ProcedureEvent) -> AggregateKey:
    # A procedure is identified by (unit, procedure_code); unit codes have no spaces.
    return ("procedure", f"{event.data.unit} {event.data.procedure_code}")


def _document_key(event: DocumentEvent) -> AggregateKey:
    return ("document", event.data.document_id)


def _dossier_key(event: DossierEvent) -> AggregateKey:
    return ("dossier", event.data.dossier_id)


# Dispatch on the exact event class: pydantic models are ABCs, so isinstance (and class patterns
# in `match`) go through the slow ABC machinery; a dict lookup on type() does not.
_KEY_OF: dict[type, Callable[[Any], AggregateKey]] = {
    **dict.fromkeys(get_args(DossierEvent), _dossier_key),
    **dict.fromkeys(get_args(DocumentEvent), _document_key),
    **dict.fromkeys(get_args(ProcedureEvent), _procedure_key),
}


def aggregate_key(event: Event) -> AggregateKey:
    """Which aggregate an event belongs to."""
    return _KEY_OF[type(event)](event)


def initial_state(key: AggregateKey) -> State:
    kind, ident = key
    if kind == "dossier":
        return DossierState()
    if kind == "document":
        return DocumentState()
    unit, code = ident.split(" ", 1)
    return ProcedureState(unit=unit, procedure_code=code)


def apply(state: State, event: Event) -> State:
    """The state after `event`; commutative, associative and idempotent over events.

    Returns `state` itself when the event changes nothing (a duplicate, an older correction).
    """
    handler = _APPLY.get(type(event))
    if handler is None or type(state) is not handler[0]:
        raise TypeError(f"event {event.type} does not apply to {type(state).__name__}")
    return handler[1](state, event, version_of(event))


# Each handler builds the new state with its constructor (positional, all fields): about five
# times cheaper than dataclasses.replace, which the aggregator would call once per event.


def _with_due(state: DossierState, due: Versioned[datetime | None] | None) -> DossierState:
    if due is state.due:
        return state
    s = state
    return DossierState(
        s.received, due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online,
        s.v2,
    )  # fmt: skip


def _apply_received(state: DossierState, event: DossierReceived, version: Version) -> DossierState:
    d = event.data
    facts = ReceivedFacts(d.unit, d.procedure_code, d.channel, d.received_at, d.fee_required, d.digitization_required)
    received = latest(state.received, Versioned(version, facts))
    due = latest(state.due, Versioned(version, d.due_at))
    if received is state.received and due is state.due:
        return state
    s = state
    return DossierState(
        received, due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online,
        s.v2,
    )  # fmt: skip


def _apply_due_changed(state: DossierState, event: DossierDueChanged, version: Version) -> DossierState:
    return _with_due(state, latest(state.due, Versioned(version, event.data.due_at)))


def _apply_components_digitized(
    state: DossierState, event: DossierComponentsDigitized, version: Version
) -> DossierState:
    s = state
    v2 = s.v2
    d = event.data
    if (d.reused and not v2.components_reused) or (d.from_personal_store and not v2.components_from_personal_store):
        v2 = V2Facts(
            v2.supplement_requests,
            v2.supplement_completions,
            v2.synced,
            v2.components_reused or d.reused,
            v2.components_from_personal_store or d.from_personal_store,
        )
    if s.components_digitized and v2 is s.v2:
        return state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, True, s.result_digitized, s.paid_online, v2
    )


def _apply_resolved(state: DossierState, event: DossierResolved, version: Version) -> DossierState:
    d = event.data
    resolved = latest(
        state.resolved, Versioned(version, ResolvedFacts(d.resolved_at, d.outcome, d.result_digitization_required))
    )
    if resolved is state.resolved:
        return state
    s = state
    return DossierState(
        s.received, s.due, resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online,
        s.v2,
    )  # fmt: skip


def _apply_result_digitized(state: DossierState, event: DossierResultDigitized, version: Version) -> DossierState:
    if state.result_digitized:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, s.components_digitized, True, s.paid_online, s.v2
    )


def _apply_paid(state: DossierState, event: DossierPaid, version: Version) -> DossierState:
    if event.data.method != "online" or state.paid_online:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, True, s.v2
    )


def _apply_withdrawn(state: DossierState, event: DossierWithdrawn, version: Version) -> DossierState:
    withdrawn = latest(state.withdrawn, Versioned(version, event.data.withdrawn_at))
    if withdrawn is state.withdrawn:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online,
        s.v2,
    )  # fmt: skip


def _apply_rated(state: DossierState, event: DossierRated, version: Version) -> DossierState:
    d = event.data
    rating = latest(state.rating, Versioned(version, RatingFacts(d.rated_at, d.rating)))
    if rating is state.rating:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, rating, s.components_digitized, s.result_digitized, s.paid_online,
        s.v2,
    )  # fmt: skip


def _with_v2(state: DossierState, v2: V2Facts) -> DossierState:
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online,
        v2,
    )  # fmt: skip


def _apply_supplement_requested(
    state: DossierState, event: DossierSupplementRequested, version: Version
) -> DossierState:
    v2 = state.v2
    if version in v2.supplement_requests:
        return state
    requests = v2.supplement_requests | {version}
    return _with_v2(state, V2Facts(requests, *v2[1:]))


def _apply_supplement_completed(
    state: DossierState, event: DossierSupplementCompleted, version: Version
) -> DossierState:
    v2 = state.v2
    if version in v2.supplement_completions:
        return state
    completions = v2.supplement_completions | {version}
    return _with_v2(state, V2Facts(v2.supplement_requests, completions, *v2[2:]))


def _apply_synced(state: DossierState, event: DossierSynced, version: Version) -> DossierState:
    v2 = state.v2
    if v2.synced:
        return state
    return _with_v2(
        state,
        V2Facts(v2.supplement_requests, v2.supplement_completions, True, v2.components_reused,
                v2.components_from_personal_store),
    )  # fmt: skip


def _apply_registered(state: DocumentState, event: DocumentRegistered, version: Version) -> DocumentState:
    d = event.data
    facts = RegisteredFacts(d.unit, d.direction, d.registered_at, d.electronic, d.confidential)
    registered = latest(state.registered, Versioned(version, facts))
    if registered is state.registered:
        return state
    return DocumentState(registered, state.signed_by_organization, state.signed_by_leader)


def _apply_signed(state: DocumentState, event: DocumentSigned, version: Version) -> DocumentState:
    signature = Versioned(version, event.data.signed_at)
    if event.data.signer == "leader":
        leader = latest(state.signed_by_leader, signature)
        if leader is state.signed_by_leader:
            return state
        return DocumentState(state.registered, state.signed_by_organization, leader)
    organization = latest(state.signed_by_organization, signature)
    if organization is state.signed_by_organization:
        return state
    return DocumentState(state.registered, organization, state.signed_by_leader)


def _apply_catalogue_entry(state: ProcedureState, entry: CatalogueEntry) -> ProcedureState:
    if entry in state.entries:
        return state
    return ProcedureState(state.unit, state.procedure_code, state.entries | {entry})


def _apply_published(state: ProcedureState, event: ProcedurePublished, version: Version) -> ProcedureState:
    d = event.data
    entry = CatalogueEntry(version, d.published_at, d.service_level, d.fee_bearing, d.requires_paper_result)
    return _apply_catalogue_entry(state, entry)


def _apply_unpublished(state: ProcedureState, event: ProcedureUnpublished, version: Version) -> ProcedureState:
    return _apply_catalogue_entry(state, CatalogueEntry(version, event.data.unpublished_at, None))


# event class -> (the state class it applies to, handler)
_APPLY: dict[type, tuple[type, Callable[[Any, Any, Version], State]]] = {
    DossierReceived: (DossierState, _apply_received),
    DossierDueChanged: (DossierState, _apply_due_changed),
    DossierComponentsDigitized: (DossierState, _apply_components_digitized),
    DossierResolved: (DossierState, _apply_resolved),
    DossierResultDigitized: (DossierState, _apply_result_digitized),
    DossierPaid: (DossierState, _apply_paid),
    DossierWithdrawn: (DossierState, _apply_withdrawn),
    DossierRated: (DossierState, _apply_rated),
    DossierSupplementRequested: (DossierState, _apply_supplement_requested),
    DossierSupplementCompleted: (DossierState, _apply_supplement_completed),
    DossierSynced: (DossierState, _apply_synced),
    DocumentRegistered: (DocumentState, _apply_registered),
    DocumentSigned: (DocumentState, _apply_signed),
    ProcedurePublished: (ProcedureState, _apply_published),
    ProcedureUnpublished: (ProcedureState, _apply_unpublished),
}


# --- contributions ------------------------------------------------------------------------------

DailyKey = tuple[str, str, date]  # (stored unit, counter, local day)
LevelKey = tuple[str, str, datetime]  # (stored unit, counter, instant the level changes)
CohortKey = tuple[str, str, date, datetime]  # (stored unit, counter, local day, instant of change)
ProcedureDailyKey = tuple[str, str, str, date]  # (stored unit, procedure code, counter, local day)
# (stored unit, procedure code, from, until (None: open), published online, fee-bearing)
ProcedurePeriodKey = tuple[str, str, datetime, datetime | None, bool, bool]


class UnitPlacement(NamedTuple):
    """Where a unit code stands on a day: the stored unit key, and when that unit ends (if it does)."""

    key: str
    ends_at: datetime | None


UnitResolver = Callable[[str, date], UnitPlacement]


def units_valid_forever(code: str, day: date) -> UnitPlacement:
    """The resolver of a registry without dates (contract v1): a code is its own stored unit."""
    return UnitPlacement(code, None)


@dataclass(slots=True)
class Contributions:
    """What states add to the counters, by kind of stored counter (no zero entries once dropped).

    - `daily`: counts per unit and local day (a fact counts on the day it happened);
    - `levels`: changes of point-in-time figures (a figure at t is the sum of the changes at or before t);
    - `cohorts`: changes of a figure of the dossiers received on a day, at the instant it changes (a
      window's value at as_of sums the cohorts of the window's days up to as_of);
    - `procedure_daily`: daily counts per procedure, and `procedure_periods`: the periods in which a
      procedure counts as published online or fee-bearing (a set: each period counts 1), for the
      index components that ask whether a procedure had at least one such dossier.
    """

    daily: dict[DailyKey, int]
    levels: dict[LevelKey, int]
    cohorts: dict[CohortKey, int] = field(default_factory=dict)
    procedure_daily: dict[ProcedureDailyKey, int] = field(default_factory=dict)
    procedure_periods: dict[ProcedurePeriodKey, int] = field(default_factory=dict)
    units: UnitResolver = field(default=units_valid_forever, compare=False, repr=False)

    @classmethod
    def empty(cls, units: UnitResolver = units_valid_forever) -> Contributions:
        return cls({}, {}, {}, {}, {}, units)

    def tables(self) -> tuple[dict[Any, int], ...]:
        return (self.daily, self.levels, self.cohorts, self.procedure_daily, self.procedure_periods)

    def add_state(self, state: State, sign: int = 1) -> None:
        """Accumulate `sign` times the contributions of `state` in place (zero entries kept)."""
        _CONTRIBUTE[type(state)](state, sign, self)

    def drop_zeros(self) -> None:
        for table in self.tables():
            _drop_zeros(table)


K = TypeVar("K")


def _drop_zeros(counts: dict[K, int]) -> None:
    for key in [key for key, value in counts.items() if not value]:
        del counts[key]


def contributions(state: State, units: UnitResolver = units_valid_forever) -> Contributions:
    result = Contributions.empty(units)
    result.add_state(state)
    result.drop_zeros()
    return result


def _add(counts: dict[K, int], key: K, sign: int) -> None:
    counts[key] = counts.get(key, 0) + sign


# The functions below add `sign` times a state's contributions into `out`; the planner calls them
# with +1 for a new state and -1 for the state it replaces, so no intermediate counters are built
# per state.


def _dossier_contributions(state: DossierState, sign: int, out: Contributions) -> None:
    """Accumulate `sign` times the counters of one dossier state into `out`.

    Longer than the other functions on purpose: the rules of every dossier figure read top to
    bottom in one place, in the order of contract §5 and Decision 766, sharing the dates derived
    once (receipt, due, end); and this is the aggregator's hottest function (twice per changed
    dossier state), where the locals bound once (`daily.get`, the unit) save lookups per key.
    """
    if state.received is None:
        return  # kept until the dossier's `received` event arrives
    received = state.received.value
    received_at = received.received_at
    received_day = local_day(received_at)
    unit = out.units(received.unit, received_day).key
    daily = out.daily
    get = daily.get
    v2 = state.v2
    keys = [(unit, "received", received_day), (unit, _RECEIVED_BY_CHANNEL[received.channel], received_day)]
    if received.digitization_required:
        keys.append((unit, "digitization_required", received_day))
        if state.components_digitized:
            keys.append((unit, "components_digitized", received_day))
    if state.components_digitized:
        keys.append((unit, "received_digitized", received_day))
    if received.fee_required:
        keys.append((unit, "fee_required", received_day))
        if state.paid_online:
            keys.append((unit, "paid_online", received_day))
    if v2 is not NO_V2_FACTS:
        if v2.synced:
            keys.append((unit, "synced", received_day))
        if v2.supplement_requests:
            keys.append((unit, "supplement_requested", received_day))
        if v2.components_reused:
            keys.append((unit, "components_reused", received_day))
        if v2.components_from_personal_store:
            keys.append((unit, "components_from_personal_store", received_day))

    due_at = state.due.value if state.due is not None else None
    resolved_at: datetime | None = None
    result_missing = False  # resolved, its result had to be digitized, and was not
    if state.resolved is not None:
        resolved = state.resolved.value
        resolved_at = resolved.resolved_at
        resolved_day = local_day(resolved_at)
        keys.append((unit, "resolved", resolved_day))
        on_time = due_at is None or resolved_at <= due_at
        keys.append((unit, "resolved_on_time" if on_time else "resolved_late", resolved_day))
        if resolved.result_digitization_required:
            keys.append((unit, "result_digitization_required", resolved_day))
            if state.result_digitized:
                keys.append((unit, "results_digitized", resolved_day))
            else:
                result_missing = True

    withdrawn_at = state.withdrawn.value if state.withdrawn is not None else None
    if withdrawn_at is not None:
        keys.append((unit, "withdrawn", local_day(withdrawn_at)))

    if state.rating is not None:
        rating = state.rating.value
        rated_day = local_day(rating.rated_at)
        keys.append((unit, "ratings", rated_day))
        if rating.rating != "dissatisfied":
            keys.append((unit, "ratings_satisfied", rated_day))
    for key in keys:
        daily[key] = get(key, 0) + sign

    # In progress at t: received_at <= t, and neither resolved nor withdrawn at or before t.
    if resolved_at is None:
        ended_at = withdrawn_at
    elif withdrawn_at is None:
        ended_at = resolved_at
    else:
        ended_at = min(resolved_at, withdrawn_at)
    levels = out.levels
    _add_interval(levels, sign, unit, "in_progress", received_at, ended_at)
    if due_at is not None:
        # Overdue at t: in progress at t and due_at < t.
        overdue_from = max(received_at, due_at + TICK)
        _add_interval(levels, sign, unit, "in_progress_overdue", overdue_from, ended_at)

    # Decision 766, 2.1: handled in W = ended on a day of W (known from the later of its receipt and
    # its end) plus open at as_of; on time = ended by its due date, or open and not yet due; more
    # than one supplement request makes a dossier late.
    late_by_supplements = len(v2.supplement_requests) > 1
    if ended_at is not None:
        handled_at = max(received_at, ended_at)
        ended_day = local_day(ended_at)
        _add(out.cohorts, (unit, "handled_ended", ended_day, handled_at), sign)
        if not late_by_supplements and (due_at is None or ended_at <= due_at):
            _add(out.cohorts, (unit, "handled_ended_on_time", ended_day, handled_at), sign)
    if not late_by_supplements:
        open_until = ended_at
        if due_at is not None:
            open_until = due_at + TICK if ended_at is None else min(ended_at, due_at + TICK)
        _add_interval(levels, sign, unit, "open_on_time", received_at, open_until)

    # Decision 766, 4.2: of the dossiers received on a day with components digitized, those resolved
    # (at or before as_of) whose required result was not digitized drop out from the instant resolved.
    if result_missing and state.components_digitized:
        assert resolved_at is not None
        _add(out.cohorts, (unit, "digitized_result_missing", received_day, resolved_at), sign)

    # Per procedure (3.2, 3.5): the days on which a procedure received such dossiers.
    code = received.procedure_code
    procedure_daily = out.procedure_daily
    if received.channel == "online":
        _add(procedure_daily, (unit, code, "received_online", received_day), sign)
    if received.fee_required and v2.synced:
        _add(procedure_daily, (unit, code, "fee_synced", received_day), sign)
    if state.paid_online:
        _add(procedure_daily, (unit, code, "paid_online", received_day), sign)


_RECEIVED_BY_CHANNEL = {channel: f"received_{channel}" for channel in ("online", "direct", "postal")}


def _add_interval(
    levels: dict[K, int], sign: int, unit: str, counter: str, start: datetime, end: datetime | None
) -> None:
    """+sign from `start` (inclusive) until `end` (exclusive); nothing if the interval is empty."""
    # Aware datetimes compare and hash by instant, so keys need no conversion to one offset.
    if end is not None and end <= start:
        return
    key: Any = (unit, counter, start)
    levels[key] = levels.get(key, 0) + sign
    if end is not None:
        key = (unit, counter, end)
        levels[key] = levels.get(key, 0) - sign


def _document_contributions(state: DocumentState, sign: int, out: Contributions) -> None:
    if state.registered is None or state.registered.value.confidential:
        return  # confidential documents count in no indicator
    reg = state.registered.value
    day = local_day(reg.registered_at)
    unit = out.units(reg.unit, day).key
    keys = [(unit, _DOCUMENTS_BY_DIRECTION[reg.direction], day)]
    if reg.electronic:
        keys.append((unit, "documents_electronic", day))
    if state.signed_by_organization is not None:
        keys.append((unit, "signed_by_organization", local_day(state.signed_by_organization.value)))
    if state.signed_by_leader is not None:
        keys.append((unit, "signed_by_leader", local_day(state.signed_by_leader.value)))
    daily = out.daily
    get = daily.get
    for key in keys:
        daily[key] = get(key, 0) + sign


_DOCUMENTS_BY_DIRECTION = {direction: f"documents_{direction}" for direction in ("incoming", "outgoing")}


class _Published(NamedTuple):
    """A procedure counted from `start` (inclusive) to `end` (exclusive, None: open) in stored unit `unit`."""

    start: datetime
    end: datetime | None
    unit: str
    entry: CatalogueEntry


def _published_periods(state: ProcedureState, units: UnitResolver) -> list[_Published]:
    """When the procedure counts, and as which entry.

    At instant t the procedure's state is set by the greatest-version entry among those in force
    (effective_at <= t); it counts when that entry is a publication, in the stored unit its code
    named on the entry's day, and only while that unit exists (contract §1.1: procedures of an
    ended unit stop counting on its valid_to).
    """
    periods: list[_Published] = []
    entries = sorted(state.entries, key=lambda entry: entry.effective_at)
    winner: CatalogueEntry | None = None
    for index, entry in enumerate(entries):
        if winner is None or entry.version > winner.version:
            winner = entry
        if index + 1 < len(entries) and entries[index + 1].effective_at == entry.effective_at:
            continue  # the winner at this instant is known once every entry of the instant is seen
        start = entry.effective_at
        end = entries[index + 1].effective_at if index + 1 < len(entries) else None
        if winner.service_level is None:
            continue
        placement = units(state.unit, local_day(winner.effective_at))
        if placement.ends_at is not None and (end is None or placement.ends_at < end):
            end = placement.ends_at
        if end is not None and end <= start:
            continue
        periods.append(_Published(start, end, placement.key, winner))
    return periods


def _procedure_contributions(state: ProcedureState, sign: int, out: Contributions) -> None:
    """Level changes of the procedure's published service level and fee flag, and its periods."""
    levels = out.levels
    periods = out.procedure_periods
    code = state.procedure_code
    for period in _published_periods(state, out.units):
        entry = period.entry
        start = period.start.astimezone(UTC)
        end = None if period.end is None else period.end.astimezone(UTC)
        counters = [f"procedures_{entry.service_level}"]
        if entry.fee_bearing:
            counters.append("procedures_fee_bearing")
        for counter in counters:
            _add(levels, (period.unit, counter, start), sign)
            if end is not None:
                _add(levels, (period.unit, counter, end), -sign)
        online = entry.service_level != "info"
        if online or entry.fee_bearing:
            _add(periods, (period.unit, code, start, end, online, entry.fee_bearing), sign)


_CONTRIBUTE: dict[type, Callable[[Any, int, Contributions], None]] = {
    DossierState: _dossier_contributions,
    DocumentState: _document_contributions,
    ProcedureState: _procedure_contributions,
}


def unit_end(valid_to: date | None) -> datetime | None:
    """The instant a unit ends: the start of its `valid_to` day (local), or None if it does not end."""
    return None if valid_to is None else start_of_day(valid_to)
