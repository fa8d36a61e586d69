"""The pure core of the aggregator: event + prior state -> new state -> counter contributions.

No I/O here. Every state is a join-semilattice: `apply` keeps, for each fact, the value of the
event with the greatest version (time, then id, then source), and sets one-way flags. So the final
state depends only on the set of events, never on their order or repetition, and the counters a
state contributes are a function of the state alone. The aggregator writes
`contributions(new) - contributions(old)`: a duplicate yields zero, a correction its difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Generic, Literal, TypeVar

from shared.events import (
    DocumentRegistered,
    DocumentSigned,
    DossierComponentsDigitized,
    DossierDueChanged,
    DossierPaid,
    DossierRated,
    DossierReceived,
    DossierResolved,
    DossierResultDigitized,
    DossierWithdrawn,
    Event,
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


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    version: Version
    value: T


def latest(current: Versioned[T] | None, candidate: Versioned[T]) -> Versioned[T]:
    if current is None or candidate.version > current.version:
        return candidate
    return current


# --- dossiers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedFacts:
    unit: str
    procedure_code: str
    channel: Literal["online", "direct", "postal"]
    received_at: datetime
    fee_required: bool
    digitization_required: bool


@dataclass(frozen=True, slots=True)
class ResolvedFacts:
    resolved_at: datetime
    outcome: Literal["approved", "rejected"]
    result_digitization_required: bool


@dataclass(frozen=True, slots=True)
class RatingFacts:
    rated_at: datetime
    rating: Literal["very_satisfied", "satisfied", "dissatisfied"]


@dataclass(frozen=True, slots=True)
class DossierState:
    received: Versioned[ReceivedFacts] | None = None
    due: Versioned[datetime | None] | None = None
    resolved: Versioned[ResolvedFacts] | None = None
    withdrawn: Versioned[datetime] | None = None
    rating: Versioned[RatingFacts] | None = None
    components_digitized: bool = False
    result_digitized: bool = False
    paid_online: bool = False


# --- documents ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredFacts:
    unit: str
    direction: Literal["incoming", "outgoing"]
    registered_at: datetime
    electronic: bool
    confidential: bool


@dataclass(frozen=True, slots=True)
class DocumentState:
    registered: Versioned[RegisteredFacts] | None = None
    signed_by_organization: Versioned[datetime] | None = None
    signed_by_leader: Versioned[datetime] | None = None


# --- procedures ---------------------------------------------------------------------------------

ServiceLevel = Literal["info", "partial_online", "full_online"]


@dataclass(frozen=True, slots=True, order=True)
class CatalogueEntry:
    """One published/unpublished event of a procedure: in force from `effective_at` on."""

    version: Version
    effective_at: datetime
    service_level: ServiceLevel | None  # None: unpublished


@dataclass(frozen=True, slots=True)
class ProcedureState:
    unit: str
    procedure_code: str
    entries: frozenset[CatalogueEntry] = frozenset()


State = DossierState | DocumentState | ProcedureState
AggregateKey = tuple[Literal["dossier", "document", "procedure"], str]


def aggregate_key(event: Event) -> AggregateKey:
    """Which aggregate an event belongs to. A procedure is identified by (unit, procedure_code)."""
    match event:
        case ProcedurePublished() | ProcedureUnpublished():
            # Unit codes have no spaces, so the pair is unambiguous.
            return ("procedure", f"{event.data.unit} {event.data.procedure_code}")
        case DocumentRegistered() | DocumentSigned():
            return ("document", event.data.document_id)
        case _:
            return ("dossier", event.data.dossier_id)


def initial_state(key: AggregateKey) -> State:
    kind, ident = key
    if kind == "dossier":
        return DossierState()
    if kind == "document":
        return DocumentState()
    unit, code = ident.split(" ", 1)
    return ProcedureState(unit=unit, procedure_code=code)


def apply(state: State, event: Event) -> State:
    """The state after `event`; commutative, associative and idempotent over events."""
    version = version_of(event)
    match event, state:
        case DossierReceived(data=d), DossierState():
            facts = ReceivedFacts(
                unit=d.unit,
                procedure_code=d.procedure_code,
                channel=d.channel,
                received_at=d.received_at,
                fee_required=d.fee_required,
                digitization_required=d.digitization_required,
            )
            return replace(
                state,
                received=latest(state.received, Versioned(version, facts)),
                due=latest(state.due, Versioned(version, d.due_at)),
            )
        case DossierDueChanged(data=d), DossierState():
            return replace(state, due=latest(state.due, Versioned(version, d.due_at)))
        case DossierComponentsDigitized(), DossierState():
            return replace(state, components_digitized=True)
        case DossierResolved(data=d), DossierState():
            resolved = ResolvedFacts(d.resolved_at, d.outcome, d.result_digitization_required)
            return replace(state, resolved=latest(state.resolved, Versioned(version, resolved)))
        case DossierResultDigitized(), DossierState():
            return replace(state, result_digitized=True)
        case DossierPaid(data=d), DossierState():
            return replace(state, paid_online=True) if d.method == "online" else state
        case DossierWithdrawn(data=d), DossierState():
            return replace(state, withdrawn=latest(state.withdrawn, Versioned(version, d.withdrawn_at)))
        case DossierRated(data=d), DossierState():
            rating = RatingFacts(d.rated_at, d.rating)
            return replace(state, rating=latest(state.rating, Versioned(version, rating)))
        case DocumentRegistered(data=d), DocumentState():
            reg = RegisteredFacts(d.unit, d.direction, d.registered_at, d.electronic, d.confidential)
            return replace(state, registered=latest(state.registered, Versioned(version, reg)))
        case DocumentSigned(data=d), DocumentState():
            signature = Versioned(version, d.signed_at)
            if d.signer == "leader":
                return replace(state, signed_by_leader=latest(state.signed_by_leader, signature))
            return replace(state, signed_by_organization=latest(state.signed_by_organization, signature))
        case ProcedurePublished(data=d), ProcedureState():
            entry = CatalogueEntry(version, d.published_at, d.service_level)
            return replace(state, entries=state.entries | {entry})
        case ProcedureUnpublished(data=d), ProcedureState():
            entry = CatalogueEntry(version, d.unpublished_at, None)
            return replace(state, entries=state.entries | {entry})
    raise TypeError(f"event {event.type} does not apply to {type(state).__name__}")


# --- contributions ------------------------------------------------------------------------------

DailyKey = tuple[str, str, date]  # (unit, counter, local day)
LevelKey = tuple[str, str, datetime]  # (unit, counter, instant the level changes)


@dataclass(frozen=True, slots=True)
class Contributions:
    """What one state adds to the counters: daily counts and level changes."""

    daily: Counter[DailyKey]
    levels: Counter[LevelKey]

    @classmethod
    def empty(cls) -> Contributions:
        return cls(Counter(), Counter())

    def __sub__(self, other: Contributions) -> Contributions:
        return Contributions(_subtract(self.daily, other.daily), _subtract(self.levels, other.levels))

    def add(self, other: Contributions) -> None:
        """Accumulate in place (zero entries dropped)."""
        _accumulate(self.daily, other.daily)
        _accumulate(self.levels, other.levels)

    def is_empty(self) -> bool:
        return not self.daily and not self.levels


def _subtract(new: Counter[K], old: Counter[K]) -> Counter[K]:
    # Counter's own `-` drops negative results; counter deltas need them.
    result: Counter[K] = Counter(new)
    for key, value in old.items():
        result[key] -= value
    return Counter({key: value for key, value in result.items() if value})


def _accumulate(into: Counter[K], delta: Counter[K]) -> None:
    for key, value in delta.items():
        total = into[key] + value
        if total:
            into[key] = total
        else:
            del into[key]


K = TypeVar("K")


def contributions(state: State) -> Contributions:
    match state:
        case DossierState():
            return _dossier_contributions(state)
        case DocumentState():
            return _document_contributions(state)
        case ProcedureState():
            return _procedure_contributions(state)


def _dossier_contributions(state: DossierState) -> Contributions:
    result = Contributions.empty()
    if state.received is None:
        return result  # kept until the dossier's `received` event arrives
    received = state.received.value
    unit = received.unit
    daily = result.daily
    received_day = local_day(received.received_at)
    daily[(unit, "received", received_day)] += 1
    daily[(unit, f"received_{received.channel}", received_day)] += 1
    if received.digitization_required:
        daily[(unit, "digitization_required", received_day)] += 1
        if state.components_digitized:
            daily[(unit, "components_digitized", received_day)] += 1
    if received.fee_required:
        daily[(unit, "fee_required", received_day)] += 1
        if state.paid_online:
            daily[(unit, "paid_online", received_day)] += 1

    due_at = state.due.value if state.due is not None else None
    resolved_at: datetime | None = None
    if state.resolved is not None:
        resolved = state.resolved.value
        resolved_at = resolved.resolved_at
        resolved_day = local_day(resolved_at)
        daily[(unit, "resolved", resolved_day)] += 1
        on_time = due_at is None or resolved_at <= due_at
        daily[(unit, "resolved_on_time" if on_time else "resolved_late", resolved_day)] += 1
        if resolved.result_digitization_required:
            daily[(unit, "result_digitization_required", resolved_day)] += 1
            if state.result_digitized:
                daily[(unit, "results_digitized", resolved_day)] += 1

    withdrawn_at = state.withdrawn.value if state.withdrawn is not None else None
    if withdrawn_at is not None:
        daily[(unit, "withdrawn", local_day(withdrawn_at))] += 1

    if state.rating is not None:
        rating = state.rating.value
        rated_day = local_day(rating.rated_at)
        daily[(unit, "ratings", rated_day)] += 1
        if rating.rating != "dissatisfied":
            daily[(unit, "ratings_satisfied", rated_day)] += 1

    # In progress at t: received_at <= t, and neither resolved nor withdrawn at or before t.
    ends = [moment for moment in (resolved_at, withdrawn_at) if moment is not None]
    ended_at = min(ends) if ends else None
    _add_interval(result.levels, unit, "in_progress", received.received_at, ended_at)
    if due_at is not None:
        # Overdue at t: in progress at t and due_at < t.
        overdue_from = max(received.received_at, due_at + TICK)
        _add_interval(result.levels, unit, "in_progress_overdue", overdue_from, ended_at)
    return result


def _add_interval(levels: Counter[LevelKey], unit: str, counter: str, start: datetime, end: datetime | None) -> None:
    """+1 from `start` (inclusive) until `end` (exclusive); nothing if the interval is empty."""
    if end is not None and end <= start:
        return
    levels[(unit, counter, start.astimezone(UTC))] += 1
    if end is not None:
        levels[(unit, counter, end.astimezone(UTC))] -= 1


def _document_contributions(state: DocumentState) -> Contributions:
    result = Contributions.empty()
    if state.registered is None or state.registered.value.confidential:
        return result  # confidential documents count in no indicator
    reg = state.registered.value
    day = local_day(reg.registered_at)
    result.daily[(reg.unit, f"documents_{reg.direction}", day)] += 1
    if reg.electronic:
        result.daily[(reg.unit, "documents_electronic", day)] += 1
    if state.signed_by_organization is not None:
        signed_day = local_day(state.signed_by_organization.value)
        result.daily[(reg.unit, "signed_by_organization", signed_day)] += 1
    if state.signed_by_leader is not None:
        result.daily[(reg.unit, "signed_by_leader", local_day(state.signed_by_leader.value))] += 1
    return result


def _procedure_contributions(state: ProcedureState) -> Contributions:
    """Level changes of the procedure's published service level over time.

    At instant t the procedure's state is set by the greatest-version entry among those in force
    (effective_at <= t); it counts when that entry is a publication.
    """
    result = Contributions.empty()
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
            result.levels[(state.unit, f"procedures_{current}", at)] -= 1
        if winner.service_level is not None:
            result.levels[(state.unit, f"procedures_{winner.service_level}", at)] += 1
        current = winner.service_level
    return result
