"""The Mỹ Hào 2023 scenario as the one-stop systems would send it to the DVCQG portal (pure, deterministic).

`encode(events, registry, seed)` turns the scenario's CloudEvents (`scenario.generate`) into copies of
the synchronisation requests real one-stop systems send the National Public Service Portal
(contract §3.1), for `POST /v1/adapters/dvcqg`, plus the CloudEvents of the facts a DVCQG record
cannot carry. Sent together they give exactly the figures of the CloudEvents alone.

Two senders, as in the wild (see docs/dvcqg-adapter.md):
- **OpenCPS** (the town and half of the communes): `{"isUpdating", "service", "data": [...]}`, every
  value a string, `""` for an absent date, `DonViXuLy` the handling organ's *name*; progress steps
  (`CapNhatTienDoHoSoMC`) in requests of their own, some with blank statuses.
- **A vendor's C# client** (the other communes): the bare array posted with `?MaDinhDanhDV=<organ code>&
  isUpdating=True`, numbers for codes and fees, a *reduced* first snapshot (`MaHoSo`, `MaTTHC`,
  `NgayTiepNhan`, `TrangThaiHoSo` only), statuses 5 and 6 sent as 9 (the quirk of the notes), steps in
  chunks of 10.

Each dossier is sent as the snapshots of its life: 1 (submitted online, not yet accepted) -> 2 -> 4
-> (6) -> (5 -> 4 per supplement request) -> 7 | 8 | 9 -> 10, each snapshot with the same fake
applicant (name, CCCD number, phone, e-mail, address), summary text, file names and paths, officers'
names: personal data the adapter must drop. Snapshots are sent a little after the change they
report; some much later (out of order) and some twice.

What a DVCQG record cannot express comes as CloudEvents from the systems that hold it, as in a real
province (`CLOUDEVENT_FACTS`):
- satisfaction ratings (the rating kiosk / portal), offline payments (the fee desk), the procedure
  catalogue (the provincial catalogue), e-documents and signatures (the document-management system):
  the scenario's own events, unchanged;
- dossiers the one-stop system never synchronised to the portal (no `synced` fact): all their events,
  unchanged (a record sent to the adapter *is* a synchronisation);
- "components need no digitization" and "the result needs no digitization": a `received` or `resolved`
  event restating the dossier's final facts with the flag false, dated one second after the last
  fact its DVCQG records carry, so that it wins over every snapshot (contract §2: the latest `time`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Any

from scenario.workdays import LOCAL
from shared.events import (
    DOSSIER_COMPONENTS_DIGITIZED,
    DOSSIER_DUE_CHANGED,
    DOSSIER_PAID,
    DOSSIER_RATED,
    DOSSIER_RECEIVED,
    DOSSIER_RESOLVED,
    DOSSIER_RESULT_DIGITIZED,
    DOSSIER_SUPPLEMENT_COMPLETED,
    DOSSIER_SUPPLEMENT_REQUESTED,
    DOSSIER_SYNCED,
    DOSSIER_WITHDRAWN,
)
from shared.units import UnitRegistry

OPENCPS_SOURCE = "urn:vn:hungyen:motcua:opencps"
VENDOR_SOURCE = "urn:vn:hungyen:motcua:vendor"
OVERRIDE_SOURCE = "urn:vn:hungyen:motcua"

# What the CloudEvents part of a `--via dvcqg` run carries, and why (printed by --help).
CLOUDEVENT_FACTS = (
    "satisfaction ratings (the rating system)",
    "offline payments (the fee desk)",
    "the procedure catalogue (the provincial catalogue)",
    "documents and signatures (the document-management system)",
    "dossiers never synchronised to DVCQG (all their events)",
    "'digitization not required' for components or result (a received/resolved event restating the dossier)",
)

RECORDS_PER_REQUEST = 100  # a one-stop system syncs as it goes: small requests, well under 1,000 / 1 MiB
STEPS_PER_VENDOR_REQUEST = 10  # the vendor of the notes sends progress steps in chunks of 10
MAX_BODY_BYTES = 900_000  # under the intake's 1 MiB, whatever the fake data's length
LATE_SHARE = 0.05  # snapshots held back in the sender's retry queue (arrive out of order)
REPEAT_SHARE = 0.08  # snapshots sent twice (the sender's retry after a timeout)
QUIRK_SHARE = 0.3  # of the vendor's dossiers resolved approved: a 5 or 6 snapshot sent as 9
BLANK_STEP_SHARE = 0.1  # OpenCPS steps with an empty TrangThai

_QCVN_CODE = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$")
_DOSSIER = "vn.gov.tthc.dossier."
_OFFSET_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Request:
    """One POST /v1/adapters/dvcqg: its query, its body, and how many records it holds."""

    params: Mapping[str, str]
    body: bytes
    records: int
    sent_at: datetime  # the sender's clock for its first record (orders the requests)


@dataclass(frozen=True)
class Encoded:
    requests: list[Request]
    cloudevents: list[dict[str, Any]]  # the facts no DVCQG record carries, for POST /v1/events
    dossiers: int  # dossiers sent through the adapter
    kept: Counter[str] = field(default_factory=Counter)  # dossiers sent as CloudEvents, by reason
    overrides: Counter[str] = field(default_factory=Counter)  # restating events, by flag

    @property
    def records(self) -> int:
        return sum(request.records for request in self.requests)


def encode(events: Sequence[Mapping[str, Any]], registry: UnitRegistry, seed: int = 2023) -> Encoded:
    """The scenario's events as DVCQG requests plus the CloudEvents of what they cannot carry."""
    rng = Random(f"{seed}:dvcqg")
    people = _People(rng)
    organs = _Organs(registry)
    by_dossier: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    cloudevents: list[dict[str, Any]] = []
    for event in events:
        if event["type"].startswith(_DOSSIER):
            by_dossier[event["subject"]].append(event)
        else:
            cloudevents.append(dict(event))
    deliveries: list[_Delivery] = []
    kept: Counter[str] = Counter()
    overrides: Counter[str] = Counter()
    dossiers = 0
    for ident in sorted(by_dossier):
        life = _Life.of(by_dossier[ident])
        if life is None:
            kept["never synchronised to DVCQG"] += 1
            cloudevents += [dict(event) for event in by_dossier[ident]]
            continue
        dossiers += 1
        sender = organs.sender(life.unit)
        records = _Writer(rng, people.person(), sender, life).records()
        deliveries += _schedule(rng, records)
        last_fact = max(record.stamp for record in records) + _OFFSET_SECOND
        cloudevents += [dict(event) for event in life.unexpressed]
        for event in _restatements(life, last_fact):
            overrides[event["type"].rsplit(".", 1)[1]] += 1
            cloudevents.append(event)
    return Encoded(_requests(deliveries, organs), cloudevents, dossiers, kept, overrides)


