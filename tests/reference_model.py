"""A reference model of the indicators, written from the words of the contract (§2 and §5) alone.

It shares no code with the aggregator: it takes the whole set of events at once, picks each fact's
winning event as §2 says, and counts every figure of §5 directly for a window, an `as_of` and a set
of units. Tests compare the aggregator's incremental counters with it. Slow and plain on purpose.

It also builds contract events as JSON-ready dicts (`event`), the form the model reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

# Days are calendar days in Asia/Ho_Chi_Minh, which is UTC+07:00 all year (contract §1).
VIETNAM = timezone(timedelta(hours=7))

DOSSIER_PREFIX = "vn.gov.tthc.dossier."
DOCUMENT_PREFIX = "vn.gov.qlvb.document."
PROCEDURE_PREFIX = "vn.gov.tthc.procedure."
DEFAULT_SOURCE = "urn:vn:test:reference"

# Which data field holds the subject, by event family.
_SUBJECT_FIELD = {"dossier": "dossier_id", "document": "document_id", "procedure": "procedure_code"}
_PREFIX = {"dossier": DOSSIER_PREFIX, "document": DOCUMENT_PREFIX, "procedure": PROCEDURE_PREFIX}
# The data timestamp that records each event's fact: the default envelope `time`.
_FACT_FIELD = {
    "dossier.received": "received_at",
    "dossier.due_changed": None,
    "dossier.components_digitized": "digitized_at",
    "dossier.resolved": "resolved_at",
    "dossier.result_digitized": "digitized_at",
    "dossier.paid": "paid_at",
    "dossier.withdrawn": "withdrawn_at",
    "dossier.rated": "rated_at",
    "dossier.supplement_requested": "requested_at",
    "dossier.supplement_completed": "completed_at",
    "dossier.synced": "synced_at",
    "document.registered": "registered_at",
    "document.signed": "signed_at",
    "procedure.published": "published_at",
    "procedure.unpublished": "unpublished_at",
}

DOSSIER_FIGURES = (
    "received", "received_online", "received_direct", "received_postal",
    "resolved", "resolved_on_time", "resolved_late", "in_progress", "in_progress_overdue", "withdrawn",
    "digitization_required", "components_digitized", "result_digitization_required", "results_digitized",
    "fee_required", "paid_online", "ratings", "ratings_satisfied",
    "synced", "supplement_requested", "components_reused", "components_from_personal_store",
)  # fmt: skip
DOCUMENT_FIGURES = ("incoming", "outgoing", "electronic", "signed_by_organization", "signed_by_leader")
PROCEDURE_FIGURES = ("total", "info", "partial_online", "full_online")
RATES = {
    "online": ("dossiers", "received_online", "received"),
    "resolved_on_time": ("dossiers", "resolved_on_time", "resolved"),
    "in_progress_overdue": ("dossiers", "in_progress_overdue", "in_progress"),
    "components_digitized": ("dossiers", "components_digitized", "digitization_required"),
    "results_digitized": ("dossiers", "results_digitized", "result_digitization_required"),
    "paid_online": ("dossiers", "paid_online", "fee_required"),
    "satisfaction": ("dossiers", "ratings_satisfied", "ratings"),
    "signed_by_leader": ("documents", "signed_by_leader", "signed_by_organization"),
}


InWindow = Callable[[datetime | None], bool]
# Whether the events of a unit code on a local day count (the roll-up of a tree, §1.1): a dossier is
# asked with its received unit and day, a document with its registered ones, a procedure with the
# unit and day of its winning publication and the day of `as_of` (its unit must still exist then).
UnitFilter = Callable[[str, date], bool]
ProcedureFilter = Callable[[str, date, date], bool]


# --- building events ------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def event(
    kind: str,
    subject: str,
    *,
    id: str,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    **data: Any,
) -> dict[str, Any]:
    """A contract event as a JSON-ready dict: `kind` like "dossier.received", `subject` its identifier.

    `time` defaults to the event's fact timestamp (e.g. `received_at`); `due_changed` needs it.
    """
    family = kind.split(".", 1)[0]
    if time is None:
        fact = _FACT_FIELD[kind]
        if fact is None:
            raise ValueError(f"{kind} needs an explicit time")
        time = data[fact]
    assert time is not None
    body = {_SUBJECT_FIELD[family]: subject, **{name: _json_value(value) for name, value in data.items()}}
    return {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": _PREFIX[family] + kind.split(".", 1)[1],
        "time": time.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": body,
    }


def to_json_bytes(raw: Mapping[str, Any]) -> bytes:
    return json.dumps(raw).encode()


# --- reading events -------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return moment


def _as_dict(item: Any) -> dict[str, Any]:
    """Accepts JSON dicts, JSON bytes/str, or pydantic event models."""
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, bytes | str):
        loaded: dict[str, Any] = json.loads(item)
        return loaded
    dumped: dict[str, Any] = item.model_dump(mode="json")
    return dumped


@dataclass(frozen=True)
class _Event:
    type: str
    source: str
    id: str
    time: datetime
    data: Mapping[str, Any]

    def rank(self) -> tuple[datetime, str, str]:
        # §2: the latest `time` wins; on equal time, the greater `id`. The source only breaks ties
        # the contract leaves open (equal time and id from two sources); any fixed rule would do.
        return (self.time, self.id, self.source)

    def at(self, field: str) -> datetime | None:
        value = self.data.get(field)
        return None if value is None else _parse_time(value)


def _winner(events: Iterable[_Event]) -> _Event | None:
    best: _Event | None = None
    for item in events:
        if best is None or item.rank() > best.rank():
            best = item
    return best


def distinct_events(events: Iterable[Any]) -> list[_Event]:
    """The set of distinct events, by identity (source, id); the first of a reused identity counts."""
    seen: dict[tuple[str, str], _Event] = {}
    for item in events:
        raw = _as_dict(item)
        identity = (raw["source"], raw["id"])
        if identity not in seen:
            seen[identity] = _Event(raw["type"], raw["source"], raw["id"], _parse_time(raw["time"]), raw["data"])
    return list(seen.values())


def local_day(moment: datetime) -> date:
    return moment.astimezone(VIETNAM).date()


# --- figures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The distinct events grouped by subject, read once for many queries over the same stream."""

    by_subject: Mapping[tuple[str, str], list[_Event]]
    # The unit code and local day a dossier (its winning `received`) or document (its winning
    # `registered`) counts by; None when it counts nowhere. Only a shortcut: the counting functions
    # decide again from the events.
    anchors: Mapping[tuple[str, str], tuple[str, date] | None]


