"""Tables of the DVCQG adapter's mapping (services/intake/dvcqg*.py), one row per rule of contract §3.1
and per quirk of real senders: a record (or a few) -> the facts of the events it implies.

Each row lists every event expected, as (kind, data without `dossier_id`); a row that expects an
error lists (index, field) pairs. The winner rules are checked through the aggregator's pure core.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.aggregator.domain import DossierState, aggregate_key, apply, initial_state
from services.intake.dvcqg import Derived, events_from_request
from shared.events import decode_event

VIETNAM = timezone(timedelta(hours=7))
NOW = datetime(2026, 1, 1, 12, tzinfo=VIETNAM)
SOURCE = "urn:vn:hungyen:motcua"
DOSSIER = "000.00.01.H22-230301-0001"
SENDER = "000.00.01.H22"  # the sending organ's code (QCVN 102), as MaDinhDanhDV


# --- a small dated registry of organs (the shape of shared/units.py's `organs`) -------------------


def _normal(text: str) -> str:
    """Contract §1.1: NFC, trimmed, spaces collapsed, case ignored."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


@dataclass(frozen=True)
class FakeUnit:
    code: str
    valid_from: date
    valid_to: date | None
    organs: tuple[str, ...]


# Bần Yên Nhân (code 12103 until 30 June 2025) became part of Phường Mỹ Hào (the code reused).
REORGANIZATION = date(2025, 7, 1)
REGISTRY = (
    FakeUnit("12103", date(1970, 1, 1), REORGANIZATION, ("UBND phường Bần Yên Nhân", "000.00.21.H22")),
    FakeUnit("12103", REORGANIZATION, None, ("UBND phường Mỹ Hào", "000.00.21.H22")),
    FakeUnit("my-hao", date(1970, 1, 1), REORGANIZATION, ("UBND thị xã Mỹ Hào", SENDER)),
    FakeUnit("hung-yen", date(1970, 1, 1), None, ("UBND tỉnh Hưng Yên", "000.00.00.H22")),
)


def resolve(organ: str, day: date) -> str | None:
    wanted = _normal(organ)
    for unit in REGISTRY:
        in_force = unit.valid_from <= day and (unit.valid_to is None or day < unit.valid_to)
        if in_force and wanted in {_normal(name) for name in unit.organs}:
            return unit.code
    return None


# --- running the adapter -------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "MaHoSo": DOSSIER,
    "MaTTHC": "1.004227",
    "NgayTiepNhan": "20230301083000",
    "TrangThaiHoSo": "2",
    "DonViXuLy": "UBND phường Bần Yên Nhân",
}


def record(**fields: Any) -> dict[str, Any]:
    """BASE with fields set (None removes one)."""
    merged = {**BASE, **fields}
    return {name: value for name, value in merged.items() if value is not None}


def body(records: list[Any], service: str | None = "DongBoHoSoMC") -> bytes:
    if service is None:
        return json.dumps(records).encode()
    return json.dumps({"service": service, "isUpdating": "False", "data": records}).encode()


def derive(
    records: list[Any], *, service: str | None = "DongBoHoSoMC", organ_code: str | None = SENDER, now: datetime = NOW
) -> Derived:
    return events_from_request(
        body(records, service), source=SOURCE, organ_code=organ_code, resolve_organ=resolve, now=now
    )


Fact = tuple[str, dict[str, Any]]


def facts(events: list[dict[str, Any]]) -> list[Fact]:
    """Each event as (kind, data without dossier_id), in a stable order."""
    result = []
    for event in events:
        data = {name: value for name, value in event["data"].items() if name != "dossier_id"}
        result.append((event["type"].rsplit(".", 1)[1], data))
    return sorted(result, key=lambda fact: (fact[0], json.dumps(fact[1], sort_keys=True)))


def local(stamp: str) -> str:
    """yyyyMMddHHmmss -> the RFC 3339 text the events carry."""
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=VIETNAM).isoformat()


RECEIVED_AT = local("20230301083000")


def received(**data: Any) -> Fact:
    base = {
        "unit": "12103",
        "procedure_code": "1.004227",
        "channel": "direct",
        "received_at": RECEIVED_AT,
        "due_at": None,
        "fee_required": False,
    }
    return ("received", {**base, **data})