# --- a dossier's life, from its CloudEvents ---------------------------------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class _Life:
    ident: str
    received: Mapping[str, Any]  # the received event
    due_at: datetime | None  # the winning due date (received and due_changed)
    due_changed_at: datetime | None
    digitized: Mapping[str, Any] | None  # components_digitized data
    paid_online: int | None  # amount
    supplements: list[tuple[datetime, datetime | None]]  # (requested, completed)
    withdrawn_at: datetime | None
    resolved: Mapping[str, Any] | None  # resolved data
    result_digitized: bool
    unexpressed: list[Mapping[str, Any]]  # ratings and offline payments: sent as CloudEvents

    @property
    def unit(self) -> str:
        return str(self.received["data"]["unit"])

    @property
    def data(self) -> Mapping[str, Any]:
        return self.received["data"]  # type: ignore[no-any-return]

    @classmethod
    def of(cls, events: Sequence[Mapping[str, Any]]) -> _Life | None:
        """The dossier's facts; None when it was never synchronised (then no record may be sent)."""
        kinds: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for event in events:
            kinds[event["type"]].append(event)
        if not kinds[DOSSIER_SYNCED] or len(kinds[DOSSIER_RECEIVED]) != 1:
            return None
        received = kinds[DOSSIER_RECEIVED][0]
        dues = [(_at(received["time"]), received["id"], received["data"]["due_at"])]
        dues += [(_at(e["time"]), e["id"], e["data"]["due_at"]) for e in kinds[DOSSIER_DUE_CHANGED]]
        due = max(dues)[2]
        changes = kinds[DOSSIER_DUE_CHANGED]
        requested = sorted(_at(e["data"]["requested_at"]) for e in kinds[DOSSIER_SUPPLEMENT_REQUESTED])
        completed = sorted(_at(e["data"]["completed_at"]) for e in kinds[DOSSIER_SUPPLEMENT_COMPLETED])
        supplements = [(asked, completed[i] if i < len(completed) else None) for i, asked in enumerate(requested)]
        online = [e for e in kinds[DOSSIER_PAID] if e["data"]["method"] == "online"]
        offline = [e for e in kinds[DOSSIER_PAID] if e["data"]["method"] != "online"]
        withdrawn = kinds[DOSSIER_WITHDRAWN]
        resolved = kinds[DOSSIER_RESOLVED]
        digitized = kinds[DOSSIER_COMPONENTS_DIGITIZED]
        if len(withdrawn) > 1 or len(resolved) > 1 or (withdrawn and resolved) or len(changes) > 1:
            return None  # not a life one DVCQG record can tell; the generator makes none
        return cls(
            ident=received["subject"],
            received=received,
            due_at=_at(due) if due else None,
            due_changed_at=_at(changes[0]["time"]) if changes else None,
            digitized=digitized[0]["data"] if digitized else None,
            paid_online=online[0]["data"]["amount_vnd"] if online else None,
            supplements=supplements,
            withdrawn_at=_at(withdrawn[0]["data"]["withdrawn_at"]) if withdrawn else None,
            resolved=resolved[0]["data"] if resolved else None,
            result_digitized=bool(kinds[DOSSIER_RESULT_DIGITIZED]),
            unexpressed=[*kinds[DOSSIER_RATED], *offline],
        )