def _anchor(family: str, items: list[_Event]) -> tuple[str, date] | None:
    kind, field = ("received", "received_at") if family == "dossier" else ("registered", "registered_at")
    winner = _winner(_of_type(items, kind))
    moment = None if winner is None else winner.at(field)
    return None if winner is None or moment is None else (winner.data["unit"], local_day(moment))


def prepare(events: Iterable[Any]) -> Prepared:
    by_subject: dict[tuple[str, str], list[_Event]] = defaultdict(list)
    for item in distinct_events(events):
        if item.type.startswith(DOSSIER_PREFIX):
            by_subject[("dossier", item.data["dossier_id"])].append(item)
        elif item.type.startswith(DOCUMENT_PREFIX):
            by_subject[("document", item.data["document_id"])].append(item)
        else:  # a procedure is identified by (unit, procedure_code)
            by_subject[("procedure", f"{item.data['unit']}/{item.data['procedure_code']}")].append(item)
    anchors = {key: _anchor(key[0], items) for key, items in by_subject.items() if key[0] != "procedure"}
    return Prepared(dict(by_subject), anchors)


def _filters(
    units: Iterable[str] | UnitFilter, procedures: ProcedureFilter | None
) -> tuple[UnitFilter, ProcedureFilter]:
    if callable(units):
        unit_filter: UnitFilter = units
    else:
        chosen = set(units)

        def unit_filter(code: str, day: date) -> bool:
            return code in chosen

    if procedures is None:

        def procedures(code: str, published: date, as_of_day: date) -> bool:
            return unit_filter(code, published)

    return unit_filter, procedures


def figures(
    events: Iterable[Any] | Prepared,
    start: date,
    end: date,
    as_of: datetime,
    units: Iterable[str] | UnitFilter,
    procedure_units: ProcedureFilter | None = None,
) -> dict[str, dict[str, Any]]:
    """Every figure of §5 for window [start, end], time `as_of` and the given units, plus the rates.

    `units` is a set of codes (units valid forever) or a `UnitFilter` (a tree's roll-up);
    `procedure_units` decides for procedures (default: `units` on the publication day)."""
    unit_filter, procedure_filter = _filters(units, procedure_units)
    prepared = events if isinstance(events, Prepared) else prepare(events)

    def in_window(moment: datetime | None) -> bool:
        return moment is not None and start <= local_day(moment) <= end

    dossiers = dict.fromkeys(DOSSIER_FIGURES, 0)
    documents = dict.fromkeys(DOCUMENT_FIGURES, 0)
    procedures = dict.fromkeys(PROCEDURE_FIGURES, 0)
    for key, items in prepared.by_subject.items():
        family = key[0]
        if family != "procedure":
            anchor = prepared.anchors[key]
            if anchor is None or not unit_filter(*anchor):
                continue
        if family == "dossier":
            _count_dossier(items, unit_filter, in_window, as_of, dossiers)
        elif family == "document":
            _count_document(items, unit_filter, in_window, documents)
        else:
            _count_procedure(items, procedure_filter, as_of, procedures)
    groups: dict[str, dict[str, Any]] = {"dossiers": dossiers, "documents": documents, "procedures": procedures}
    groups["rates"] = {
        name: (None if groups[group][den] == 0 else round(groups[group][num] / groups[group][den], 4))
        for name, (group, num, den) in RATES.items()
    }
    return groups