SYNCED: Fact = ("synced", {"synced_at": RECEIVED_AT})


def resolved(at: str, outcome: str = "approved") -> Fact:
    return ("resolved", {"resolved_at": local(at), "outcome": outcome})


def withdrawn(at: str) -> Fact:
    return ("withdrawn", {"withdrawn_at": local(at)})


def digitized(reused: bool = False, from_personal_store: bool = False) -> Fact:
    data = {"digitized_at": RECEIVED_AT, "reused": reused, "from_personal_store": from_personal_store}
    return ("components_digitized", data)


def paid(amount_vnd: int) -> Fact:
    return ("paid", {"paid_at": RECEIVED_AT, "method": "online", "amount_vnd": amount_vnd})


def requested(at: str) -> Fact:
    return ("supplement_requested", {"requested_at": local(at)})


def completed(at: str) -> Fact:
    return ("supplement_completed", {"completed_at": local(at)})


def result_digitized(at: str) -> Fact:
    return ("result_digitized", {"digitized_at": local(at)})


def sorted_facts(items: list[Fact]) -> list[Fact]:
    return sorted(items, key=lambda fact: (fact[0], json.dumps(fact[1], sort_keys=True)))


# --- one record -> its events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    records: list[Any]
    expected: list[Fact]
    service: str | None = "DongBoHoSoMC"
    organ_code: str | None = SENDER


END = "20230308100000"
HANDED_OVER = "20230309090000"
SUPPLEMENT = {"NgayBoSung": "20230302090000", "NgayTiepNhanBoSung": "20230303090000"}