def _restatements(life: _Life, at: datetime) -> list[dict[str, Any]]:
    """The events that say what no DVCQG record can: digitization not required (components, result)."""
    out: list[dict[str, Any]] = []
    if not life.data.get("digitization_required", True):
        data = {**life.data, "due_at": _iso(life.due_at) if life.due_at else None}
        out.append(_cloudevent(DOSSIER_RECEIVED, life.ident, at, data, life.received["id"]))
    if life.resolved is not None and not life.resolved.get("result_digitization_required", True):
        out.append(_cloudevent(DOSSIER_RESOLVED, life.ident, at, dict(life.resolved), life.received["id"]))
    return out


def _cloudevent(kind: str, subject: str, at: datetime, data: dict[str, Any], origin: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{origin}/{kind}")),
        "source": OVERRIDE_SOURCE,
        "type": kind,
        "time": _iso(at),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _dvcqg_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(LOCAL).strftime("%Y%m%d%H%M%S")


def _from_dvcqg(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=LOCAL)


# --- units: organ names and codes, and who sends for whom ---------------------------------------------


@dataclass(frozen=True)
class _Sender:
    name: str  # "opencps" or "vendor"
    source: str
    organ_code: str
    organ_names: tuple[str, ...]

    @property
    def opencps(self) -> bool:
        return self.name == "opencps"


class _Organs:
    def __init__(self, registry: UnitRegistry) -> None:
        self._senders: dict[str, _Sender] = {}
        communes = 0
        for entry in sorted(registry.entries, key=lambda e: e.code):
            codes = [organ for organ in entry.organs if _QCVN_CODE.match(organ)]
            names = tuple(organ for organ in entry.organs if not _QCVN_CODE.match(organ))
            if not codes or not names:
                continue
            town = entry.parent is None or entry.code.count(".") == 0
            communes += 0 if town else 1
            opencps = town or communes % 2 == 1
            name, source = ("opencps", OPENCPS_SOURCE) if opencps else ("vendor", VENDOR_SOURCE)
            self._senders[entry.code] = _Sender(name, source, codes[0], names)

    def sender(self, unit: str) -> _Sender:
        try:
            return self._senders[unit]
        except KeyError:
            raise ValueError(f"unit {unit!r} has no organ code and name in the registry") from None


# --- fake people ------------------------------------------------------------------------------------

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Đào", "Đoàn", "Lương")
_MIDDLE = {"nam": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Xuân", "Thanh"), "nu": ("Thị", "Thu", "Ngọc", "Thanh")}
_GIVEN = {
    "nam": ("Anh", "Bình", "Cường", "Dũng", "Hải", "Hiếu", "Hùng", "Khánh", "Long", "Nam", "Phong", "Quân", "Sơn"),
    "nu": ("Giang", "Hà", "Hạnh", "Hoa", "Hương", "Huyền", "Lan", "Linh", "Mai", "Nga", "Quỳnh", "Thảo", "Yến"),
}
_VILLAGES = ("Thôn Đông", "Thôn Tây", "Thôn Trung", "Khu phố 1", "Khu phố 2", "Khu phố Bình Minh", "Thôn Hòa Bình")
_OFFICERS = ("Nguyễn Thị Hằng", "Trần Văn Toàn", "Lê Thu Trang", "Phạm Đức Thịnh", "Vũ Thị Nhung", "Đỗ Minh Tuấn")
_PROCEDURES = (
    ("Đăng ký khai sinh", "HT", "Hộ tịch"),
    ("Đăng ký kết hôn", "HT", "Hộ tịch"),
    ("Cấp bản sao trích lục hộ tịch", "HT", "Hộ tịch"),
    ("Chứng thực bản sao từ bản chính", "CT", "Chứng thực"),
    ("Chứng thực chữ ký trong giấy tờ, văn bản", "CT", "Chứng thực"),
    ("Đăng ký biến động quyền sử dụng đất", "DD", "Đất đai"),
    ("Xác nhận tình trạng hôn nhân", "HT", "Hộ tịch"),
    ("Đăng ký hộ kinh doanh", "KD", "Thành lập và hoạt động của hộ kinh doanh"),
    ("Cấp giấy phép xây dựng nhà ở riêng lẻ", "XD", "Xây dựng"),
    ("Giải quyết trợ cấp xã hội hằng tháng", "BT", "Bảo trợ xã hội"),
)


@dataclass(frozen=True)
class _Person:
    name: str
    ascii_name: str
    title: str  # ông / bà
    born: int
    id_number: str  # CCCD: province 033 (Hưng Yên), century and sex, birth year, six digits
    phone: str
    email: str
    village: str
    house: int


class _People:
    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def person(self) -> _Person:
        rng = self.rng
        sex = rng.choice(("nam", "nu"))
        name = f"{rng.choice(_SURNAMES)} {rng.choice(_MIDDLE[sex])} {rng.choice(_GIVEN[sex])}"
        ascii_name = _ascii(name)
        born = rng.randint(1950, 2005)
        century = (0 if born < 2000 else 2) + (0 if sex == "nam" else 1)
        id_number = f"033{century}{born % 100:02d}{rng.randrange(10**6):06d}"
        phone = f"0{rng.choice('35789')}{rng.randrange(10**8):08d}"
        email = f"{ascii_name.replace(' ', '').lower()}{rng.randint(1, 99)}@{rng.choice(('gmail.com', 'yahoo.com'))}"
        return _Person(
            name, ascii_name, "ông" if sex == "nam" else "bà", born, id_number, phone, email,
            rng.choice(_VILLAGES), rng.randint(1, 250),
        )  # fmt: skip


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(char for char in folded if not unicodedata.combining(char))


# --- the records of one dossier -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    service: str  # DongBoHoSoMC or CapNhatTienDoHoSoMC
    sender: _Sender
    body: dict[str, Any]
    stamp: datetime  # the latest fact date it carries (due dates excluded)
    changed_at: datetime  # when the change it reports happened (the sender sends shortly after)
    first: bool = False  # the dossier's first synchronisation (isUpdating false)


class _Writer:
    """The snapshots and steps of one dossier, as its sender writes them."""

    def __init__(self, rng: Random, person: _Person, sender: _Sender, life: _Life) -> None:
        self.rng, self.person, self.sender, self.life = rng, person, sender, life
        digest = int(hashlib.sha256(life.data["procedure_code"].encode()).hexdigest(), 16)
        self.procedure = _PROCEDURES[digest % len(_PROCEDURES)]
        fee = life.paid_online if life.paid_online is not None else (digest % 20 + 1) * 5_000
        self.fee = fee if life.data["fee_required"] else 0
        self.files = [self._file(kind) for kind in ("CCCD", "DonDeNghi", "GiayToKhac")[: rng.randint(1, 3)]]
        self.organ_name = rng.choice(sender.organ_names)
        if rng.random() < 0.1:  # senders write organ names loosely; the registry matches them normalized
            self.organ_name = f" {self.organ_name.upper()}  "

    def records(self) -> list[_Record]:
        life, rng = self.life, self.rng
        received_at = _at(life.data["received_at"])
        original_due = _at(life.data["due_at"]) if life.data["due_at"] else None
        # Without a supplement request, a due change shows only in NgayHenTra of the closing snapshots.
        closing_due = life.due_at if not life.supplements else original_due
        out: list[_Record] = []
        if life.data["channel"] == "online":
            submitted = received_at - timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            out.append(self._snapshot(1, submitted, submitted=submitted, due=None, first=True))
        out.append(self._snapshot(2, received_at, due=original_due, reduced=not self.sender.opencps, first=not out))
        out.append(self._step(2, received_at, "Tiếp nhận hồ sơ"))
        processing = received_at + timedelta(minutes=rng.randint(10, 240))
        out.append(self._snapshot(4, processing, due=original_due, files=True))
        quirk = not self.sender.opencps and rng.random() < QUIRK_SHARE and self._ends_approved()
        if self.fee and life.paid_online is None and rng.random() < 0.5:
            out.append(self._snapshot(9 if quirk else 6, processing, due=original_due, files=True))
            quirk = False
        entries: list[dict[str, Any]] = []
        for asked, completed in life.supplements:
            entries.append(self._supplement(asked, None, original_due))
            out.append(self._snapshot(9 if quirk else 5, asked, due=original_due, files=True, entries=entries))
            out.append(self._step(5, asked, "Yêu cầu bổ sung hồ sơ"))
            quirk = False
            if completed is not None:
                entries = [*entries[:-1], self._supplement(asked, completed, original_due)]
                out.append(self._snapshot(4, completed, due=original_due, files=True, entries=entries))
        if life.withdrawn_at is not None:
            ended = life.withdrawn_at
            out.append(self._snapshot(7, ended, due=closing_due, files=True, entries=entries, ended=ended))
            out.append(self._step(7, ended, "Công dân rút hồ sơ"))
        elif life.resolved is not None:
            ended = _at(life.resolved["resolved_at"])
            rejected = life.resolved["outcome"] == "rejected"
            status = 8 if rejected else 9
            # A rejection is a result too (the letter giving the reasons), digitized or not.
            common: dict[str, Any] = {"due": closing_due, "files": True, "entries": entries, "ended": ended}
            out.append(self._snapshot(status, ended, result=True, **common))
            out.append(self._step(status, ended, "Trả kết quả xử lý" if rejected else "Phê duyệt kết quả"))
            if not rejected:
                returned = ended + timedelta(minutes=rng.randint(30, 3 * 24 * 60))
                out.append(self._snapshot(10, returned, result=True, returned=returned, **common))
                out.append(self._step(10, returned, "Đã trả kết quả cho công dân"))
        if life.due_changed_at is not None and not life.supplements:
            changed = life.due_changed_at
            if not any(r.service == "DongBoHoSoMC" and r.stamp > changed for r in out):
                raise ValueError(f"{life.ident}: a due change no later snapshot carries")
        return out

    def _ends_approved(self) -> bool:
        resolved = self.life.resolved
        return resolved is not None and resolved["outcome"] == "approved"

    # -- records --

    def _snapshot(
        self,
        status: int,
        changed_at: datetime,
        *,
        due: datetime | None,
        submitted: datetime | None = None,
        reduced: bool = False,
        files: bool = False,
        entries: Sequence[dict[str, Any]] = (),
        ended: datetime | None = None,
        returned: datetime | None = None,
        result: bool = False,
        first: bool = False,
    ) -> _Record:
        life, person, opencps = self.life, self.person, self.sender.opencps
        received_at = None if status == 1 else _at(life.data["received_at"])
        value = _strings if opencps else _numbers
        record: dict[str, Any] = {
            "MaHoSo": life.ident,
            "MaTTHC": life.data["procedure_code"],
            "NgayTiepNhan": _dvcqg_time(received_at),
            "TrangThaiHoSo": value(status),
        }
        stamps = [at for at in (received_at, ended, returned) if at is not None]
        stamps += [_from_dvcqg(e[k]) for e in entries for k in ("NgayBoSung", "NgayTiepNhanBoSung") if e[k]]
        stamp = max(stamps) if stamps else changed_at
        if reduced:
            return _Record("DongBoHoSoMC", self.sender, record, stamp, changed_at, first)
        procedure, field_code, field_name = self.procedure
        digitized = life.digitized is not None
        channel = {"direct": 1, "online": 2, "postal": 3}[life.data["channel"]]
        paid = files and life.paid_online is not None
        record.update(
            {
                "TenTTHC": procedure,
                "MaLinhVuc": field_code,
                "TenLinhVuc": field_name,
                "KenhThucHien": value(channel),
                "ChuHoSo": person.name,
                "LoaiDoiTuong": value(1),
                "MaDoiTuong": person.id_number,
                "ThongTinKhac": f"Sinh năm {person.born}",
                "Email": person.email,
                "Fax": "",
                "SoDienThoai": person.phone,
                "TrichYeuHoSo": f"{procedure} cho {person.title} {person.name}, {person.village}",
                "NgayHenTra": _dvcqg_time(due),
                "NgayTra": _dvcqg_time(returned),
                "ThongTinTra": f"Trả tại Bộ phận Một cửa cho {person.title} {person.name}" if returned else "",
                "HinhThuc": value(0),
                "NgayKetThucXuLy": _dvcqg_time(ended),
                "DonViXuLy": self.organ_name if opencps or self.rng.random() < 0.5 else "",
                "GhiChu": f"Liên hệ {person.phone}",
                "NoiNopHoSo": value(channel),
                "NgayNopHoSo": _dvcqg_time(submitted or received_at),
                "NgayTuChoi": "",
                "DinhDanhCHS": [{"LoaiDinhDanh": value(1), "SoDinhDanh": person.id_number}],
                "HoSoCoThanhPhanSoHoa": value(1 if files and digitized else 0),
                "TaiKhoanDuocXacThucVoiVNeID": value(1 if life.data["channel"] == "online" else 0),
                "DuocThanhToanTrucTuyen": value(1 if paid else 0),
                "TaiLieuNop": [self._submitted(file, files and digitized) for file in self.files],
                "DanhSachLePhi": [self._fee()] if self.fee or self.rng.random() < 0.3 else [],
                "DanhSachHoSoBoSung": [dict(entry) for entry in entries],
                "DanhSachGiayToKetQua": [self._result(result and life.result_digitized)] if result else [],
                "DanhSachTepDinhKemKhac": [],
            }
        )
        if not opencps:
            record["Address"] = f"Số {person.house}, {person.village}, thị xã Mỹ Hào, tỉnh Hưng Yên"
        return _Record("DongBoHoSoMC", self.sender, record, stamp, changed_at, first)

    def _step(self, status: int, at: datetime, what: str) -> _Record:
        opencps = self.sender.opencps
        blank = opencps and self.rng.random() < BLANK_STEP_SHARE and status in (2, 4, 10)
        step = {
            "MaHoSo": self.life.ident,
            "NguoiXuLy": self.rng.choice(_OFFICERS),
            "ChucDanh": "Công chức Một cửa",
            "ThoiDiemXuLy": "" if blank else _dvcqg_time(at),
            "PhongBanXuLy": "Bộ phận Một cửa",
            "NoiDungXuLy": f"{what}: {self.person.title} {self.person.name}",
            "TrangThai": "" if blank else (_strings if opencps else _numbers)(status),
            "NgayBatDau": _dvcqg_time(at),
            "NgayKetThucTheoQuyDinh": "",
        }
        return _Record("CapNhatTienDoHoSoMC", self.sender, step, at, at)

    # -- entries --

    def _file(self, kind: str) -> dict[str, Any]:
        name = f"{kind}_{self.person.ascii_name.replace(' ', '')}_{self.person.id_number[-4:]}.pdf"
        token = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        return {"name": name, "id": str(token), "path": f"/uploads/2023/{token}/{name}"}

    def _submitted(self, file: Mapping[str, str], digitized: bool) -> dict[str, Any]:
        life, flag = self.life, _strings if self.sender.opencps else _booleans
        data = life.digitized or {}
        return {
            "TepDinhKemId": file["id"],
            "TenTepDinhKem": file["name"],
            "MaThanhPhanHoSo": "TP01",
            "DuongDanTaiTepTin": file["path"],
            "IsDeleted": "False" if self.sender.opencps else False,
            "DuocSoHoa": flag(digitized),
            "DuocTaiSuDung": flag(digitized and bool(data.get("reused"))),
            "DuocLayTuKhoDMQG": flag(digitized and bool(data.get("from_personal_store"))),
        }

    def _fee(self) -> dict[str, Any]:
        value = _strings if self.sender.opencps else _numbers
        return {"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP01", "HinhThucThu": value(1), "Gia": value(self.fee),
                "LoaiPhiLePhi": value(1)}  # fmt: skip

    def _supplement(self, asked: datetime, completed: datetime | None, due: datetime | None) -> dict[str, Any]:
        new_due = self.life.due_at if self.life.due_changed_at is not None else None
        person = self.person
        return {
            "HoSoBoSungId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "NguoiYeuCauBoSung": self.rng.choice(_OFFICERS),
            "NoiDungBoSung": f"Đề nghị {person.title} {person.name} bổ sung bản sao CCCD số {person.id_number}",
            "NgayBoSung": _dvcqg_time(asked),
            "NguoiTiepNhanBoSung": self.rng.choice(_OFFICERS) if completed else "",
            "ThongTinTiepNhan": f"Đã nhận bổ sung từ {person.title} {person.name}" if completed else "",
            "NgayTiepNhanBoSung": _dvcqg_time(completed),
            "TrangThaiBoSung": "1" if completed else "0",
            "NgayHenTraTruoc": _dvcqg_time(due),
            "NgayHenTraMoi": _dvcqg_time(new_due),
        }

    def _result(self, digitized: bool) -> dict[str, Any]:
        person = self.person
        name = f"KetQua_{self.life.ident}_{person.ascii_name.replace(' ', '')}.pdf"
        return {
            "TenGiayTo": f"Kết quả: {self.procedure[0]} - {person.name}",
            "MaThanhPhanHoSo": "KQ01",
            "GiayToId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "DuongDanTepTinKetQua": f"/ketqua/2023/{name}" if digitized else "",
        }


def _strings(value: int | bool) -> str:
    return str(int(value))


def _numbers(value: int | bool) -> int:
    return int(value)


def _booleans(value: bool) -> bool:
    return value


# --- sending: when each record goes, and in which request -------------------------------------------


@dataclass(frozen=True)
class _Delivery:
    sent_at: datetime
    order: int
    record: _Record


def _schedule(rng: Random, records: Iterable[_Record]) -> list[_Delivery]:
    """Each record a little after its change; some held back (out of order), some sent twice."""
    out: list[_Delivery] = []
    for record in records:
        sent_at = record.changed_at + timedelta(seconds=rng.randint(5, 600))
        if rng.random() < LATE_SHARE:
            sent_at += timedelta(hours=rng.randint(6, 20 * 24))
        out.append(_Delivery(sent_at, rng.randrange(1 << 30), record))
        if rng.random() < REPEAT_SHARE:
            again = sent_at + timedelta(minutes=rng.randint(1, 7 * 24 * 60))
            out.append(_Delivery(again, rng.randrange(1 << 30), record))
    return out


def _requests(deliveries: list[_Delivery], organs: _Organs) -> list[Request]:
    """Each sender's records in the order it sends them, cut into requests; all requests by send time."""
    queues: dict[tuple[str, str, str], list[_Delivery]] = defaultdict(list)
    for delivery in deliveries:
        sender = delivery.record.sender
        organ = "" if sender.opencps else sender.organ_code  # the vendor posts per organ (its query)
        queues[(sender.name, delivery.record.service, organ)].append(delivery)
    requests: list[Request] = []
    for (name, service, organ), queue in sorted(queues.items()):
        queue.sort(key=lambda d: (d.sent_at, d.order))
        limit = STEPS_PER_VENDOR_REQUEST if name == "vendor" and service != "DongBoHoSoMC" else RECORDS_PER_REQUEST
        for start in range(0, len(queue), limit):
            requests += _pack(name, service, organ, queue[start : start + limit])
    requests.sort(key=lambda request: (request.sent_at, request.body))
    return requests


def _pack(name: str, service: str, organ: str, chunk: list[_Delivery]) -> list[Request]:
    records = [d.record.body for d in chunk]
    source = OPENCPS_SOURCE if name == "opencps" else VENDOR_SOURCE
    updating = not all(d.record.first for d in chunk)
    if name == "opencps":
        params = {"source": source}
        body = json.dumps({"isUpdating": updating, "service": service, "data": records}, ensure_ascii=False)
    elif service == "DongBoHoSoMC":
        params = {"source": source, "MaDinhDanhDV": organ, "isUpdating": str(updating)}
        body = json.dumps(records, ensure_ascii=False)
    else:
        params = {"source": source, "MaDinhDanhDV": organ}
        body = json.dumps({"service": service, "data": records}, ensure_ascii=False)
    encoded = body.encode()
    if len(encoded) > MAX_BODY_BYTES and len(chunk) > 1:
        half = len(chunk) // 2
        return _pack(name, service, organ, chunk[:half]) + _pack(name, service, organ, chunk[half:])
    return [Request(params, encoded, len(records), chunk[0].sent_at)]
