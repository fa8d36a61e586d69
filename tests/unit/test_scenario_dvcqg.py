"""The Mỹ Hào scenario as DVCQG synchronisation requests (`scenario.dvcqg`, `python -m scenario --via dvcqg`).

Through the adapter's pure part and the aggregator's pure core, the requests plus the CloudEvents of
what they cannot carry give exactly the counter contributions of the scenario's CloudEvents (every
table: daily counts, levels, cohorts, per-procedure counts and periods), so every figure of every
unit, scope and window agrees. Here for the dossiers of two pilot communes, one for each sender (the
whole scenario takes half a minute of pure work; tests/e2e/test_scenario_via_dvcqg.py sends all of
it through the services). The requests look like the real senders' (both body shapes, both
services, strings and numbers, empty dates, reduced records, the "sent as 9" quirk, snapshots out of
order and repeated), and none of their personal values reaches a derived event.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scenario.client import post_dvcqg
from scenario.dvcqg import CLOUDEVENT_FACTS, Encoded, Request, encode
from scenario.expected import decode
from scenario.generate import generate_events
from scenario.plan import load_scenario
from services.intake.dvcqg import events_from_request
from shared.units import UnitRegistry
from tests.planning import contributions_of

REGISTRY = UnitRegistry.load(None)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The fields of the requests that hold personal data or free text (contract §3.1: dropped at the edge).
PERSONAL = (
    "ChuHoSo", "MaDoiTuong", "ThongTinKhac", "Email", "SoDienThoai", "TrichYeuHoSo", "ThongTinTra", "GhiChu",
    "Address", "SoDinhDanh", "TenTepDinhKem", "DuongDanTaiTepTin", "DuongDanTepTinKetQua", "TenGiayTo",
    "NguoiYeuCauBoSung", "NoiDungBoSung", "NguoiTiepNhanBoSung", "ThongTinTiepNhan", "NguoiXuLy", "NoiDungXuLy",
)  # fmt: skip


def _resolve(organ: str, day: Any) -> str | None:
    entry = REGISTRY.resolve_organ(organ, day)
    return None if entry is None else entry.code


# Minh Đức's one-stop system is the vendor's (bare arrays, numbers), Xuân Đức's OpenCPS (strings).
SLICE = ("my-hao.minh-duc", "my-hao.xuan-duc")


@pytest.fixture(scope="module")
def scenario_events() -> list[dict[str, Any]]:
    """The dossier events of the slice's units (a dossier id starts with its unit's code)."""
    events = generate_events(load_scenario(), 2023)
    return [e for e in events if ".dossier." in e["type"] and e["subject"].rsplit("-", 2)[0] in SLICE]


@pytest.fixture(scope="module")
def encoded(scenario_events: list[dict[str, Any]]) -> Encoded:
    return encode(scenario_events, REGISTRY, 2023)


@pytest.fixture(scope="module")
def derived(encoded: Encoded) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for index, request in enumerate(encoded.requests):
        result = events_from_request(
            request.body,
            source=request.params["source"],
            organ_code=request.params.get("MaDinhDanhDV"),
            resolve_organ=_resolve,
            now=NOW,
        )
        assert result.errors == [], (index, result.errors[:3])
        assert result.records == request.records
        events += result.events
    return events


def _bodies(encoded: Encoded) -> Iterator[tuple[dict[str, str], Any]]:
    for request in encoded.requests:
        yield dict(request.params), json.loads(request.body)


def _records(body: Any) -> list[dict[str, Any]]:
    return body if isinstance(body, list) else body["data"]  # type: ignore[no-any-return]


def test_the_requests_and_the_cloudevents_part_give_the_contributions_of_the_cloudevents_path(
    scenario_events: list[dict[str, Any]], encoded: Encoded, derived: list[dict[str, Any]]
) -> None:
    expected = contributions_of(decode(scenario_events))
    shown = contributions_of(decode(derived + encoded.cloudevents))
    for mine, theirs in zip(expected.tables(), shown.tables(), strict=True):
        want = {key: value for key, value in mine.items() if value}
        got = {key: value for key, value in theirs.items() if value}
        assert got == want
    assert expected.daily  # the scenario, not nothing


def test_most_dossiers_go_through_the_adapter_and_what_stays_cloudevents_is_what_a_record_cannot_say(
    scenario_events: list[dict[str, Any]], encoded: Encoded
) -> None:
    dossiers = {e["subject"] for e in scenario_events if e["type"].endswith(".dossier.received")}
    assert encoded.dossiers + sum(encoded.kept.values()) == len(dossiers)
    assert encoded.dossiers > 0.9 * len(dossiers)
    assert set(encoded.kept) == {"never synchronised to DVCQG"}
    assert set(encoded.overrides) == {"received", "resolved"}  # digitization not required
    kinds = Counter(".".join(event["type"].split(".")[-2:]) for event in encoded.cloudevents)
    assert kinds["dossier.rated"] > 0
    offline = [e for e in encoded.cloudevents if e["type"].endswith(".paid") and e["data"]["method"] == "offline"]
    assert offline
    assert len(CLOUDEVENT_FACTS) == 6


def test_the_requests_have_the_shapes_and_quirks_of_real_senders(encoded: Encoded) -> None:
    shapes: Counter[str] = Counter()
    statuses: Counter[tuple[str, Any]] = Counter()
    for params, body in _bodies(encoded):
        records = _records(body)
        assert 1 <= len(records) <= 1000
        service = "DongBoHoSoMC" if isinstance(body, list) else body["service"]
        shape = "array" if isinstance(body, list) else "object"
        shapes[f"{shape} {service} {'organ' if 'MaDinhDanhDV' in params else 'names'}"] += 1
        for record in records:
            status = record.get("TrangThaiHoSo", record.get("TrangThai"))
            statuses[(service, status)] += 1
            if service == "DongBoHoSoMC" and set(record) == {"MaHoSo", "MaTTHC", "NgayTiepNhan", "TrangThaiHoSo"}:
                shapes["reduced record"] += 1
            if record.get("NgayTra") == "" or record.get("ThoiDiemXuLy") == "":
                shapes["empty date"] += 1
    assert max(len(request.body) for request in encoded.requests) <= 1 << 20
    assert {"object DongBoHoSoMC names", "object CapNhatTienDoHoSoMC names", "array DongBoHoSoMC organ",
            "object CapNhatTienDoHoSoMC organ", "reduced record", "empty date"} <= set(shapes)  # fmt: skip
    for status in ("1", "2", "4", "5", "6", "7", "8", "9", "10"):  # OpenCPS: strings
        assert statuses[("DongBoHoSoMC", status)] > 0, status
    for number in (2, 4, 9, 10):  # the vendor: numbers
        assert statuses[("DongBoHoSoMC", number)] > 0, number
    assert statuses[("CapNhatTienDoHoSoMC", "")] > 0  # OpenCPS's blank steps


def test_snapshots_arrive_out_of_order_and_some_twice(encoded: Encoded) -> None:
    seen: dict[str, list[str]] = {}
    copies: Counter[bytes] = Counter()
    for _, body in _bodies(encoded):
        if isinstance(body, dict) and body["service"] != "DongBoHoSoMC":
            continue
        for record in _records(body):
            seen.setdefault(record["MaHoSo"], []).append(str(record["TrangThaiHoSo"]))
            copies[json.dumps(record, sort_keys=True).encode()] += 1
    assert sum(1 for count in copies.values() if count > 1) > 100
    life = {"1": 0, "2": 1, "4": 2, "6": 2, "5": 3, "7": 4, "8": 4, "9": 4, "10": 5}
    backwards = [d for d, got in seen.items() if any(life[a] > life[b] for a, b in itertools.pairwise(got))]
    assert len(backwards) > 100


def test_no_personal_value_reaches_a_derived_event(encoded: Encoded, derived: list[dict[str, Any]]) -> None:
    personal: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name in PERSONAL and isinstance(item, str) and item:
                    personal.add(item)
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for _, body in _bodies(encoded):
        collect(body)
    assert len(personal) > 1_000
    values: set[str] = set()

    def strings(value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                values.add(name)
                strings(item)
        elif isinstance(value, list):
            for item in value:
                strings(item)
        elif isinstance(value, str):
            values.add(value)

    strings(derived)
    assert not personal & values
    text = json.dumps(derived, ensure_ascii=False)
    assert not re.search(r"(?<![0-9a-f])033[0-3][0-9]{8}(?![0-9a-f])", text)  # no CCCD number anywhere
    assert "@gmail.com" not in text and "@yahoo.com" not in text


def test_the_client_posts_each_request_with_its_query_and_retries_after_503() -> None:
    requests = [
        Request({"source": "urn:a"}, b'{"service": "DongBoHoSoMC", "data": [{}, {}]}', 2, NOW),
        Request({"source": "urn:b", "MaDinhDanhDV": "000.08.05.H31"}, b"[{}]", 1, NOW),
    ]
    answers = [
        httpx.Response(202, json={"accepted": 2, "events": 5}),
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(202, json={"accepted": 1, "events": 3}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    sleeps: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        stats = post_dvcqg(requests, "http://intake/", client=client, sleep=sleeps.append)

    assert (stats.records, stats.events, stats.requests, stats.retries, sleeps) == (3, 8, 3, 1, [2.0])
    assert [str(request.url) for request in seen] == [
        "http://intake/v1/adapters/dvcqg?source=urn%3Aa",
        "http://intake/v1/adapters/dvcqg?source=urn%3Ab&MaDinhDanhDV=000.08.05.H31",
        "http://intake/v1/adapters/dvcqg?source=urn%3Ab&MaDinhDanhDV=000.08.05.H31",
    ]
    assert [request.content for request in seen] == [requests[0].body, requests[1].body, requests[1].body]
    assert all(request.headers["content-type"] == "application/json" for request in seen)
    assert seen[0].headers["authorization"] == "Bearer dev-intake-token"