ROWS = [
    # statuses (TrangThaiHoSo)
    Row("status 1 submitted, not accepted: no event", [record(TrangThaiHoSo="1")], []),
    Row("status 1 needs no reception date", [record(TrangThaiHoSo="1", NgayTiepNhan="", MaTTHC=None)], []),
    Row("status 3 refused at reception: no event", [record(TrangThaiHoSo="3")], []),
    Row("status 2 received: in progress", [record(TrangThaiHoSo="2")], [received(), SYNCED]),
    Row("status 4 being processed: in progress", [record(TrangThaiHoSo="4")], [received(), SYNCED]),
    Row("status 5 supplement requested: in progress", [record(TrangThaiHoSo="5")], [received(), SYNCED]),
    Row("status 6 financial obligation: in progress", [record(TrangThaiHoSo="6")], [received(), SYNCED]),
    Row(
        "status 7 withdrawn: received and withdrawn at the end of processing",
        [record(TrangThaiHoSo="7", NgayKetThucXuLy=END)],
        [received(), SYNCED, withdrawn(END)],
    ),
    Row(
        "status 8 processing stopped: resolved rejected",
        [record(TrangThaiHoSo="8", NgayKetThucXuLy=END)],
        [received(), SYNCED, resolved(END, "rejected")],
    ),
    Row(
        "status 9 processed: resolved approved",
        [record(TrangThaiHoSo="9", NgayKetThucXuLy=END)],
        [received(), SYNCED, resolved(END)],
    ),
    Row(
        "status 10 handed over: resolved approved at the end of processing, not at the hand-over",
        [record(TrangThaiHoSo="10", NgayKetThucXuLy=END, NgayTra=HANDED_OVER)],
        [received(), SYNCED, resolved(END)],
    ),
    Row(
        "end of processing: NgayTra when NgayKetThucXuLy is absent",
        [record(TrangThaiHoSo="10", NgayKetThucXuLy="", NgayTra=HANDED_OVER)],
        [received(), SYNCED, resolved(HANDED_OVER)],
    ),
    Row(
        "end of processing: the progress stamp when no end date is given",
        [record(TrangThaiHoSo="9", DanhSachHoSoBoSung=[SUPPLEMENT])],
        [
            received(),
            SYNCED,
            requested(SUPPLEMENT["NgayBoSung"]),
            completed(SUPPLEMENT["NgayTiepNhanBoSung"]),
            resolved(SUPPLEMENT["NgayTiepNhanBoSung"]),
        ],
    ),
    # channels (KenhThucHien)
    Row("channel 1 direct", [record(KenhThucHien="1")], [received(channel="direct"), SYNCED]),
    Row("channel 2 online", [record(KenhThucHien="2")], [received(channel="online"), SYNCED]),
    Row("channel 3 postal", [record(KenhThucHien="3")], [received(channel="postal"), SYNCED]),
    Row("channel absent: direct", [record(KenhThucHien=None)], [received(channel="direct"), SYNCED]),
    Row("channel empty: direct", [record(KenhThucHien="")], [received(channel="direct"), SYNCED]),
    # due dates
    Row(
        "due: NgayHenTra",
        [record(NgayHenTra="20230310170000")],
        [received(due_at=local("20230310170000")), SYNCED],
    ),
    Row("due: empty NgayHenTra is no deadline", [record(NgayHenTra="")], [received(due_at=None), SYNCED]),
    Row(
        "due: a supplement's NgayHenTraMoi is the new legal due date",
        [
            record(
                TrangThaiHoSo="4",
                NgayHenTra="20230310170000",
                DanhSachHoSoBoSung=[{**SUPPLEMENT, "NgayHenTraMoi": "20230313170000"}],
            )
        ],
        [
            received(due_at=local("20230313170000")),
            SYNCED,
            requested(SUPPLEMENT["NgayBoSung"]),
            completed(SUPPLEMENT["NgayTiepNhanBoSung"]),
        ],
    ),
    Row(
        "due: the latest NgayHenTraMoi of several supplements, whatever their order",
        [
            record(
                NgayHenTra="20230310170000",
                DanhSachHoSoBoSung=[
                    {"NgayBoSung": "20230304090000", "NgayHenTraMoi": "20230316170000"},
                    {"NgayBoSung": "20230302090000", "NgayHenTraMoi": "20230313170000"},
                ],
            )
        ],
        [
            received(due_at=local("20230316170000")),
            SYNCED,
            requested("20230302090000"),
            requested("20230304090000"),
        ],
    ),
    Row(
        "due: a later NgayHenTra (an appointment with an apology) does not replace the legal NgayHenTraMoi",
        [
            record(
                NgayHenTra="20230320170000",
                DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000", "NgayHenTraMoi": "20230313170000"}],
            )
        ],
        [received(due_at=local("20230313170000")), SYNCED, requested("20230302090000")],
    ),
    # fees and payment
    Row(
        "fee: Gia > 0 on a line",
        [record(DanhSachLePhi=[{"Gia": 0}, {"Gia": "50000"}])],
        [received(fee_required=True), SYNCED],
    ),
    Row("fee: every Gia 0 is no fee", [record(DanhSachLePhi=[{"Gia": "0"}, {"Gia": 0}])], [received(), SYNCED]),
    Row("fee: no fee lines", [record(DanhSachLePhi=[])], [received(), SYNCED]),
    Row(
        "payment: DuocThanhToanTrucTuyen 1 (on DVCQG) is paid online",
        [record(DuocThanhToanTrucTuyen="1", DanhSachLePhi=[{"Gia": "50.000"}, {"Gia": 20000}])],
        [received(fee_required=True), SYNCED, paid(70000)],
    ),
    Row(
        "payment: DuocThanhToanTrucTuyen 2 (the province's gateway) is paid online",
        [record(DuocThanhToanTrucTuyen=2, DanhSachLePhi=[{"Gia": 30000}])],
        [received(fee_required=True), SYNCED, paid(30000)],
    ),
    Row(
        "payment: DuocThanhToanTrucTuyen 0 is not paid online",
        [record(DuocThanhToanTrucTuyen="0", DanhSachLePhi=[{"Gia": 30000}])],
        [received(fee_required=True), SYNCED],
    ),
    # digitization
    Row("digitized: HoSoCoThanhPhanSoHoa 1", [record(HoSoCoThanhPhanSoHoa="1")], [received(), SYNCED, digitized()]),
    Row(
        "digitized: a TaiLieuNop entry DuocSoHoa",
        [record(TaiLieuNop=[{"DuocSoHoa": "0"}, {"DuocSoHoa": "1", "IsDeleted": "False"}])],
        [received(), SYNCED, digitized()],
    ),
    Row(
        "digitized: DuocTaiSuDung is reused, DuocLayTuKhoDMQG from the personal store",
        [record(HoSoCoThanhPhanSoHoa=1, TaiLieuNop=[{"DuocTaiSuDung": 1}, {"DuocLayTuKhoDMQG": "True"}])],
        [received(), SYNCED, digitized(reused=True, from_personal_store=True)],
    ),
    Row(
        "digitized: a deleted file does not count",
        [record(TaiLieuNop=[{"DuocSoHoa": "1", "DuocTaiSuDung": "1", "IsDeleted": "True"}])],
        [received(), SYNCED],
    ),
    Row("digitized: nothing says so", [record(HoSoCoThanhPhanSoHoa="0", TaiLieuNop=[{}])], [received(), SYNCED]),
    # results
    Row(
        "result: a DuongDanTepTinKetQua is a digitized result, at the end of processing",
        [record(TrangThaiHoSo="9", NgayKetThucXuLy=END, DanhSachGiayToKetQua=[{"DuongDanTepTinKetQua": "/r/1"}])],
        [received(), SYNCED, resolved(END), result_digitized(END)],
    ),
    Row(
        "result: an empty DuongDanTepTinKetQua is none",
        [record(TrangThaiHoSo="9", NgayKetThucXuLy=END, DanhSachGiayToKetQua=[{"DuongDanTepTinKetQua": ""}])],
        [received(), SYNCED, resolved(END)],
    ),
    # supplements
    Row(
        "supplement: requested at NgayBoSung, completed at NgayTiepNhanBoSung",
        [record(TrangThaiHoSo="4", DanhSachHoSoBoSung=[SUPPLEMENT])],
        [received(), SYNCED, requested(SUPPLEMENT["NgayBoSung"]), completed(SUPPLEMENT["NgayTiepNhanBoSung"])],
    ),
    Row(
        "supplement: pending (no NgayTiepNhanBoSung)",
        [record(TrangThaiHoSo="5", DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000", "NgayTiepNhanBoSung": ""}])],
        [received(), SYNCED, requested("20230302090000")],
    ),
    Row(
        "supplement: two requests count twice; one date given twice is one request",
        [
            record(
                DanhSachHoSoBoSung=[
                    {"NgayBoSung": "20230302090000"},
                    {"NgayBoSung": "20230306090000"},
                    {"NgayBoSung": "20230302090000"},
                ]
            )
        ],
        [received(), SYNCED, requested("20230302090000"), requested("20230306090000")],
    ),
    # units
    Row(
        "unit: DonViXuLy is an organ name of the unit valid on NgayTiepNhan (before the reorganization)",
        [record(DonViXuLy="  ubnd PHƯỜNG   Bần Yên Nhân ")],
        [received(unit="12103"), SYNCED],
    ),
    Row(
        "unit: the organ of the unit valid on NgayTiepNhan (after the reorganization)",
        [record(DonViXuLy="UBND phường Mỹ Hào", NgayTiepNhan="20250702083000")],
        [
            received(unit="12103", received_at=local("20250702083000")),
            ("synced", {"synced_at": local("20250702083000")}),
        ],
    ),
    Row(
        "unit: DonViXuLy absent, the query's MaDinhDanhDV",
        [record(DonViXuLy=None)],
        [received(unit="my-hao"), SYNCED],
    ),
    Row(
        "unit: DonViXuLy not in the registry, the query's MaDinhDanhDV",
        [record(DonViXuLy="Phòng Tư pháp")],
        [received(unit="my-hao"), SYNCED],
    ),
    # progress steps (CapNhatTienDoHoSoMC)
    Row(
        "step TrangThai 5: supplement requested at ThoiDiemXuLy",
        [{"MaHoSo": DOSSIER, "TrangThai": "5", "ThoiDiemXuLy": "20230302090000", "NguoiXuLy": "x"}],
        [requested("20230302090000")],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "step TrangThai 7: withdrawn at ThoiDiemXuLy",
        [{"MaHoSo": DOSSIER, "TrangThai": 7, "ThoiDiemXuLy": END}],
        [withdrawn(END)],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "step TrangThai 8: resolved rejected at ThoiDiemXuLy",
        [{"MaHoSo": DOSSIER, "TrangThai": "8", "ThoiDiemXuLy": END}],
        [resolved(END, "rejected")],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "step TrangThai 9: resolved approved at ThoiDiemXuLy",
        [{"MaHoSo": DOSSIER, "TrangThai": "9", "ThoiDiemXuLy": END}],
        [resolved(END)],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "step TrangThai 10 (handed over), 2, 4, 6: no event; no reception data in a step",
        [{"MaHoSo": DOSSIER, "TrangThai": status, "ThoiDiemXuLy": END} for status in ("10", "2", "4", "6", "1", "3")],
        [],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "step without TrangThai or ThoiDiemXuLy: no event (OpenCPS sends blanks)",
        [
            {"MaHoSo": DOSSIER, "TrangThai": "", "ThoiDiemXuLy": END},
            {"MaHoSo": DOSSIER, "TrangThai": "9", "ThoiDiemXuLy": ""},
        ],
        [],
        service="CapNhatTienDoHoSoMC",
    ),
    # quirks of real senders (shared notes: what one-stop systems send)
    Row(
        "quirk: values as numbers instead of strings",
        [
            record(
                TrangThaiHoSo=9, KenhThucHien=2, NgayTiepNhan=20230301083000, NgayKetThucXuLy=int(END), MaTTHC=1004227
            )
        ],
        [received(channel="online", procedure_code="1004227"), SYNCED, resolved(END)],
    ),
    Row(
        "quirk: empty strings for absent dates",
        [
            record(
                TrangThaiHoSo="9",
                NgayHenTra="",
                NgayKetThucXuLy="",
                NgayTra=HANDED_OVER,
                DanhSachHoSoBoSung=[{"NgayBoSung": ""}],
            )
        ],
        [received(due_at=None), SYNCED, resolved(HANDED_OVER)],
    ),
    Row(
        "quirk: statuses 5, 6, 8 sent as 9 are read as the contract says, resolved approved",
        [record(TrangThaiHoSo="9", DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000"}])],
        [received(), SYNCED, requested("20230302090000"), resolved("20230302090000")],
    ),
    Row(
        "quirk: a reduced field set (MaHoSo, MaTTHC, NgayTiepNhan, TrangThaiHoSo) with the query's organ",
        [{"MaHoSo": DOSSIER, "MaTTHC": "1.004227", "NgayTiepNhan": "20230301083000", "TrangThaiHoSo": "10"}],
        [received(unit="my-hao"), SYNCED, resolved("20230301083000")],
    ),
    Row(
        "quirk: the paid flag set for a cash payment still counts as paid online (the contract's reading)",
        [record(DuocThanhToanTrucTuyen="1", DanhSachLePhi=[{"Gia": "50000", "HinhThucThu": "Tiền mặt"}])],
        [received(fee_required=True), SYNCED, paid(50000)],
    ),
    Row(
        "quirk: null and empty lists, OpenCPS's IsDeleted False",
        [record(DanhSachLePhi=None, DanhSachHoSoBoSung="", TaiLieuNop=[{"IsDeleted": "False", "DuocSoHoa": "true"}])],
        [received(), SYNCED, digitized()],
    ),
    Row(
        "quirk: dates are local time (UTC+07:00): 23:30 on 1 March is 1 March, not 16:30Z of another day",
        [record(NgayTiepNhan="20230301233000")],
        [received(received_at=local("20230301233000")), ("synced", {"synced_at": "2023-03-01T23:30:00+07:00"})],
    ),
    Row(
        "quirk: a synthetic finished step stamped with the reception date (no end date): resolved then",
        [{"MaHoSo": DOSSIER, "TrangThai": "9", "ThoiDiemXuLy": BASE["NgayTiepNhan"], "NoiDungXuLy": "Hoàn thành"}],
        [resolved(BASE["NgayTiepNhan"])],
        service="CapNhatTienDoHoSoMC",
    ),
    Row(
        "bare array body: DongBoHoSoMC records",
        [record(TrangThaiHoSo="4")],
        [received(), SYNCED],
        service=None,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_mapping(row: Row) -> None:
    derived = derive(row.records, service=row.service, organ_code=row.organ_code)

    assert derived.errors == []
    assert derived.records == len(row.records)
    assert facts(derived.events) == sorted_facts(row.expected)
    for event in derived.events:
        decoded = decode_event(json.dumps(event).encode())
        assert decoded.source == SOURCE
        assert decoded.subject == DOSSIER
        assert len(decoded.id) <= 128


# --- records refused --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRow:
    name: str
    records: list[Any]
    expected: list[tuple[int, str]]  # (index, field)
    organ_code: str | None = SENDER
    service: str = "DongBoHoSoMC"


ERROR_ROWS = [
    ErrorRow("received without MaTTHC", [record(), record(MaTTHC="")], [(1, "MaTTHC")]),
    ErrorRow("received without NgayTiepNhan", [record(NgayTiepNhan="")], [(0, "NgayTiepNhan")]),
    ErrorRow(
        "a fact date more than 5 minutes in the future",
        [record(), record(TrangThaiHoSo="9", NgayKetThucXuLy="20260101121000")],
        [(1, "NgayKetThucXuLy")],
    ),
    ErrorRow(
        "a supplement date in the future",
        [record(DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000"}, {"NgayTiepNhanBoSung": "20270101000000"}])],
        [(0, "DanhSachHoSoBoSung.1.NgayTiepNhanBoSung")],
    ),
    ErrorRow("due before reception", [record(NgayHenTra="20230228170000")], [(0, "NgayHenTra")]),
    ErrorRow(
        "new due date before reception",
        [record(DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000", "NgayHenTraMoi": "20230201000000"}])],
        [(0, "DanhSachHoSoBoSung.0.NgayHenTraMoi")],
    ),
    ErrorRow(
        "unknown organ and no MaDinhDanhDV",
        [record(), record(DonViXuLy="Sở Xây dựng")],
        [(1, "DonViXuLy")],
        organ_code=None,
    ),
    ErrorRow(
        "unknown organ and unknown MaDinhDanhDV", [record(DonViXuLy="Sở Xây dựng")], [(0, "DonViXuLy")], organ_code="x"
    ),
    ErrorRow("no organ at all", [record(DonViXuLy=None)], [(0, "DonViXuLy")], organ_code=None),
    ErrorRow(
        "an organ whose unit had ended on NgayTiepNhan",
        [record(DonViXuLy="UBND phường Bần Yên Nhân", NgayTiepNhan="20250702083000")],
        [(0, "DonViXuLy")],
        organ_code=None,
    ),
    ErrorRow(
        "a step in the future",
        [{"MaHoSo": DOSSIER, "TrangThai": "9", "ThoiDiemXuLy": "20270101000000"}],
        [(0, "ThoiDiemXuLy")],
        service="CapNhatTienDoHoSoMC",
    ),
    ErrorRow(
        "fees beyond the contract's limit",
        [record(DuocThanhToanTrucTuyen=1, DanhSachLePhi=[{"Gia": 10**15}, {"Gia": 1}])],
        [(0, "DanhSachLePhi")],
    ),
]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[row.name for row in ERROR_ROWS])
def test_refused(row: ErrorRow) -> None:
    derived = derive(row.records, service=row.service, organ_code=row.organ_code)

    assert [(error.index, error.field) for error in derived.errors] == row.expected
    assert derived.events == []  # nothing of the request is published
    assert all(error.message for error in derived.errors)


def test_an_invalid_source_is_refused() -> None:
    derived = events_from_request(
        body([record()]), source="urn:has space", organ_code=None, resolve_organ=resolve, now=NOW
    )

    assert [(error.index, error.field) for error in derived.errors] == [(0, "source")]
    assert derived.events == []


# --- identities --------------------------------------------------------------------------------------

FULL = record(
    TrangThaiHoSo="10",
    KenhThucHien="2",
    NgayHenTra="20230310170000",
    NgayKetThucXuLy=END,
    NgayTra=HANDED_OVER,
    DanhSachHoSoBoSung=[{**SUPPLEMENT, "NgayHenTraMoi": "20230313170000"}],
    DanhSachLePhi=[{"Gia": "50000"}],
    DuocThanhToanTrucTuyen="1",
    HoSoCoThanhPhanSoHoa="1",
    TaiLieuNop=[{"DuocSoHoa": "1", "DuocTaiSuDung": "1"}],
    DanhSachGiayToKetQua=[{"DuongDanTepTinKetQua": "/r/1"}],
)


def test_an_unchanged_record_sent_again_yields_identical_events() -> None:
    first = derive([FULL]).events
    again = derive([FULL]).events
    both = derive([FULL, FULL]).events

    assert again == first
    assert both == first  # one request holding the record twice: each event once
    assert len({event["id"] for event in first}) == len(first)


def test_the_same_record_with_numbers_or_in_a_bare_array_yields_the_same_events() -> None:
    as_numbers = {
        **FULL,
        "TrangThaiHoSo": 10,
        "KenhThucHien": 2,
        "DuocThanhToanTrucTuyen": 1,
        "NgayTra": int(HANDED_OVER),
    }

    assert derive([as_numbers], service=None).events == derive([FULL]).events


def test_ids_name_the_dossier_kind_and_status_and_stay_within_128_characters() -> None:
    longest = "H" * 64
    events = derive([{**FULL, "MaHoSo": longest}]).events

    assert all(len(event["id"]) <= 128 for event in events)
    by_kind = {event["type"].rsplit(".", 1)[1]: event["id"] for event in events}
    assert by_kind["received"].startswith(f"dvcqg:{longest}:received:10:")
    assert by_kind["resolved"].startswith(f"dvcqg:{longest}:resolved:10:")
    assert by_kind["synced"].startswith(f"dvcqg:{longest}:synced:")
    fact_times = {event["type"].rsplit(".", 1)[1]: event["time"] for event in events}
    assert fact_times["received"] == fact_times["resolved"] == local(HANDED_OVER)  # the progress stamp


def test_a_changed_record_changes_only_the_events_of_the_facts_it_changes() -> None:
    before = {event["id"]: event for event in derive([record(TrangThaiHoSo="4", HoSoCoThanhPhanSoHoa="1")]).events}
    corrected = record(TrangThaiHoSo="4", HoSoCoThanhPhanSoHoa="1", KenhThucHien="2")
    after = {event["id"]: event for event in derive([corrected]).events}

    changed = {after[ident]["type"] for ident in after.keys() - before.keys()}
    assert changed == {"vn.gov.tthc.dossier.received"}  # synced and components_digitized repeat unchanged


def test_an_id_is_never_reused_for_other_content() -> None:
    variants = [
        record(),
        record(KenhThucHien="2"),
        record(TrangThaiHoSo="4"),
        record(NgayHenTra="20230310170000"),
        record(TrangThaiHoSo="9", NgayKetThucXuLy=END),
        record(TrangThaiHoSo="9", NgayKetThucXuLy=HANDED_OVER),
        record(TrangThaiHoSo="8", NgayKetThucXuLy=END),
        FULL,
    ]
    seen: dict[str, dict[str, Any]] = {}
    for variant in variants:
        for event in derive([variant]).events:
            assert seen.setdefault(event["id"], event) == event


# --- which snapshot wins, through the aggregator's core ------------------------------------------------


def fold(events: list[dict[str, Any]]) -> DossierState:
    decoded = [decode_event(json.dumps(event).encode()) for event in events]
    state = initial_state(aggregate_key(decoded[0]))
    for event in decoded:
        state = apply(state, event)
    assert isinstance(state, DossierState)
    return state


@dataclass(frozen=True)
class WinnerRow:
    name: str
    snapshots: list[Mapping[str, Any]]
    channel: str
    resolution: tuple[str, str] | None  # (resolved_at, outcome)
    due_at: str | None = None
    steps: list[Mapping[str, Any]] = field(default_factory=list)


WINNER_ROWS = [
    WinnerRow(
        "a later progress stamp wins over a higher status",
        [
            record(TrangThaiHoSo="9", KenhThucHien="1", NgayKetThucXuLy="20230302090000"),
            record(TrangThaiHoSo="4", KenhThucHien="2", DanhSachHoSoBoSung=[{"NgayBoSung": "20230303090000"}]),
        ],
        "online",
        (local("20230302090000"), "approved"),  # a fact only the earlier snapshot carried stays
    ),
    WinnerRow(
        "on equal stamps the higher status wins",
        [record(TrangThaiHoSo="6", KenhThucHien="1"), record(TrangThaiHoSo="4", KenhThucHien="2")],
        "direct",
        None,
    ),
    WinnerRow(
        "quirk: a 5 sent as 9 is corrected by the true resolution later",
        [
            record(TrangThaiHoSo="9", DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000"}]),
            record(TrangThaiHoSo="4", DanhSachHoSoBoSung=[SUPPLEMENT]),
            record(TrangThaiHoSo="9", DanhSachHoSoBoSung=[SUPPLEMENT], NgayKetThucXuLy=END),
        ],
        "direct",
        (local(END), "approved"),
    ),
    WinnerRow(
        "quirk: an 8 sent as 9 and then as 8 further along: rejected",
        [
            record(TrangThaiHoSo="9", NgayKetThucXuLy=END),
            record(TrangThaiHoSo="8", NgayKetThucXuLy=END, NgayTra=HANDED_OVER),
        ],
        "direct",
        (local(END), "rejected"),
    ),
    WinnerRow(
        "the due date follows the snapshot further along",
        [
            record(
                TrangThaiHoSo="4",
                NgayHenTra="20230310170000",
                DanhSachHoSoBoSung=[{**SUPPLEMENT, "NgayHenTraMoi": "20230313170000"}],
            ),
            record(TrangThaiHoSo="2", NgayHenTra="20230310170000"),
        ],
        "direct",
        None,
        due_at=local("20230313170000"),
    ),
    WinnerRow(
        "a step dated after the snapshot's stamp dates the resolution",
        [record(TrangThaiHoSo="9")],  # reduced: no end date, resolved at the stamp (reception)
        "direct",
        (local(END), "approved"),
        steps=[{"MaHoSo": DOSSIER, "TrangThai": "9", "ThoiDiemXuLy": END}],
    ),
    WinnerRow(
        "a snapshot further along wins over an earlier step",
        [record(TrangThaiHoSo="10", NgayKetThucXuLy=END, NgayTra=HANDED_OVER)],
        "direct",
        (local(END), "approved"),
        steps=[{"MaHoSo": DOSSIER, "TrangThai": "8", "ThoiDiemXuLy": "20230305090000"}],
    ),
]


@pytest.mark.parametrize("row", WINNER_ROWS, ids=[row.name for row in WINNER_ROWS])
def test_the_snapshot_further_along_wins_in_any_order(row: WinnerRow) -> None:
    snapshot_events = [event for snapshot in row.snapshots for event in derive([snapshot]).events]
    step_events = derive(list(row.steps), service="CapNhatTienDoHoSoMC").events if row.steps else []
    events = snapshot_events + step_events

    for ordered in (events, events[::-1]):
        state = fold(ordered)
        assert state.received is not None and state.due is not None
        assert state.received.value.channel == row.channel
        assert (state.due.value.isoformat() if state.due.value else None) == row.due_at
        resolution = None
        if state.resolved is not None:
            resolution = (state.resolved.value.resolved_at.isoformat(), state.resolved.value.outcome)
        assert resolution == row.resolution


def test_quirk_a_regenerated_ma_ho_so_is_another_dossier() -> None:
    """Some senders regenerate MaHoSo; nothing in the record links the two codes, so two dossiers count."""
    first = derive([record(TrangThaiHoSo="4")]).events
    again = derive([record(TrangThaiHoSo="4", MaHoSo="000.00.01.H22-230301-0002")]).events

    assert {event["subject"] for event in first} == {DOSSIER}
    assert {event["subject"] for event in again} == {"000.00.01.H22-230301-0002"}
    assert not {event["id"] for event in first} & {event["id"] for event in again}


@pytest.mark.parametrize(("step_at", "requests"), [("20230302090000", 1), ("20230302090001", 2)])
def test_quirk_a_supplement_as_snapshot_entry_and_step_5_counts_once_at_the_same_second(
    step_at: str, requests: int
) -> None:
    """A sender reporting one request both ways: once when both carry the same second, twice otherwise."""
    snapshot = derive([record(TrangThaiHoSo="5", DanhSachHoSoBoSung=[{"NgayBoSung": "20230302090000"}])]).events
    step = derive([{"MaHoSo": DOSSIER, "TrangThai": "5", "ThoiDiemXuLy": step_at}], service="CapNhatTienDoHoSoMC")

    state = fold(snapshot + step.events)

    assert len(state.v2.supplement_requests) == requests
