"""The DVCQG synchronisation request (contract §3.1), parsed into models that hold only what is read (pure).

A one-stop system sends the National Public Service Portal (DVCQG) each dossier on every change,
with the service `DongBoHoSoMC` (the dossier as it stands: a *snapshot*) or `CapNhatTienDoHoSoMC`
(a progress step). Two body shapes exist in the wild: `{"service", "isUpdating", "data": [...]}`
(OpenCPS) and the bare array of records (the service then is `DongBoHoSoMC`).

The models name only the fields the adapter reads; every other field (the applicant's name, ID
numbers, phone, e-mail, address, the summary text, file names and paths, officers' names) is
ignored while parsing and never stored. A result file's path is read only as "present or not".
Error messages say what is wrong with a field and never repeat a value, read or unread.

Values may be strings or numbers (`"2"` and `2` alike); dates are `yyyyMMddHHmmss` local time
(UTC+07:00, the contract's fixed offset); an empty string or null means absent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

T = TypeVar("T")

MAX_RECORDS = 1000  # contract §3.1, as many as /v1/events takes

Service = Literal["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]
SYNC_SERVICE: Literal["DongBoHoSoMC"] = "DongBoHoSoMC"
PROGRESS_SERVICE: Literal["CapNhatTienDoHoSoMC"] = "CapNhatTienDoHoSoMC"
_SERVICES: dict[str, Service] = {SYNC_SERVICE: SYNC_SERVICE, PROGRESS_SERVICE: PROGRESS_SERVICE}

LOCAL_OFFSET = timezone(timedelta(hours=7))  # contract §1: every local date is at UTC+07:00

# Organ names are free text of the sender; bounded so that one field cannot carry a document.
_MAX_ORGAN_LENGTH = 512
# A fee of 10^15 VND has 16 digits; with separators and decimals well under this.
_MAX_AMOUNT_LENGTH = 32

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DIGITS_14 = re.compile(r"^[0-9]{14}$")
_GROUPED_INTEGER = re.compile(r"^[0-9]{1,3}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*$")
_DECIMAL = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


# --- errors ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordError:
    """One problem of a request: `index` = the record's position, `field` = its dotted field path."""

    index: int
    field: str
    message: str


class MalformedRequest(ValueError):
    """The body is not JSON, or not one of the two request shapes (HTTP 400)."""


class TooManyRecords(ValueError):
    """More than MAX_RECORDS records in one request (HTTP 413)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} records; at most {MAX_RECORDS} a request")
        self.count = count


def _invalid(message: str) -> PydanticCustomError:
    # The message is the whole text shown to the sender: it never includes the input.
    return PydanticCustomError("dvcqg_invalid", message)


# --- scalar values -----------------------------------------------------------------------------------


def _text_or_none(value: Any) -> str | None:
    """A string or a number as stripped text; "" and null are absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid("must be a string or a number")
    text = value.strip() if isinstance(value, str) else str(value)
    if _CONTROL.search(text):
        raise _invalid("must not contain control characters or lone surrogates")
    return text or None


def _identifier_or_none(value: Any) -> str | None:
    text = _text_or_none(value)
    if text is not None and len(text) > 64:
        raise _invalid("must have at most 64 characters (an identifier of the contract)")
    return text


def _required_identifier(value: Any) -> str:
    text = _identifier_or_none(value)
    if text is None:
        raise _invalid("is required")
    return text


def _organ_or_none(value: Any) -> str | None:
    text = _text_or_none(value)
    if text is not None and len(text) > _MAX_ORGAN_LENGTH:
        raise _invalid(f"must have at most {_MAX_ORGAN_LENGTH} characters")
    return text


def _local_time_or_none(value: Any) -> datetime | None:
    """`yyyyMMddHHmmss` in local time (a string, or the same digits as a number)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid("must be a date and time yyyyMMddHHmmss (local time)")
    text = value.strip() if isinstance(value, str) else str(value)
    if not text:
        return None
    if not _DIGITS_14.match(text):
        raise _invalid("must be a date and time yyyyMMddHHmmss (local time)")
    year = int(text[:4])
    if not 1970 <= year <= 2999:
        raise _invalid("must lie between the years 1970 and 2999")
    try:
        month, day, hour, minute, second = (int(text[at : at + 2]) for at in range(4, 14, 2))
        return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL_OFFSET)
    except ValueError:
        raise _invalid("is not a real date and time (yyyyMMddHHmmss)") from None


def _small_integer(value: Any) -> int | None:
    """An integer written as a JSON integer or as digits; None for "" and null."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _invalid("must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit() and len(text) <= 3:
            return int(text)
    raise _invalid("must be a number")


def _status(value: Any) -> int | None:
    code = _small_integer(value)
    if code is not None and not 1 <= code <= 10:
        raise _invalid("must be a status code from 1 to 10")
    return code