def _of_type(items: Iterable[_Event], *names: str) -> list[_Event]:
    return [item for item in items if item.type.rsplit(".", 1)[1] in names]


def _count_dossier(
    items: list[_Event], units: UnitFilter, in_window: InWindow, as_of: datetime, out: dict[str, int]
) -> None:
    received = _winner(_of_type(items, "received"))
    if received is None:
        return  # until its `received` event arrives, a dossier counts nowhere
    received_at = received.at("received_at")
    assert received_at is not None
    if not units(received.data["unit"], local_day(received_at)):
        return  # the unit valid on its received day does not roll up here
    due_event = _winner(_of_type(items, "received", "due_changed"))
    assert due_event is not None
    due_at = due_event.at("due_at")
    resolved = _winner(_of_type(items, "resolved"))
    resolved_at = resolved.at("resolved_at") if resolved else None
    withdrawn = _winner(_of_type(items, "withdrawn"))
    withdrawn_at = withdrawn.at("withdrawn_at") if withdrawn else None
    rated = _winner(_of_type(items, "rated"))
    components_digitized = bool(_of_type(items, "components_digitized"))
    result_digitized = bool(_of_type(items, "result_digitized"))
    paid_online = any(item.data["method"] == "online" for item in _of_type(items, "paid"))
    # v2: flags true if any event says so; supplement requests are the set of their distinct events.
    digitizations = _of_type(items, "components_digitized")
    reused = any(item.data.get("reused", False) for item in digitizations)
    from_personal_store = any(item.data.get("from_personal_store", False) for item in digitizations)
    synced = bool(_of_type(items, "synced"))
    supplement_requests = len(_of_type(items, "supplement_requested"))

    if in_window(received_at):
        out["received"] += 1
        out[f"received_{received.data['channel']}"] += 1
        if received.data.get("digitization_required", True):
            out["digitization_required"] += 1
            out["components_digitized"] += components_digitized
        if received.data["fee_required"]:
            out["fee_required"] += 1
            out["paid_online"] += paid_online
        out["synced"] += synced
        out["supplement_requested"] += supplement_requests > 0
        out["components_reused"] += reused
        out["components_from_personal_store"] += from_personal_store
    if resolved is not None and in_window(resolved_at):
        assert resolved_at is not None
        out["resolved"] += 1
        if due_at is None or resolved_at <= due_at:
            out["resolved_on_time"] += 1
        else:
            out["resolved_late"] += 1
        if resolved.data.get("result_digitization_required", True):
            out["result_digitization_required"] += 1
            out["results_digitized"] += result_digitized
    if in_window(withdrawn_at):
        out["withdrawn"] += 1
    if rated is not None and in_window(rated.at("rated_at")):
        out["ratings"] += 1
        out["ratings_satisfied"] += rated.data["rating"] in ("very_satisfied", "satisfied")
    in_progress = (
        received_at <= as_of
        and not (resolved_at is not None and resolved_at <= as_of)
        and not (withdrawn_at is not None and withdrawn_at <= as_of)
    )
    if in_progress:
        out["in_progress"] += 1
        out["in_progress_overdue"] += due_at is not None and due_at < as_of


def _count_document(items: list[_Event], units: UnitFilter, in_window: InWindow, out: dict[str, int]) -> None:
    registered = _winner(_of_type(items, "registered"))
    if registered is None or registered.data["confidential"]:
        return  # confidential documents count in no indicator
    registered_at = registered.at("registered_at")
    assert registered_at is not None
    if not units(registered.data["unit"], local_day(registered_at)):
        return
    if in_window(registered.at("registered_at")):
        out[registered.data["direction"]] += 1
        out["electronic"] += bool(registered.data["electronic"])
    signed = _of_type(items, "signed")
    for kind in ("organization", "leader"):
        signature = _winner(item for item in signed if item.data["signer"] == kind)
        if signature is not None and in_window(signature.at("signed_at")):
            out[f"signed_by_{kind}"] += 1


def _count_procedure(items: list[_Event], units: ProcedureFilter, as_of: datetime, out: dict[str, int]) -> None:
    def effective_at(item: _Event) -> datetime:
        moment = item.at("published_at") if item.type.endswith(".published") else item.at("unpublished_at")
        assert moment is not None
        return moment

    winner = _winner(item for item in items if effective_at(item) <= as_of)
    if winner is None or not winner.type.endswith(".published"):
        return
    if units(winner.data["unit"], local_day(effective_at(winner)), local_day(as_of)):
        out["total"] += 1
        out[winner.data["service_level"]] += 1
