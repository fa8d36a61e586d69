"""The one definition of every event of the public contract (CloudEvents 1.0, structured JSON).

Intake validates requests with these models; the aggregator decodes Kafka records with them.
Envelope extension attributes are accepted and dropped; `data` allows exactly the listed fields,
which keeps personal data out of the system.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

# --- input limits (contract §2): what an accepted event may hold, so that every one is storable ---
# They are pydantic-core constraints (no Python callback per field): the aggregator decodes every
# record with these models on its hot path, and a record outside them is a dead letter there.

# Control characters (C0, DEL, C1): PostgreSQL cannot store NUL in text, and no upstream system
# means any of them in an identifier or a code. Lone surrogates never get this far: the JSON
# parser refuses them (the intake reports them by field, see services/intake/validation.py).
CONTROL_CHARACTERS = "\\x00-\\x1f\\x7f-\\x9f"
NO_CONTROL_CHARACTERS = f"^[^{CONTROL_CHARACTERS}]*$"
FORBIDDEN_TEXT_MESSAGE = "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or lone surrogates"
_FORBIDDEN_TEXT = re.compile(f"[{CONTROL_CHARACTERS}\\ud800-\\udfff]")

_VIETNAM = timezone(timedelta(hours=7))
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=_VIETNAM)
LATEST_INSTANT = datetime(2999, 12, 31, 23, 59, 59, tzinfo=_VIETNAM)
MAX_AMOUNT_VND = 10**15


def has_forbidden_text(value: object) -> bool:
    """Whether a JSON value (or any string in it) holds a control character or a lone surrogate."""
    if isinstance(value, str):
        return _FORBIDDEN_TEXT.search(value) is not None
    if isinstance(value, dict):
        return any(has_forbidden_text(k) or has_forbidden_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_forbidden_text(item) for item in value)
    return False


Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
UnitCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
# Instants compare whatever their offsets: 9999-12-31T23:59:59-12:00 is past the latest.
Timestamp = Annotated[AwareDatetime, Field(ge=EARLIEST_INSTANT, le=LATEST_INSTANT)]

DOSSIER_RECEIVED = "vn.gov.tthc.dossier.received"
DOSSIER_DUE_CHANGED = "vn.gov.tthc.dossier.due_changed"
DOSSIER_COMPONENTS_DIGITIZED = "vn.gov.tthc.dossier.components_digitized"
DOSSIER_RESOLVED = "vn.gov.tthc.dossier.resolved"
DOSSIER_RESULT_DIGITIZED = "vn.gov.tthc.dossier.result_digitized"
DOSSIER_PAID = "vn.gov.tthc.dossier.paid"
DOSSIER_WITHDRAWN = "vn.gov.tthc.dossier.withdrawn"
DOSSIER_RATED = "vn.gov.tthc.dossier.rated"
DOSSIER_SUPPLEMENT_REQUESTED = "vn.gov.tthc.dossier.supplement_requested"
DOSSIER_SUPPLEMENT_COMPLETED = "vn.gov.tthc.dossier.supplement_completed"
DOSSIER_SYNCED = "vn.gov.tthc.dossier.synced"
DOCUMENT_REGISTERED = "vn.gov.qlvb.document.registered"
DOCUMENT_SIGNED = "vn.gov.qlvb.document.signed"
PROCEDURE_PUBLISHED = "vn.gov.tthc.procedure.published"
PROCEDURE_UNPUBLISHED = "vn.gov.tthc.procedure.unpublished"


class _Data(BaseModel):
    # strict: JSON booleans and integers only, timestamps only as RFC 3339 strings.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class DossierReceivedData(_Data):
    dossier_id: Identifier
    unit: UnitCode
    procedure_code: Identifier
    channel: Literal["online", "direct", "postal"]
    received_at: Timestamp
    due_at: Timestamp | None
    fee_required: bool
    digitization_required: bool = True


class DossierDueChangedData(_Data):
    dossier_id: Identifier
    due_at: Timestamp | None


class DossierComponentsDigitizedData(_Data):
    dossier_id: Identifier
    digitized_at: Timestamp
    reused: bool = False  # v2: at least one component was taken from already digitized data
    from_personal_store: bool = False  # v2: at least one came from the applicant's store on DVCQG


class DossierResolvedData(_Data):
    dossier_id: Identifier
    resolved_at: Timestamp
    outcome: Literal["approved", "rejected"]
    result_digitization_required: bool = True


class DossierResultDigitizedData(_Data):
    dossier_id: Identifier
    digitized_at: Timestamp


class DossierPaidData(_Data):
    dossier_id: Identifier
    paid_at: Timestamp
    method: Literal["online", "offline"]
    amount_vnd: Annotated[int, Field(ge=0, le=MAX_AMOUNT_VND)]


class DossierWithdrawnData(_Data):
    dossier_id: Identifier
    withdrawn_at: Timestamp


class DossierRatedData(_Data):
    dossier_id: Identifier
    rated_at: Timestamp
    rating: Literal["very_satisfied", "satisfied", "dissatisfied"]


class DossierSupplementRequestedData(_Data):
    dossier_id: Identifier
    requested_at: Timestamp


class DossierSupplementCompletedData(_Data):
    dossier_id: Identifier
    completed_at: Timestamp


class DossierSyncedData(_Data):
    dossier_id: Identifier
    synced_at: Timestamp


class DocumentRegisteredData(_Data):
    document_id: Identifier
    unit: UnitCode
    direction: Literal["incoming", "outgoing"]
    registered_at: Timestamp
    electronic: bool
    confidential: bool


class DocumentSignedData(_Data):
    document_id: Identifier
    signed_at: Timestamp
    signer: Literal["leader", "organization"]


class ProcedurePublishedData(_Data):
    procedure_code: Identifier
    unit: UnitCode
    service_level: Literal["info", "partial_online", "full_online"]
    published_at: Timestamp
    fee_bearing: bool = False  # v2: the procedure charges a fee or charge
    requires_paper_result: bool = True  # v2


class ProcedureUnpublishedData(_Data):
    procedure_code: Identifier
    unit: UnitCode
    unpublished_at: Timestamp


class _CloudEvent(BaseModel):
    # Unknown envelope attributes are CloudEvents extensions: accepted, held to the input limits
    # (`contract_problems`), and dropped when the event is encoded.
    model_config = ConfigDict(frozen=True, extra="allow", strict=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)]
    source: Annotated[str, Field(min_length=1, max_length=1024, pattern=f"^[^\\s{CONTROL_CHARACTERS}]+$")]
    time: Timestamp
    subject: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
    datacontenttype: Literal["application/json"] | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return (self.source, self.id)

    def subject_of_data(self) -> str:
        raise NotImplementedError

    def fact_timestamps(self) -> dict[str, datetime]:
        """Data timestamps that record a fact (all but deadlines), by dotted field path."""
        data = getattr(self, "data")  # noqa: B009 - every concrete event has data
        return {f"data.{name}": value for name, value in data if isinstance(value, datetime) and name != "due_at"}


class _DossierEvent(_CloudEvent):
    def subject_of_data(self) -> str:
        return str(getattr(self, "data").dossier_id)  # noqa: B009


class _DocumentEvent(_CloudEvent):
    def subject_of_data(self) -> str:
        return str(getattr(self, "data").document_id)  # noqa: B009


class _ProcedureEvent(_CloudEvent):
    def subject_of_data(self) -> str:
        return str(getattr(self, "data").procedure_code)  # noqa: B009


class DossierReceived(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.received"]
    data: DossierReceivedData


class DossierDueChanged(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.due_changed"]
    data: DossierDueChangedData


class DossierComponentsDigitized(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.components_digitized"]
    data: DossierComponentsDigitizedData


class DossierResolved(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.resolved"]
    data: DossierResolvedData


class DossierResultDigitized(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.result_digitized"]
    data: DossierResultDigitizedData


class DossierPaid(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.paid"]
    data: DossierPaidData


class DossierWithdrawn(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.withdrawn"]
    data: DossierWithdrawnData


class DossierRated(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.rated"]
    data: DossierRatedData


class DossierSupplementRequested(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.supplement_requested"]
    data: DossierSupplementRequestedData


class DossierSupplementCompleted(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.supplement_completed"]
    data: DossierSupplementCompletedData


class DossierSynced(_DossierEvent):
    type: Literal["vn.gov.tthc.dossier.synced"]
    data: DossierSyncedData


class DocumentRegistered(_DocumentEvent):
    type: Literal["vn.gov.qlvb.document.registered"]
    data: DocumentRegisteredData


class DocumentSigned(_DocumentEvent):
    type: Literal["vn.gov.qlvb.document.signed"]
    data: DocumentSignedData


class ProcedurePublished(_ProcedureEvent):
    type: Literal["vn.gov.tthc.procedure.published"]
    data: ProcedurePublishedData


class ProcedureUnpublished(_ProcedureEvent):
    type: Literal["vn.gov.tthc.procedure.unpublished"]
    data: ProcedureUnpublishedData


DossierEvent = (
    DossierReceived
    | DossierDueChanged
    | DossierComponentsDigitized
    | DossierResolved
    | DossierResultDigitized
    | DossierPaid
    | DossierWithdrawn
    | DossierRated
    | DossierSupplementRequested
    | DossierSupplementCompleted
    | DossierSynced
)
DocumentEvent = DocumentRegistered | DocumentSigned
ProcedureEvent = ProcedurePublished | ProcedureUnpublished

Event = Annotated[DossierEvent | DocumentEvent | ProcedureEvent, Field(discriminator="type")]

EVENT_TYPES: frozenset[str] = frozenset(
    {
        DOSSIER_RECEIVED,
        DOSSIER_DUE_CHANGED,
        DOSSIER_COMPONENTS_DIGITIZED,
        DOSSIER_RESOLVED,
        DOSSIER_RESULT_DIGITIZED,
        DOSSIER_PAID,
        DOSSIER_WITHDRAWN,
        DOSSIER_RATED,
        DOSSIER_SUPPLEMENT_REQUESTED,
        DOSSIER_SUPPLEMENT_COMPLETED,
        DOSSIER_SYNCED,
        DOCUMENT_REGISTERED,
        DOCUMENT_SIGNED,
        PROCEDURE_PUBLISHED,
        PROCEDURE_UNPUBLISHED,
    }
)

# Module-level adapters: built once, decode straight from bytes.
event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
event_batch_adapter: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

# How far in the future a fact may be stamped before the event is refused (contract §2, "Future").
FUTURE_TOLERANCE = timedelta(minutes=5)


def decode_event(raw: bytes) -> Event:
    """Decode one event from its JSON bytes; raises pydantic.ValidationError."""
    return event_adapter.validate_json(raw)


def encode_event(event: Event) -> bytes:
    """The canonical JSON form published to Kafka (extensions dropped, field order fixed).

    `datacontenttype` is always written: the data is JSON, and the CloudEvents SDKs refuse a null.
    """
    if event.datacontenttype is None:
        event = event.model_copy(update={"datacontenttype": "application/json"})
    extensions = event.__pydantic_extra__
    return event.model_dump_json(exclude=set(extensions) if extensions else None).encode()


def unit_of(event: Event) -> str | None:
    """The unit an event names itself, if it names one (follow-up dossier events do not)."""
    return getattr(event.data, "unit", None)


# The data field of the fact date that places an event's unit in time (contract §1.1).
_UNIT_FACT_FIELD = {
    DossierReceived: "received_at",
    DocumentRegistered: "registered_at",
    ProcedurePublished: "published_at",
    ProcedureUnpublished: "unpublished_at",
}


def unit_fact(event: Event) -> tuple[str, datetime] | None:
    """The unit code an event names and the fact date it is named for, if it names one."""
    fact = _UNIT_FACT_FIELD.get(type(event))
    if fact is None:
        return None
    return getattr(event.data, "unit"), getattr(event.data, fact)  # noqa: B009


def contract_problems(event: Event, now: datetime) -> list[tuple[str, str]]:
    """Rules across fields and against the clock, as (dotted field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if event.subject != event.subject_of_data():
        problems.append(("subject", f"must equal the identifier in data ({event.subject_of_data()!r})"))
    if isinstance(event, DossierReceived):
        due_at = event.data.due_at
        if due_at is not None and due_at < event.data.received_at:
            problems.append(("data.due_at", "must not be before data.received_at"))
    for name, value in (event.__pydantic_extra__ or {}).items():
        if has_forbidden_text(name) or has_forbidden_text(value):
            problems.append((name.encode("unicode_escape").decode(), FORBIDDEN_TEXT_MESSAGE))
    limit = now + FUTURE_TOLERANCE
    stamped = {"time": event.time, **event.fact_timestamps()}
    problems += [(path, "lies more than 5 minutes in the future") for path, value in stamped.items() if value > limit]
    return problems