def _required_status(value: Any) -> int:
    code = _status(value)
    if code is None:
        raise _invalid("is required (a status code from 1 to 10)")
    return code


_CHANNELS: dict[int, Literal["direct", "online", "postal"]] = {1: "direct", 2: "online", 3: "postal"}


def _channel(value: Any) -> Literal["direct", "online", "postal"]:
    message = "must be 1 (direct), 2 (online) or 3 (postal)"
    try:
        code = _small_integer(value)
    except PydanticCustomError:
        raise _invalid(message) from None
    if code is None:
        return "direct"  # contract §3.1: absent or empty is a direct (in-person) dossier
    if code not in _CHANNELS:
        raise _invalid(message)
    return _CHANNELS[code]


_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


def _flag(value: Any) -> bool:
    """1/0, true/false, "1"/"0", "True"/"False" (OpenCPS writes `"IsDeleted": "False"`); absent is false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _invalid("must be 1 or 0 (or true or false)")


def _paid_online(value: Any) -> bool:
    """`DuocThanhToanTrucTuyen`: 0 not paid online, 1 paid on DVCQG, 2 through the province's gateway."""
    message = "must be 0, 1 or 2"
    try:
        code = _small_integer(value)
    except PydanticCustomError:
        raise _invalid(message) from None
    if code is None:
        return False
    if code not in (0, 1, 2):
        raise _invalid(message)
    return code != 0


def _amount(value: Any) -> Decimal:
    """A fee in VND: a JSON number, or digits (`50000`, `50000.5`, grouped `50.000` / `50,000`)."""
    message = "must be a non-negative amount in VND"
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise _invalid(message)
    if isinstance(value, int):
        if value < 0:
            raise _invalid(message)
        return Decimal(value)
    if isinstance(value, float):
        if not value >= 0 or value == float("inf"):  # also refuses NaN
            raise _invalid(message)
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            return Decimal(0)
        if len(text) <= _MAX_AMOUNT_LENGTH:
            # VND has no subunit: "50.000" is fifty thousand (Vietnamese grouping), not fifty.
            if _GROUPED_INTEGER.match(text):
                return Decimal(text.replace(".", "").replace(",", ""))
            if _DECIMAL.match(text):
                return Decimal(text)
    raise _invalid(message)


def _present(value: Any) -> bool:
    """Whether a path is given; the path itself (personal data: file names) is never kept."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    raise _invalid("must be a string")


def _entries(value: Any) -> Any:
    """Entry lists: null and "" are empty."""
    if value is None or value == "":
        return ()
    return value


Identifier = Annotated[str, BeforeValidator(_required_identifier)]
OptionalIdentifier = Annotated[str | None, BeforeValidator(_identifier_or_none)]
Organ = Annotated[str | None, BeforeValidator(_organ_or_none)]
LocalTime = Annotated[datetime | None, BeforeValidator(_local_time_or_none)]
Status = Annotated[int, BeforeValidator(_required_status)]
OptionalStatus = Annotated[int | None, BeforeValidator(_status)]
Channel = Annotated[Literal["direct", "online", "postal"], BeforeValidator(_channel)]
Flag = Annotated[bool, BeforeValidator(_flag)]
PaidOnline = Annotated[bool, BeforeValidator(_paid_online)]
Amount = Annotated[Decimal, BeforeValidator(_amount)]
Present = Annotated[bool, BeforeValidator(_present)]


# --- records -------------------------------------------------------------------------------------


class _Model(BaseModel):
    # extra="ignore": unread fields are dropped while parsing; nothing else of the input is kept.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)


def _entry_list(alias: str) -> Any:
    return Field(default=(), alias=alias)


# An entry list; null and "" read as empty (some senders write them for "none").
Entries = Annotated[tuple[T, ...], BeforeValidator(_entries)]


class Supplement(_Model):
    """An entry of `DanhSachHoSoBoSung`: a request for more papers (*yêu cầu bổ sung*)."""

    requested_at: LocalTime = Field(None, alias="NgayBoSung")
    completed_at: LocalTime = Field(None, alias="NgayTiepNhanBoSung")
    new_due_at: LocalTime = Field(None, alias="NgayHenTraMoi")  # the new legal due date


class FeeLine(_Model):
    """An entry of `DanhSachLePhi`."""

    amount: Amount = Field(Decimal(0), alias="Gia")


class SubmittedFile(_Model):
    """An entry of `TaiLieuNop` (a component of the dossier); its name and path are not read."""

    digitized: Flag = Field(False, alias="DuocSoHoa")
    reused: Flag = Field(False, alias="DuocTaiSuDung")
    from_personal_store: Flag = Field(False, alias="DuocLayTuKhoDMQG")
    deleted: Flag = Field(False, alias="IsDeleted")


class ResultFile(_Model):
    """An entry of `DanhSachGiayToKetQua`: only whether it has a file."""

    has_file: Present = Field(False, alias="DuongDanTepTinKetQua")


class DossierRecord(_Model):
    """A `DongBoHoSoMC` record: the dossier as it stands when the one-stop system sends it."""

    dossier_id: Identifier = Field(alias="MaHoSo")
    procedure_code: OptionalIdentifier = Field(None, alias="MaTTHC")
    received_at: LocalTime = Field(None, alias="NgayTiepNhan")
    due_at: LocalTime = Field(None, alias="NgayHenTra")
    channel: Channel = Field("direct", alias="KenhThucHien")
    status: Status = Field(alias="TrangThaiHoSo")
    processing_ended_at: LocalTime = Field(None, alias="NgayKetThucXuLy")
    returned_at: LocalTime = Field(None, alias="NgayTra")
    organ: Organ = Field(None, alias="DonViXuLy")
    supplements: Entries[Supplement] = _entry_list("DanhSachHoSoBoSung")
    fee_lines: Entries[FeeLine] = _entry_list("DanhSachLePhi")
    paid_online: PaidOnline = Field(False, alias="DuocThanhToanTrucTuyen")
    has_digitized_components: Flag = Field(False, alias="HoSoCoThanhPhanSoHoa")
    submitted_files: Entries[SubmittedFile] = _entry_list("TaiLieuNop")
    result_files: Entries[ResultFile] = _entry_list("DanhSachGiayToKetQua")


class ProgressStep(_Model):
    """A `CapNhatTienDoHoSoMC` record: one processing step (who handled it and how is not read)."""

    dossier_id: Identifier = Field(alias="MaHoSo")
    status: OptionalStatus = Field(None, alias="TrangThai")
    at: LocalTime = Field(None, alias="ThoiDiemXuLy")


Record = DossierRecord | ProgressStep

# --- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedRequest:
    """A request's records: the valid ones with their positions, and the problems of the others."""

    service: Service
    is_updating: bool | None  # informational: every record is handled as a whole snapshot anyway
    count: int
    records: tuple[tuple[int, Record], ...]
    errors: tuple[RecordError, ...]


