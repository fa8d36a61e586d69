"""The DVCQG request model (services/intake/dvcqg_model.py): body shapes, services, value forms, limits,
and personal data, which must never get past the parser: not into the model, the events or an error."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from services.intake.dvcqg import events_from_request
from services.intake.dvcqg_model import (
    MAX_RECORDS,
    DossierRecord,
    FeeLine,
    MalformedRequest,
    ParsedRequest,
    ProgressStep,
    ResultFile,
    SubmittedFile,
    Supplement,
    TooManyRecords,
    parse_request,
)
from tests.unit.test_dvcqg_mapping import NOW, SENDER, SOURCE, VIETNAM, body, record, resolve


def errors_of(parsed: ParsedRequest) -> list[tuple[int, str]]:
    return [(error.index, error.field) for error in parsed.errors]


def only_record(raw: bytes) -> DossierRecord:
    parsed = parse_request(raw)
    assert parsed.errors == ()
    [(index, result)] = parsed.records
    assert index == 0 and isinstance(result, DossierRecord)
    return result


# --- body shapes and services -----------------------------------------------------------------------


def test_an_opencps_envelope_is_parsed() -> None:
    parsed = parse_request(body([record(), record(TrangThaiHoSo="4")]))

    assert parsed.service == "DongBoHoSoMC"
    assert parsed.is_updating is False
    assert parsed.count == 2
    assert [index for index, _ in parsed.records] == [0, 1]
    assert all(isinstance(item, DossierRecord) for _, item in parsed.records)


def test_a_bare_array_is_a_list_of_dongbohosomc_records() -> None:
    parsed = parse_request(body([record()], service=None))

    assert parsed.service == "DongBoHoSoMC"
    assert parsed.is_updating is None
    assert parsed.count == 1 and parsed.errors == ()


@pytest.mark.parametrize(
    ("given", "expected"), [(True, True), ("True", True), ("false", False), (None, None), (3, None)]
)
def test_is_updating_is_read_leniently_and_never_refused(given: Any, expected: bool | None) -> None:
    raw = json.dumps({"service": "DongBoHoSoMC", "isUpdating": given, "data": [record()]}).encode()

    assert parse_request(raw).is_updating is expected


def test_an_envelope_without_service_is_dongbohosomc() -> None:
    parsed = parse_request(json.dumps({"data": [record()]}).encode())

    assert parsed.service == "DongBoHoSoMC" and parsed.errors == ()


def test_progress_steps_are_parsed_with_capnhattiendohosomc() -> None:
    step = {"MaHoSo": 123, "TrangThai": "9", "ThoiDiemXuLy": "20230308100000", "NguoiXuLy": "Lê Văn C"}
    parsed = parse_request(body([step], service="CapNhatTienDoHoSoMC"))

    assert parsed.service == "CapNhatTienDoHoSoMC"
    assert parsed.records == ((0, ProgressStep(MaHoSo="123", TrangThai=9, ThoiDiemXuLy="20230308100000")),)
    [(_, parsed_step)] = parsed.records
    assert isinstance(parsed_step, ProgressStep)
    assert parsed_step.at == datetime(2023, 3, 8, 10, tzinfo=VIETNAM)


@pytest.mark.parametrize("service", ["LayThuTuc", "", 7, ["DongBoHoSoMC"], {"a": 1}])
def test_an_unknown_service_is_named(service: Any) -> None:
    parsed = parse_request(json.dumps({"service": service, "data": [record()]}).encode())

    assert errors_of(parsed) == [(0, "service")]
    assert parsed.records == ()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'"a string"',
        b"42",
        b'{"service": "DongBoHoSoMC"}',
        b'{"data": {"MaHoSo": "x"}}',
        b'[{"MaHoSo": NaN}]',
        b"\xff\xfe[]",
        b"[" * 100_000,
    ],
    ids=["empty", "truncated", "text", "string", "number", "no data", "data object", "NaN", "not UTF-8", "deep"],
)
def test_a_body_of_another_shape_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(raw)


def test_at_most_1000_records() -> None:
    assert parse_request(body([record()] * MAX_RECORDS)).count == MAX_RECORDS
    with pytest.raises(TooManyRecords) as raised:
        parse_request(body([record()] * (MAX_RECORDS + 1), service=None))
    assert raised.value.count == MAX_RECORDS + 1


@pytest.mark.parametrize("service", ["DongBoHoSoMC", None])
def test_no_records_is_an_error(service: str | None) -> None:
    parsed = parse_request(body([], service=service))

    assert errors_of(parsed) == [(0, "data" if service else "")]


def test_each_invalid_record_is_named_by_its_position_and_the_valid_ones_are_kept() -> None:
    parsed = parse_request(body([record(), 5, record(NgayTiepNhan="2023-03-01"), record(TrangThaiHoSo=None)]))

    assert errors_of(parsed) == [(1, ""), (2, "NgayTiepNhan"), (3, "TrangThaiHoSo")]
    assert [index for index, _ in parsed.records] == [0]


# --- values -------------------------------------------------------------------------------------


def test_strings_and_numbers_are_alike() -> None:
    as_strings = record(
        MaHoSo="2301",
        MaTTHC="1004227",
        TrangThaiHoSo="9",
        KenhThucHien="2",
        NgayKetThucXuLy="20230308100000",
        DuocThanhToanTrucTuyen="2",
        HoSoCoThanhPhanSoHoa="1",
        DanhSachLePhi=[{"Gia": "50000"}],
        TaiLieuNop=[{"DuocSoHoa": "1", "DuocTaiSuDung": "0", "IsDeleted": "0"}],
    )
    as_numbers = record(
        MaHoSo=2301,
        MaTTHC=1004227,
        TrangThaiHoSo=9,
        KenhThucHien=2,
        NgayKetThucXuLy=20230308100000,
        DuocThanhToanTrucTuyen=2,
        HoSoCoThanhPhanSoHoa=1,
        DanhSachLePhi=[{"Gia": 50000}],
        TaiLieuNop=[{"DuocSoHoa": 1, "DuocTaiSuDung": False, "IsDeleted": 0}],
    )

    parsed = only_record(body([as_strings]))
    assert parsed == only_record(body([as_numbers]))
    assert (parsed.dossier_id, parsed.procedure_code, parsed.status, parsed.channel) == ("2301", "1004227", 9, "online")
    assert parsed.processing_ended_at == datetime(2023, 3, 8, 10, tzinfo=VIETNAM)
    assert parsed.paid_online and parsed.has_digitized_components
    assert parsed.fee_lines == (FeeLine(Gia=50000),)
    assert parsed.submitted_files == (SubmittedFile(DuocSoHoa=True),)


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_empty_strings_and_nulls_are_absent(empty: Any) -> None:
    empty = "__null__" if empty is None else empty  # record() drops a None: write JSON nulls instead
    parsed = only_record(
        body(
            [
                record(
                    NgayHenTra=empty,
                    NgayKetThucXuLy=empty,
                    NgayTra=empty,
                    KenhThucHien=empty,
                    DonViXuLy=empty,
                    MaTTHC=empty,
                    DuocThanhToanTrucTuyen=empty,
                    DanhSachHoSoBoSung=[{"NgayBoSung": empty, "NgayTiepNhanBoSung": empty, "NgayHenTraMoi": empty}],
                    DanhSachGiayToKetQua=[{"DuongDanTepTinKetQua": empty}],
                )
            ]
        ).replace(b'"__null__"', b"null")
    )

    assert parsed.due_at is None and parsed.processing_ended_at is None and parsed.returned_at is None
    assert parsed.channel == "direct" and parsed.organ is None and parsed.procedure_code is None
    assert parsed.paid_online is False
    assert parsed.supplements == (Supplement(),)
    assert parsed.result_files == (ResultFile(),)


def test_dates_are_local_time() -> None:
    parsed = only_record(body([record(NgayTiepNhan="20230301233000")]))

    assert parsed.received_at == datetime(2023, 3, 1, 23, 30, tzinfo=VIETNAM)
    assert parsed.received_at.isoformat() == "2023-03-01T23:30:00+07:00"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"NgayTiepNhan": "2023-03-01 08:30:00"}, "NgayTiepNhan"),
        ({"NgayTiepNhan": "20231301083000"}, "NgayTiepNhan"),
        ({"NgayTiepNhan": "20230230083000"}, "NgayTiepNhan"),
        ({"NgayHenTra": "19691231235959"}, "NgayHenTra"),
        ({"NgayHenTra": "30000101000000"}, "NgayHenTra"),
        ({"NgayTra": 2023}, "NgayTra"),
        ({"NgayTra": True}, "NgayTra"),
        ({"TrangThaiHoSo": "11"}, "TrangThaiHoSo"),
        ({"TrangThaiHoSo": "2.0"}, "TrangThaiHoSo"),
        ({"TrangThaiHoSo": ""}, "TrangThaiHoSo"),
        ({"KenhThucHien": "4"}, "KenhThucHien"),
        ({"KenhThucHien": "online"}, "KenhThucHien"),
        ({"DuocThanhToanTrucTuyen": 3}, "DuocThanhToanTrucTuyen"),
        ({"HoSoCoThanhPhanSoHoa": "2"}, "HoSoCoThanhPhanSoHoa"),
        ({"MaHoSo": ""}, "MaHoSo"),
        ({"MaHoSo": "x" * 65}, "MaHoSo"),
        ({"MaHoSo": "a\x00b"}, "MaHoSo"),
        ({"MaHoSo": "a\ud800"}, "MaHoSo"),
        ({"MaHoSo": {"a": 1}}, "MaHoSo"),
        ({"MaTTHC": 1.5}, "MaTTHC"),
        ({"DonViXuLy": "x" * 513}, "DonViXuLy"),
        ({"DanhSachLePhi": [{"Gia": -1}]}, "DanhSachLePhi.0.Gia"),
        ({"DanhSachLePhi": [{"Gia": "50 nghìn"}]}, "DanhSachLePhi.0.Gia"),
        ({"DanhSachLePhi": [{"Gia": "5.00.0"}]}, "DanhSachLePhi.0.Gia"),
        ({"DanhSachLePhi": {"Gia": 1}}, "DanhSachLePhi"),
        ({"TaiLieuNop": [{"DuocSoHoa": "yes"}]}, "TaiLieuNop.0.DuocSoHoa"),
        ({"TaiLieuNop": ["file"]}, "TaiLieuNop.0"),
        ({"DanhSachHoSoBoSung": [{}, {"NgayBoSung": "x"}]}, "DanhSachHoSoBoSung.1.NgayBoSung"),
        ({"DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": 5}]}, "DanhSachGiayToKetQua.0.DuongDanTepTinKetQua"),
    ],
)
def test_a_wrong_value_is_named_by_its_field(fields: dict[str, Any], field: str) -> None:
    raw = json.dumps([record(**fields)]).encode()

    assert errors_of(parse_request(raw)) == [(0, field)]


@pytest.mark.parametrize(
    ("gia", "amount"),
    [("50.000", 50000), ("1,250,000", 1250000), ("50000", 50000), ("12.5", 12.5), (1500.0, 1500), (0, 0), ("", 0)],
)
def test_fee_amounts_in_vietnamese_or_plain_notation(gia: Any, amount: float) -> None:
    parsed = only_record(body([record(DanhSachLePhi=[{"Gia": gia}])]))

    assert parsed.fee_lines[0].amount == amount


def test_control_characters_in_unread_fields_are_dropped_with_them() -> None:
    raw = body([record(ChuHoSo="Nguyễn\x00Văn\ud800A")])

    assert only_record(raw).dossier_id == record()["MaHoSo"]


# --- personal data never gets past the parser ---------------------------------------------------------

READ_FIELDS = {
    DossierRecord: {
        "MaHoSo",
        "MaTTHC",
        "NgayTiepNhan",
        "NgayHenTra",
        "KenhThucHien",
        "TrangThaiHoSo",
        "NgayKetThucXuLy",
        "NgayTra",
        "DonViXuLy",
        "DanhSachHoSoBoSung",
        "DanhSachLePhi",
        "DuocThanhToanTrucTuyen",
        "HoSoCoThanhPhanSoHoa",
        "TaiLieuNop",
        "DanhSachGiayToKetQua",
    },
    Supplement: {"NgayBoSung", "NgayTiepNhanBoSung", "NgayHenTraMoi"},
    FeeLine: {"Gia"},
    SubmittedFile: {"DuocSoHoa", "DuocTaiSuDung", "DuocLayTuKhoDMQG", "IsDeleted"},
    ResultFile: {"DuongDanTepTinKetQua"},
    ProgressStep: {"MaHoSo", "TrangThai", "ThoiDiemXuLy"},
}


@pytest.mark.parametrize("model", list(READ_FIELDS), ids=lambda model: model.__name__)
def test_the_models_read_only_the_listed_fields(model: Any) -> None:
    assert {info.alias for info in model.model_fields.values()} == READ_FIELDS[model]


MARK = "ZZMARK"


def _marked_record(marks: list[str]) -> dict[str, Any]:
    """A full record as OpenCPS and the Tân Dân system send it, every unread field holding a unique marker."""

    def mark(name: str) -> str:
        value = f"{MARK}{len(marks):03d}{name}"
        marks.append(value)
        return value

    return record(
        TrangThaiHoSo="10",
        KenhThucHien="2",
        NgayHenTra="20230310170000",
        NgayKetThucXuLy="20230308100000",
        NgayTra="20230309090000",
        DuocThanhToanTrucTuyen="1",
        HoSoCoThanhPhanSoHoa="1",
        TenTTHC=mark("TenTTHC"),
        MaLinhVuc=mark("MaLinhVuc"),
        TenLinhVuc=mark("TenLinhVuc"),
        SoBienNhan=mark("SoBienNhan"),
        ChuHoSo=mark("ChuHoSo"),
        LoaiDoiTuong=mark("LoaiDoiTuong"),
        MaDoiTuong=mark("MaDoiTuong"),
        ThongTinKhac=mark("ThongTinKhac"),
        Email=mark("Email"),
        Fax=mark("Fax"),
        SoDienThoai=mark("SoDienThoai"),
        TrichYeuHoSo=mark("TrichYeuHoSo"),
        ThongTinTra=mark("ThongTinTra"),
        HinhThuc=mark("HinhThuc"),
        GhiChu=mark("GhiChu"),
        NoiNopHoSo=mark("NoiNopHoSo"),
        NgayNopHoSo=mark("NgayNopHoSo"),
        NgayTuChoi=mark("NgayTuChoi"),
        TaiKhoanDuocXacThucVoiVNeID=mark("TaiKhoanDuocXacThucVoiVNeID"),
        DinhDanhCHS=[{"LoaiDinhDanh": mark("LoaiDinhDanh"), "SoDinhDanh": mark("SoDinhDanh")}],
        TaiLieuNop=[
            {
                "TepDinhKemId": mark("TepDinhKemId"),
                "TenTepDinhKem": mark("TenTepDinhKem"),
                "MaThanhPhanHoSo": mark("MaThanhPhanHoSo"),
                "DuongDanTaiTepTin": mark("DuongDanTaiTepTin"),
                "IsDeleted": "False",
                "DuocSoHoa": "1",
                "DuocTaiSuDung": "1",
                "DuocLayTuKhoDMQG": "0",
            }
        ],
        DanhSachLePhi=[
            {
                "TenPhiLePhi": mark("TenPhiLePhi"),
                "MaPhiLePhi": mark("MaPhiLePhi"),
                "HinhThucThu": mark("HinhThucThu"),
                "Gia": "50000",
                "LoaiPhiLePhi": mark("LoaiPhiLePhi"),
            }
        ],
        DanhSachHoSoBoSung=[
            {
                "HoSoBoSungId": mark("HoSoBoSungId"),
                "NguoiYeuCauBoSung": mark("NguoiYeuCauBoSung"),
                "NoiDungBoSung": mark("NoiDungBoSung"),
                "NgayBoSung": "20230302090000",
                "NguoiTiepNhanBoSung": mark("NguoiTiepNhanBoSung"),
                "ThongTinTiepNhan": mark("ThongTinTiepNhan"),
                "NgayTiepNhanBoSung": "20230303090000",
                "TrangThaiBoSung": mark("TrangThaiBoSung"),
                "NgayHenTraTruoc": mark("NgayHenTraTruoc"),
                "NgayHenTraMoi": "20230313170000",
                "DanhSachGiayToBoSung": [{"TenGiayTo": mark("TenGiayToBoSung")}],
            }
        ],
        DanhSachGiayToKetQua=[
            {
                "TenGiayTo": mark("TenGiayTo"),
                "MaThanhPhanHoSo": mark("MaThanhPhanHoSoKetQua"),
                "GiayToId": mark("GiayToId"),
                "DuongDanTepTinKetQua": mark("DuongDanTepTinKetQua"),  # a path: read as "present" only
            }
        ],
        DanhSachTepDinhKemKhac=[{"TenGiayTo": mark("TenGiayToKhac"), "SoLuong": mark("SoLuong")}],
    )


def _marked_step(marks: list[str]) -> dict[str, Any]:
    def mark(name: str) -> str:
        value = f"{MARK}{len(marks):03d}{name}"
        marks.append(value)
        return value

    step = {"MaHoSo": record()["MaHoSo"], "TrangThai": "9", "ThoiDiemXuLy": "20230308100000"}
    names = ("NguoiXuLy", "ChucDanh", "PhongBanXuLy", "NoiDungXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
    return {**step, **{name: mark(name) for name in names}}


def _nowhere(marks: list[str], *texts: str) -> None:
    assert marks
    for text in texts:
        assert MARK not in text
        assert not [value for value in marks if value in text]


@pytest.mark.parametrize("service", ["DongBoHoSoMC", "CapNhatTienDoHoSoMC"])
def test_personal_fields_appear_nowhere_in_the_model_or_the_events(service: str) -> None:
    marks: list[str] = []
    item = _marked_record(marks) if service == "DongBoHoSoMC" else _marked_step(marks)
    raw = body([item], service=service)

    parsed = parse_request(raw)
    derived = events_from_request(raw, source=SOURCE, organ_code=SENDER, resolve_organ=resolve, now=NOW)

    assert parsed.errors == () and derived.errors == [] and derived.events
    [(_, model)] = parsed.records
    assert model.__pydantic_extra__ is None  # nothing unread is kept aside either
    _nowhere(marks, repr(parsed), model.model_dump_json(), json.dumps(derived.events, ensure_ascii=False))


def test_no_error_echoes_a_value_read_or_unread() -> None:
    marks: list[str] = []
    invalid_values = _marked_record(marks)
    invalid_fields = {
        "MaHoSo": MARK * 20,
        "MaTTHC": MARK * 20,
        "NgayTiepNhan": MARK + "NgayTiepNhan",
        "NgayHenTra": MARK + "NgayHenTra",
        "KenhThucHien": MARK + "KenhThucHien",
        "TrangThaiHoSo": MARK + "TrangThaiHoSo",
        "DuocThanhToanTrucTuyen": MARK + "DuocThanhToanTrucTuyen",
        "HoSoCoThanhPhanSoHoa": MARK + "HoSoCoThanhPhanSoHoa",
        "DonViXuLy": MARK * 100,
        "DanhSachLePhi": [{"Gia": MARK + "Gia"}],
        "TaiLieuNop": [{"DuocSoHoa": MARK + "DuocSoHoa", "IsDeleted": MARK, "DuocTaiSuDung": MARK}],
        "DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": {"path": MARK + "path"}}],
        "DanhSachHoSoBoSung": [{"NgayBoSung": MARK + "NgayBoSung", "NgayHenTraMoi": [MARK]}],
    }
    invalid_values.update(invalid_fields)
    unknown_organ = {**_marked_record(marks), "DonViXuLy": MARK + "DonViXuLy"}
    steps = [{**_marked_step(marks), "TrangThai": MARK, "ThoiDiemXuLy": MARK + "ThoiDiemXuLy"}]
    requests = [
        (body([invalid_values, unknown_organ, 7]), None),
        (body(steps, service="CapNhatTienDoHoSoMC"), None),
        (json.dumps({"service": MARK + "service", "data": [invalid_values]}).encode(), None),
        (body([unknown_organ]), "x" + MARK),
    ]
    for raw, organ_code in requests:
        derived = events_from_request(raw, source=SOURCE, organ_code=organ_code, resolve_organ=resolve, now=NOW)
        assert derived.errors and derived.events == []
        _nowhere([*marks, *map(str, invalid_fields.values())], repr(derived.errors))
    fields = {
        error.field
        for error in events_from_request(
            requests[0][0], source=SOURCE, organ_code=None, resolve_organ=resolve, now=NOW
        ).errors
    }
    assert set(invalid_fields) <= {name.split(".")[0] for name in fields} | {"DonViXuLy"}
    assert "DonViXuLy" in fields


def test_malformed_bodies_echo_nothing() -> None:
    for raw in (b'[{"ChuHoSo": "' + MARK.encode() + b'"', b'{"data": "' + MARK.encode() + b'"}'):
        with pytest.raises(MalformedRequest) as raised:
            parse_request(raw)
        assert MARK not in str(raised.value)
