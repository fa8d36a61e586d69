"""Messy event streams for exactly-once tests: duplicates, shuffled order, corrections, late and
orphan events, identity conflicts, timestamps on both sides of local midnight.

Identity conflicts reuse the identity of an event about the same subject, so both land in one
partition and "the first one accepted" is the first in the returned order.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from shared.events import Event, event_adapter
from shared.timezone import local_day
from tests.planning import plan_batch
from tests.reference_model import event

VN = timezone(timedelta(hours=7))
UNITS = [
    "my-hao", "my-hao.minh-duc", "my-hao.xuan-duc", "my-hao.hung-long", "my-hao.ban-yen-nhan",
    "my-hao.di-su", "hung-yen",
]  # fmt: skip
SOURCE = "urn:vn:test:stream"


def _moment(rng: random.Random) -> datetime:
    day = date(2023, 1, 2) + timedelta(days=rng.randrange(330))
    if rng.random() < 0.1:  # just before or after local midnight, written in UTC or +07:00
        local = datetime(day.year, day.month, day.day, 23, 59, tzinfo=VN) + timedelta(minutes=rng.choice([-20, 2]))
        return local.astimezone(UTC) if rng.random() < 0.5 else local
    return datetime(day.year, day.month, day.day, 7, 30, tzinfo=VN) + timedelta(minutes=rng.randrange(570))


def _later(rng: random.Random, start: datetime, max_days: int = 20) -> datetime:
    return start + timedelta(minutes=rng.randrange(1, max_days * 24 * 60))


class _Ids:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"{self._prefix}-{self._next}"


def _dossier(rng: random.Random, dossier_id: str, next_id: _Ids) -> list[dict[str, Any]]:
    received_at = _moment(rng)
    unit = rng.choice(UNITS)
    due_at = None if rng.random() < 0.1 else _later(rng, received_at, 15)
    out = []
    if rng.random() > 0.03:  # else an orphan: its `received` never arrives
        out.append(
            event(
                "dossier.received",
                dossier_id,
                id=next_id(),
                unit=unit,
                procedure_code="1.00" + str(rng.randrange(30)),
                channel=rng.choice(["online", "online", "direct", "postal"]),
                received_at=received_at,
                due_at=due_at,
                fee_required=rng.random() < 0.4,
                digitization_required=rng.random() < 0.95,
            )
        )
        if rng.random() < 0.05:  # a correction of the channel and unit, sent later
            out.append(
                event(
                    "dossier.received",
                    dossier_id,
                    id=next_id(),
                    time=_later(rng, received_at, 2),
                    unit=rng.choice(UNITS),
                    procedure_code="1.001",
                    channel="direct",
                    received_at=received_at,
                    due_at=due_at,
                    fee_required=True,
                )
            )
    if rng.random() < 0.1:
        out.append(
            event(
                "dossier.due_changed",
                dossier_id,
                id=next_id(),
                time=_later(rng, received_at, 5),
                due_at=_later(rng, received_at, 30),
            )
        )
    if rng.random() < 0.8:
        out.append(
            event("dossier.components_digitized", dossier_id, id=next_id(), digitized_at=_later(rng, received_at, 1))
        )
    if rng.random() < 0.85:
        resolved_at = _later(rng, received_at, 20)
        out.append(
            event(
                "dossier.resolved",
                dossier_id,
                id=next_id(),
                resolved_at=resolved_at,
                outcome=rng.choice(["approved", "approved", "rejected"]),
                result_digitization_required=rng.random() < 0.8,
            )
        )
        if rng.random() < 0.05:  # two events, one instant: the greater id wins
            out.append(
                event(
                    "dossier.resolved",
                    dossier_id,
                    id=next_id() + "-z",
                    time=resolved_at,
                    resolved_at=resolved_at + timedelta(days=3),
                    outcome="rejected",
                )
            )
        if rng.random() < 0.7:
            out.append(
                event("dossier.result_digitized", dossier_id, id=next_id(), digitized_at=_later(rng, resolved_at, 2))
            )
        if rng.random() < 0.4:
            out.append(
                event(
                    "dossier.rated",
                    dossier_id,
                    id=next_id(),
                    rated_at=_later(rng, resolved_at, 3),
                    rating=rng.choice(["very_satisfied", "satisfied", "dissatisfied"]),
                )
            )
    elif rng.random() < 0.3:
        out.append(event("dossier.withdrawn", dossier_id, id=next_id(), withdrawn_at=_later(rng, received_at, 10)))
    if rng.random() < 0.4:
        out.append(
            event(
                "dossier.paid",
                dossier_id,
                id=next_id(),
                paid_at=_later(rng, received_at, 3),
                method=rng.choice(["online", "offline"]),
                amount_vnd=rng.randrange(0, 500_000),
            )
        )
    return out


def _document(rng: random.Random, document_id: str, next_id: _Ids) -> list[dict[str, Any]]:
    registered_at = _moment(rng)
    out = []
    if rng.random() > 0.03:
        out.append(
            event(
                "document.registered",
                document_id,
                id=next_id(),
                unit=rng.choice(UNITS),
                direction=rng.choice(["incoming", "outgoing"]),
                registered_at=registered_at,
                electronic=rng.random() < 0.9,
                confidential=rng.random() < 0.05,
            )
        )
    for signer in ("organization", "leader"):
        if rng.random() < 0.5:
            out.append(
                event(
                    "document.signed", document_id, id=next_id(), signer=signer, signed_at=_later(rng, registered_at, 2)
                )
            )
    return out


def _procedure(rng: random.Random, code: str, next_id: _Ids) -> list[dict[str, Any]]:
    unit = rng.choice(UNITS)
    at = _moment(rng)
    out = [
        event(
            "procedure.published",
            code,
            id=next_id(),
            unit=unit,
            service_level=rng.choice(["info", "partial_online", "full_online"]),
            published_at=at,
        )
    ]
    for _ in range(rng.randrange(3)):
        at = _later(rng, at, 60)
        if rng.random() < 0.5:
            out.append(event("procedure.unpublished", code, id=next_id(), unit=unit, unpublished_at=at))
        else:
            out.append(
                event(
                    "procedure.published",
                    code,
                    id=next_id(),
                    unit=unit,
                    service_level=rng.choice(["info", "partial_online", "full_online"]),
                    published_at=at,
                )
            )
    return out


def messy_stream(seed: int, dossiers: int, documents: int = 0, procedures: int = 0) -> list[dict[str, Any]]:
    """Distinct events plus 10% duplicates and 0.5% identity conflicts, shuffled."""
    rng = random.Random(seed)
    next_id = _Ids(f"s{seed}")
    events: list[dict[str, Any]] = []
    for n in range(dossiers):
        events += _dossier(rng, f"D{seed}-{n}", next_id)
    for n in range(documents):
        events += _document(rng, f"V{seed}-{n}", next_id)
    for n in range(procedures):
        events += _procedure(rng, f"P{seed}-{n}", next_id)
    return _messy(rng, events)


def _messy(rng: random.Random, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in events:
        item["source"] = SOURCE
    extra = [dict(item) for item in rng.sample(events, len(events) // 10)]
    for original in rng.sample(events, len(events) // 200):
        conflicting = dict(original)
        conflicting["time"] = (datetime.fromisoformat(original["time"]) + timedelta(seconds=1)).isoformat()
        extra.append(conflicting)
    rng.shuffle(events)
    rng.shuffle(extra)
    # Duplicates and conflicts come after their originals in the same partition, as resends do.
    return events + extra


def _index_dossier(
    rng: random.Random, dossier_id: str, procedure: tuple[str, str], next_id: _Ids
) -> list[dict[str, Any]]:
    """A dossier of a catalogue procedure with the facts of Decision 766 (supplements, sync, reuse)."""
    unit, code = procedure
    received_at = _moment(rng)
    due_at = None if rng.random() < 0.1 else _later(rng, received_at, 12)
    fee = rng.random() < 0.5
    out = [
        event(
            "dossier.received",
            dossier_id,
            id=next_id(),
            unit=unit,
            procedure_code=code,
            channel=rng.choice(["online", "online", "direct", "postal"]),
            received_at=received_at,
            due_at=due_at,
            fee_required=fee,
            digitization_required=rng.random() < 0.9,
        )
    ]
    if rng.random() < 0.05:  # a later correction of the receipt: other channel, other day
        out.append(
            event(
                "dossier.received",
                dossier_id,
                id=next_id(),
                time=_later(rng, received_at, 40),
                unit=unit,
                procedure_code=code,
                channel="online",
                received_at=received_at + timedelta(days=rng.choice([-35, -1, 1, 35])),
                due_at=None,
                fee_required=not fee,
            )
        )
    if rng.random() < 0.85:
        out.append(event("dossier.synced", dossier_id, id=next_id(), synced_at=_later(rng, received_at, 2)))
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        requested_at = _later(rng, received_at, 5)
        out.append(event("dossier.supplement_requested", dossier_id, id=next_id(), requested_at=requested_at))
        if rng.random() < 0.7:
            completed_at = _later(rng, requested_at, 3)
            out.append(event("dossier.supplement_completed", dossier_id, id=next_id(), completed_at=completed_at))
    if rng.random() < 0.1 and due_at is not None:
        out.append(
            event(
                "dossier.due_changed",
                dossier_id,
                id=next_id(),
                time=_later(rng, received_at, 5),
                due_at=due_at + timedelta(days=3),
            )
        )
    if rng.random() < 0.75:
        out.append(
            event(
                "dossier.components_digitized",
                dossier_id,
                id=next_id(),
                digitized_at=_later(rng, received_at, 1),
                reused=rng.random() < 0.3,
                from_personal_store=rng.random() < 0.2,
            )
        )
    ended_at = _later(rng, received_at, 25)
    if rng.random() < 0.8:
        out.append(
            event(
                "dossier.resolved",
                dossier_id,
                id=next_id(),
                resolved_at=ended_at,
                outcome="approved",
                result_digitization_required=rng.random() < 0.7,
            )
        )
        if rng.random() < 0.6:
            out.append(
                event("dossier.result_digitized", dossier_id, id=next_id(), digitized_at=_later(rng, ended_at, 2))
            )
        if rng.random() < 0.5:
            rating = rng.choice(["very_satisfied", "satisfied", "dissatisfied"])
            out.append(
                event("dossier.rated", dossier_id, id=next_id(), rated_at=_later(rng, ended_at, 3), rating=rating)
            )
    if rng.random() < 0.1:  # withdrawn, possibly after it was resolved (the earlier one ends it)
        out.append(event("dossier.withdrawn", dossier_id, id=next_id(), withdrawn_at=_later(rng, received_at, 20)))
    if fee and rng.random() < 0.6:
        out.append(
            event(
                "dossier.paid",
                dossier_id,
                id=next_id(),
                paid_at=_later(rng, received_at, 3),
                method=rng.choice(["online", "online", "offline"]),
                amount_vnd=rng.randrange(0, 500_000),
            )
        )
    return out


def _index_procedure(rng: random.Random, unit: str, code: str, next_id: _Ids) -> list[dict[str, Any]]:
    at = datetime(2022, 12, 1, 8, tzinfo=VN) + timedelta(days=rng.randrange(200))

    def published(when: datetime) -> dict[str, Any]:
        return event(
            "procedure.published",
            code,
            id=next_id(),
            unit=unit,
            service_level=rng.choice(["info", "partial_online", "full_online", "full_online"]),
            published_at=when,
            fee_bearing=rng.random() < 0.5,
            requires_paper_result=rng.random() < 0.5,
        )

    out = [published(at)]
    for _ in range(rng.randrange(3)):
        at = _later(rng, at, 90)
        if rng.random() < 0.3:
            out.append(event("procedure.unpublished", code, id=next_id(), unit=unit, unpublished_at=at))
        else:
            out.append(published(at))
    return out


def index_stream(seed: int, dossiers: int, procedures: int) -> list[dict[str, Any]]:
    """A messy stream of catalogue procedures and their dossiers with every fact of Decision 766:
    duplicates, identity conflicts, corrections, shuffled (as `messy_stream`)."""
    rng = random.Random(seed)
    next_id = _Ids(f"x{seed}")
    catalogue = [(rng.choice(UNITS), f"X{seed}-{n}") for n in range(procedures)]
    events: list[dict[str, Any]] = []
    for unit, code in catalogue:
        events += _index_procedure(rng, unit, code, next_id)
    for n in range(dossiers):
        events += _index_dossier(rng, f"DX{seed}-{n}", rng.choice(catalogue), next_id)
    return _messy(rng, events)


def first_accepted(events: list[dict[str, Any]]) -> list[Event]:
    """The events that take effect: the first of each identity, as models."""
    seen: dict[tuple[str, str], Event] = {}
    for raw in events:
        identity = (raw["source"], raw["id"])
        if identity not in seen:
            seen[identity] = event_adapter.validate_python(raw, strict=False)
    return list(seen.values())


def expected_daily_counts(events: list[Event]) -> Counter[tuple[str, str, date]]:
    """(unit, counter, day) -> count, as the aggregator's daily_counts table must hold them."""
    delta = plan_batch(events, {}).delta
    result: Counter[tuple[str, str, date]] = Counter(delta.daily)
    for (unit, counter, at), value in delta.levels.items():
        result[(unit, counter, local_day(at))] += value
    return Counter({key: value for key, value in result.items() if value})