def parse_request(body: bytes) -> ParsedRequest:
    """Parse a request body; raises MalformedRequest (400) or TooManyRecords (413)."""
    loaded = _load_json(body)
    service: Service = SYNC_SERVICE
    is_updating: bool | None = None
    errors: list[RecordError] = []
    if isinstance(loaded, list):
        items = loaded
        empty_field = ""
    elif isinstance(loaded, dict):
        data = loaded.get("data")
        if not isinstance(data, list):
            raise MalformedRequest("the body must be a JSON array of records or an object with a `data` array")
        items = data
        empty_field = "data"
        given = loaded.get("service", SYNC_SERVICE)
        named = _SERVICES.get(given) if isinstance(given, str) else None
        if named is not None:
            service = named
        else:
            errors.append(RecordError(0, "service", f"must be {SYNC_SERVICE} or {PROGRESS_SERVICE}"))
        is_updating = _is_updating(loaded.get("isUpdating"))
    else:
        raise MalformedRequest("the body must be a JSON array of records or an object with a `data` array")
    if len(items) > MAX_RECORDS:
        raise TooManyRecords(len(items))
    if not items:
        errors.append(RecordError(0, empty_field, "at least one record is required"))
    if errors:
        return ParsedRequest(service, is_updating, len(items), (), tuple(errors))
    model: type[DossierRecord] | type[ProgressStep] = DossierRecord if service == SYNC_SERVICE else ProgressStep
    records: list[tuple[int, Record]] = []
    for index, item in enumerate(items):
        try:
            records.append((index, model.model_validate(item)))
        except ValidationError as exc:
            errors += [_record_error(index, detail) for detail in exc.errors(include_url=False, include_input=False)]
    return ParsedRequest(service, is_updating, len(items), tuple(records), tuple(errors))


def _load_json(body: bytes) -> Any:
    # strict=False lets raw control characters and lone surrogates through: in fields the adapter
    # does not read they are dropped with the rest; in the fields it reads they are named as errors.
    try:
        return json.loads(body.decode("utf-8"), strict=False, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedRequest("the body is not valid UTF-8 JSON") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _is_updating(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_MESSAGES = {
    "missing": "is required",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "too_long": "has too many entries",
}


def _record_error(index: int, detail: Any) -> RecordError:
    field = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    # Only our own messages (which never hold the input) or a fixed text per kind are shown.
    message = detail["msg"] if kind == "dvcqg_invalid" else _MESSAGES.get(kind, "is invalid")
    return RecordError(index, field, message)
