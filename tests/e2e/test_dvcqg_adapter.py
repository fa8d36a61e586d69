"""The DVCQG adapter end to end (contract §3.1): copies of real synchronisation requests go in,
figures come out, and no personal value reaches Kafka (events and dead letters), the database or a log.

Every personal field of the requests holds a unique marker string; the test then reads every record of
both topics as bytes (keys, values and headers), every stored state, and every service log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import DATABASE_URL, KAFKA, eventually
from tests.in_process import end_offsets, read_records, read_topic
from tests.subprocesses import ServiceSet
from tests.unit.test_dvcqg_model import MARK, _marked_record, _marked_step

pytestmark = pytest.mark.e2e

SOURCE = "urn:vn:hungyen:motcua:opencps"
INTAKE = {"Authorization": "Bearer dev-intake-token"}
READER = {"Authorization": "Bearer dev-read-token"}
DUPLICATES = "tthc_aggregator_duplicates_total"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(Path(tmp_path_factory.mktemp("dvcqg")))
    try:
        stack.start("aggregator", "aggregator")
        stack.start("intake", "intake")
        stack.start("reporting", "reporting", REPORTING_WORKERS="1")
        yield stack
    finally:
        stack.stop_all()


def _opencps_record(marks: list[str], dossier: str, status: str, organ: str) -> dict[str, Any]:
    """As OpenCPS builds it: every value a string, "" for an absent date, every personal field filled in."""

    def mark(name: str) -> str:
        value = f"{MARK}{len(marks):03d}{name}"
        marks.append(value)
        return value

    ended = status in ("9", "10")
    return {
        "MaHoSo": dossier,
        "MaTTHC": "1.004227",
        "TenTTHC": mark("TenTTHC"),
        "MaLinhVuc": "G12",
        "TenLinhVuc": mark("TenLinhVuc"),
        "KenhThucHien": "2",
        "ChuHoSo": mark("ChuHoSo"),
        "LoaiDoiTuong": "1",
        "MaDoiTuong": mark("MaDoiTuong"),
        "ThongTinKhac": mark("ThongTinKhac"),
        "Email": mark("Email"),
        "Fax": mark("Fax"),
        "SoDienThoai": mark("SoDienThoai"),
        "TrichYeuHoSo": mark("TrichYeuHoSo"),
        "NgayTiepNhan": "20230301083000",
        "NgayHenTra": "20230308170000",
        "TrangThaiHoSo": status,
        "NgayTra": "",
        "ThongTinTra": mark("ThongTinTra"),
        "HinhThuc": "0",
        "NgayKetThucXuLy": "20230306100000" if ended else "",
        "DonViXuLy": organ,
        "GhiChu": mark("GhiChu"),
        "NoiNopHoSo": "2",
        "NgayNopHoSo": "20230301080000",
        "NgayTuChoi": "",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": mark("SoDinhDanh")}],
        "HoSoCoThanhPhanSoHoa": "1",
        "TaiKhoanDuocXacThucVoiVNeID": "1",
        "DuocThanhToanTrucTuyen": "0",
        "TaiLieuNop": [
            {
                "TepDinhKemId": mark("TepDinhKemId"),
                "TenTepDinhKem": mark("TenTepDinhKem"),
                "MaThanhPhanHoSo": "TP01",
                "DuongDanTaiTepTin": mark("DuongDanTaiTepTin"),
                "IsDeleted": "False",
                "DuocSoHoa": "1",
                "DuocTaiSuDung": "0",
                "DuocLayTuKhoDMQG": "0",
            }
        ],
        "DanhSachLePhi": [{"TenPhiLePhi": mark("TenPhiLePhi"), "Gia": "0"}],
        "DanhSachHoSoBoSung": [
            {
                "HoSoBoSungId": mark("HoSoBoSungId"),
                "NguoiYeuCauBoSung": mark("NguoiYeuCauBoSung"),
                "NoiDungBoSung": mark("NoiDungBoSung"),
                "NgayBoSung": "20230302090000",
                "NguoiTiepNhanBoSung": mark("NguoiTiepNhanBoSung"),
                "ThongTinTiepNhan": mark("ThongTinTiepNhan"),
                "NgayTiepNhanBoSung": "",  # pending: OpenCPS writes "" for the date not yet known
                "TrangThaiBoSung": "0",
                "NgayHenTraTruoc": "",
                "NgayHenTraMoi": "",
            }
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": mark("TenGiayTo"),
                "MaThanhPhanHoSo": "KQ01",
                "GiayToId": mark("GiayToId"),
                "DuongDanTepTinKetQua": mark("DuongDanTepTinKetQua") if ended else "",
            }
        ],
        "DanhSachTepDinhKemKhac": [{"TenGiayTo": mark("TenGiayToKhac")}],
    }


async def _raw_records(topic: str) -> list[bytes]:
    """Every record of a topic as bytes: key, value and each header name and value."""
    found: list[bytes] = []
    for r in await read_records(KAFKA, topic):
        found += [r.key or b"", r.value or b""]
        found += [part for name, value in r.headers for part in (name.encode(), value)]
    return found


async def _stored_text(schema: str) -> str:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(f'SELECT kind, key, state::text AS state FROM "{schema}".aggregate_states')
    finally:
        await conn.close()
    return "\n".join(f"{r['kind']} {r['key']} {r['state']}" for r in rows)


async def test_personal_data_stops_at_the_adapter(services: ServiceSet) -> None:
    marks: list[str] = []
    opencps = {
        "isUpdating": "false",
        "service": "DongBoHoSoMC",
        "data": [
            _opencps_record(marks, "000.00.21.H31-230301-0001", "2", "UBND phường Minh Đức"),
            _opencps_record(marks, "000.00.21.H31-230301-0002", "10", "Bộ phận Một cửa phường Minh Đức"),
        ],
    }
    vendor = [_marked_record(marks)]  # the richer payload, a bare array; its organ comes from the query
    steps = {"service": "CapNhatTienDoHoSoMC", "data": [_marked_step(marks)]}
    invalid = [{**_opencps_record(marks, "000.00.21.H31-230301-0003", "2", "UBND phường Minh Đức"),
                "KenhThucHien": f"{MARK}bad-channel", "NgayTiepNhan": f"{MARK}bad-date"}]  # fmt: skip
    marks += [f"{MARK}bad-channel", f"{MARK}bad-date"]
    url = f"{services.url('intake')}/v1/adapters/dvcqg"
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(url, params={"source": SOURCE}, json=opencps, headers=INTAKE)
        assert first.status_code == 202, first.text
        assert first.json() == {"accepted": 2, "events": first.json()["events"]} and first.json()["events"] >= 4
        second = await client.post(
            url, params={"source": SOURCE, "MaDinhDanhDV": "000.00.05.H31"}, json=vendor, headers=INTAKE
        )
        assert second.status_code == 202, second.text
        third = await client.post(url, params={"source": SOURCE}, json=steps, headers=INTAKE)
        assert third.status_code == 202, third.text
        refused = await client.post(url, params={"source": SOURCE}, json=invalid, headers=INTAKE)
        assert refused.status_code == 422
        fields = {(e["index"], e["field"]) for e in refused.json()["errors"]}
        assert fields == {(0, "KenhThucHien"), (0, "NgayTiepNhan")}
        texts = [first.text, second.text, third.text, refused.text]
        # A CloudEvent reusing a derived event's identity with other content: a dead letter, so that
        # the dead-letter topic read below holds what the aggregator writes there.
        [derived, *_] = [json.loads(value) for value in await read_topic(KAFKA, services.topic)]
        conflict = {**derived, "time": "2023-03-01T08:30:01+07:00"}
        reused = await client.post(
            f"{services.url('intake')}/v1/events", json=conflict, headers={**INTAKE, "Content-Type": "application/json"}
        )
        assert reused.status_code == 202, reused.text

        async def figures_shown() -> dict[str, Any] | None:
            response = await client.get(
                f"{services.url('reporting')}/v1/indicators",
                params={"unit": "hung-yen", "from": "2023-01-01", "to": "2023-12-31"},
                headers=READER,
            )
            body: dict[str, Any] = response.json()
            return body if body["dossiers"]["received"] == 3 and body["dossiers"]["resolved"] == 2 else None

        shown = await eventually(figures_shown, timeout=60, what="the three dossiers in the figures")

        async def dead_letters() -> int | None:
            count = sum((await end_offsets(KAFKA, services.dead_letter_topic)).values())
            return count or None

        await eventually(dead_letters, timeout=60, what="the identity conflict dead-lettered")
    assert shown["dossiers"]["received_online"] == 3
    assert shown["dossiers"]["synced"] == 3

    events, dead = await _raw_records(services.topic), await _raw_records(services.dead_letter_topic)
    assert events and dead  # both topics hold records, so the absence of markers means something
    records = events + dead
    stored = await _stored_text(services.schema)
    logs = [services.log(name) for name in ("intake", "aggregator", "reporting")]
    everything = "\n".join([*texts, stored, *logs, *(r.decode("utf-8", "replace") for r in records)])
    assert MARK not in everything, [m for m in marks if m in everything]


async def test_resending_a_request_changes_nothing(services: ServiceSet) -> None:
    marks: list[str] = []
    record = _opencps_record(marks, "000.00.21.H31-230301-0009", "9", "UBND phường Minh Đức")
    request = {"service": "DongBoHoSoMC", "data": [record]}
    url = f"{services.url('intake')}/v1/adapters/dvcqg"
    dead_before = len(await _raw_records(services.dead_letter_topic))
    async with httpx.AsyncClient(timeout=30) as client:

        async def duplicates() -> float:
            metrics = (await client.get(f"{services.url('aggregator')}/metrics")).text
            lines = metrics.splitlines()
            return next(float(line.split()[-1]) for line in lines if line.startswith(DUPLICATES + " "))

        before = await duplicates()
        for _ in range(3):
            answer = await client.post(url, params={"source": SOURCE}, json=request, headers=INTAKE)
            assert answer.status_code == 202, answer.text

        async def applied() -> float | None:
            seen = await duplicates() - before
            return seen if seen >= 2 * json.loads(answer.text)["events"] else None

        await eventually(applied, timeout=60, what="the resent events seen as duplicates")
    assert len(await _raw_records(services.dead_letter_topic)) == dead_before  # duplicates are no conflicts


@pytest.mark.parametrize(
    ("params", "headers", "body", "status"),
    [
        ({"source": SOURCE}, {}, b"[]", 401),
        ({"source": SOURCE}, {**INTAKE, "Content-Type": "text/plain"}, b"[]", 415),
        ({"source": SOURCE}, {**INTAKE, "Content-Type": "application/json"}, b"[{", 400),
        ({}, {**INTAKE, "Content-Type": "application/json"}, b"[]", 422),
    ],
)
def test_request_errors(
    services: ServiceSet, params: dict[str, str], headers: dict[str, str], body: bytes, status: int
) -> None:
    answer = httpx.post(f"{services.url('intake')}/v1/adapters/dvcqg", params=params, headers=headers, content=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
