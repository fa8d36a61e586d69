"""The pure core of the aggregator: event + prior state -> new state -> counter contributions.

No I/O here. States and their parts are immutable named tuples, cheap to build (the aggregator
builds a few per event). Every state is a join-semilattice: `apply` keeps, for each fact, the
value of the event with the greatest version (time, then id, then source), and sets one-way
flags. So the final state depends only on the set of events, never on their order or
repetition, and the counters a state contributes are a function of the state alone. The
aggregator writes the contributions of the new state minus those of the old: a duplicate yields
zero, a correction its difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    DossierWithdrawn,
    Event,
    ProcedureEvent,
    ProcedurePublished,
    ProcedureUnpublished,
)
from shared.timezone import local_day

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


class DossierState(NamedTuple):
    received: Versioned[ReceivedFacts] | None = None
    due: Versioned[datetime | None] | None = None
    resolved: Versioned[ResolvedFacts] | None = None
    withdrawn: Versioned[datetime] | None = None
    rating: Versioned[RatingFacts] | None = None
    components_digitized: bool = False
    result_digitized: bool = False
    paid_online: bool = False


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
        s.received, due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online
    )


def _apply_received(state: DossierState, event: DossierReceived, version: Version) -> DossierState:
    d = event.data
    facts = ReceivedFacts(d.unit, d.procedure_code, d.channel, d.received_at, d.fee_required, d.digitization_required)
    received = latest(state.received, Versioned(version, facts))
    due = latest(state.due, Versioned(version, d.due_at))
    if received is state.received and due is state.due:
        return state
    s = state
    return DossierState(
        received, due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online
    )


def _apply_due_changed(state: DossierState, event: DossierDueChanged, version: Version) -> DossierState:
    return _with_due(state, latest(state.due, Versioned(version, event.data.due_at)))


def _apply_components_digitized(
    state: DossierState, event: DossierComponentsDigitized, version: Version
) -> DossierState:
    if state.components_digitized:
        return state
    s = state
    return DossierState(s.received, s.due, s.resolved, s.withdrawn, s.rating, True, s.result_digitized, s.paid_online)


def _apply_resolved(state: DossierState, event: DossierResolved, version: Version) -> DossierState:
    d = event.data
    resolved = latest(
        state.resolved, Versioned(version, ResolvedFacts(d.resolved_at, d.outcome, d.result_digitization_required))
    )
    if resolved is state.resolved:
        return state
    s = state
    return DossierState(
        s.received, s.due, resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online
    )


def _apply_result_digitized(state: DossierState, event: DossierResultDigitized, version: Version) -> DossierState:
    if state.result_digitized:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, s.components_digitized, True, s.paid_online
    )


def _apply_paid(state: DossierState, event: DossierPaid, version: Version) -> DossierState:
    if event.data.method != "online" or state.paid_online:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, s.rating, s.components_digitized, s.result_digitized, True
    )


def _apply_withdrawn(state: DossierState, event: DossierWithdrawn, version: Version) -> DossierState:
    withdrawn = latest(state.withdrawn, Versioned(version, event.data.withdrawn_at))
    if withdrawn is state.withdrawn:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, withdrawn, s.rating, s.components_digitized, s.result_digitized, s.paid_online
    )


def _apply_rated(state: DossierState, event: DossierRated, version: Version) -> DossierState:
    d = event.data
    rating = latest(state.rating, Versioned(version, RatingFacts(d.rated_at, d.rating)))
    if rating is state.rating:
        return state
    s = state
    return DossierState(
        s.received, s.due, s.resolved, s.withdrawn, rating, s.components_digitized, s.result_digitized, s.paid_online
    )


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
    return _apply_catalogue_entry(state, CatalogueEntry(version, d.published_at, d.service_level))


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
    DocumentRegistered: (DocumentState, _apply_registered),
    DocumentSigned: (DocumentState, _apply_signed),
    ProcedurePublished: (ProcedureState, _apply_published),
    ProcedureUnpublished: (ProcedureState, _apply_unpublished),
}


# --- contributions ------------------------------------------------------------------------------

DailyKey = tuple[str, str, date]  # (unit, counter, local day)
LevelKey = tuple[str, str, datetime]  # (unit, counter, instant the level changes)


@dataclass(frozen=True, slots=True)
class Contributions:
    """What states add to the counters: daily counts and level changes (no zero entries)."""

    daily: dict[DailyKey, int]
    levels: dict[LevelKey, int]

    @classmethod
    def empty(cls) -> Contributions:
        return cls({}, {})

    def add(self, other: Contributions) -> None:
        """Accumulate `other` in place (zero entries dropped)."""
        _accumulate(self.daily, other.daily)
        _accumulate(self.levels, other.levels)

    def add_state(self, state: State, sign: int = 1) -> None:
        """Accumulate `sign` times the contributions of `state` in place (zero entries kept)."""
        _CONTRIBUTE[type(state)](state, sign, self.daily, self.levels)

    def drop_zeros(self) -> None:
        _drop_zeros(self.daily)
        _drop_zeros(self.levels)

    def is_empty(self) -> bool:
        return not self.daily and not self.levels


K = TypeVar("K")


def _drop_zeros(counts: dict[K, int]) -> None:
    for key in [key for key, value in counts.items() if not value]:
        del counts[key]


def _accumulate(into: dict[K, int], delta: dict[K, int]) -> None:
    for key, value in delta.items():
        total = into.get(key, 0) + value
        if total:
            into[key] = total
        else:
            into.pop(key, None)


def contributions(state: State) -> Contributions:
    result = Contributions.empty()
    result.add_state(state)
    result.drop_zeros()
    return result


# The functions below add `sign` times a state's contributions into `daily` and `levels`; the
# planner calls them with +1 for a new state and -1 for the state it replaces, so no intermediate
# counters are built per state.


def _dossier_contributions(
    state: DossierState, sign: int, daily: dict[DailyKey, int], levels: dict[LevelKey, int]
) -> None:
    if state.received is None:
        return  # kept until the dossier's `received` event arrives
    received = state.received.value
    unit = received.unit
    get = daily.get
    received_day = local_day(received.received_at)
    keys = [(unit, "received", received_day), (unit, _RECEIVED_BY_CHANNEL[received.channel], received_day)]
    if received.digitization_required:
        keys.append((unit, "digitization_required", received_day))
        if state.components_digitized:
            keys.append((unit, "components_digitized", received_day))
    if received.fee_required:
        keys.append((unit, "fee_required", received_day))
        if state.paid_online:
            keys.append((unit, "paid_online", received_day))

    due_at = state.due.value if state.due is not None else None
    resolved_at: datetime | None = None
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
    _add_interval(levels, sign, unit, "in_progress", received.received_at, ended_at)
    if due_at is not None:
        # Overdue at t: in progress at t and due_at < t.
        overdue_from = max(received.received_at, due_at + TICK)
        _add_interval(levels, sign, unit, "in_progress_overdue", overdue_from, ended_at)


_RECEIVED_BY_CHANNEL = {channel: f"received_{channel}" for channel in ("online", "direct", "postal")}


def _add_interval(
    levels: dict[LevelKey, int], sign: int, unit: str, counter: str, start: datetime, end: datetime | None
) -> None:
    """+sign from `start` (inclusive) until `end` (exclusive); nothing if the interval is empty."""
    # Aware datetimes compare and hash by instant, so keys need no conversion to one offset.
    if end is not None and end <= start:
        return
    key = (unit, counter, start)
    levels[key] = levels.get(key, 0) + sign
    if end is not None:
        key = (unit, counter, end)
        levels[key] = levels.get(key, 0) - sign


def _document_contributions(
    state: DocumentState, sign: int, daily: dict[DailyKey, int], levels: dict[LevelKey, int]
) -> None:
    if state.registered is None or state.registered.value.confidential:
        return  # confidential documents count in no indicator
    reg = state.registered.value
    day = local_day(reg.registered_at)
    keys = [(reg.unit, _DOCUMENTS_BY_DIRECTION[reg.direction], day)]
    if reg.electronic:
        keys.append((reg.unit, "documents_electronic", day))
    if state.signed_by_organization is not None:
        keys.append((reg.unit, "signed_by_organization", local_day(state.signed_by_organization.value)))
    if state.signed_by_leader is not None:
        keys.append((reg.unit, "signed_by_leader", local_day(state.signed_by_leader.value)))
    get = daily.get
    for key in keys:
        daily[key] = get(key, 0) + sign


_DOCUMENTS_BY_DIRECTION = {direction: f"documents_{direction}" for direction in ("incoming", "outgoing")}


def _procedure_contributions(
    state: ProcedureState, sign: int, daily: dict[DailyKey, int], levels: dict[LevelKey, int]
) -> None:
    """Level changes of the procedure's published service level over time.

    At instant t the procedure's state is set by the greatest-version entry among those in force
    (effective_at <= t); it counts when that entry is a publication.
    """
    winner: CatalogueEntry | None = None
    current: ServiceLevel | None = None
    entries = sorted(state.entries, key=lambda entry: entry.effective_at)
    for index, entry in enumerate(entries):
        if winner is None or entry.version > winner.version:
            winner = entry
        is_last_at_instant = index + 1 == len(entries) or entries[index + 1].effective_at != entry.effective_at
        if not is_last_at_instant or winner.service_level == current:
            continue
        at = entry.effective_at.astimezone(UTC)
        if current is not None:
            key = (state.unit, f"procedures_{current}", at)
            levels[key] = levels.get(key, 0) - sign
        if winner.service_level is not None:
            key = (state.unit, f"procedures_{winner.service_level}", at)
            levels[key] = levels.get(key, 0) + sign
        current = winner.service_level


_CONTRIBUTE: dict[type, Callable[[Any, int, dict[DailyKey, int], dict[LevelKey, int]], None]] = {
    DossierState: _dossier_contributions,
    DocumentState: _document_contributions,
    ProcedureState: _procedure_contributions,
}
