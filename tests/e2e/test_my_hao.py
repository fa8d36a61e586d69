"""The Mỹ Hào 2023 scenario through the services as processes: the annual report in every format
prints the seed report's figures, and the IOC dashboard shows the figures and changes live in a
real (headless Chromium) browser."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from docx import Document

from scenario.client import post_events
from scenario.generate import generate_events
from scenario.plan import load_scenario
from services.reporting.report import in_sentence
from shared.vietnamese import format_count, format_points
from shared.vietnamese import format_share as percent
from tests.browser import open_dashboard, require_browser
from tests.conftest import DATABASE_URL, KAFKA, eventually
from tests.in_process import end_offsets
from tests.reporting_stack import READ, in_2023, post, received, running_services
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

REPORT = {"unit": "my-hao", "year": "2023", "to": "2023-11-27"}

# Sections 4.1 and 4.4 of the seed report, as it prints them (town figures, scope=self), except the
# leader-signature share it misprints as 7,47%: the counts give 50,21%.
SEED_TEXT = [
    "Từ 01/01/2023 - 27/11/2023 có 8.623 văn bản đến, 13.816 văn bản đi",
    "Tổng số văn bản ký số của lãnh đạo/tổng số văn bản ký số của cơ quan: 4.223/8.411, đạt 50,21%",
    "một cửa điện tử là 226 thủ tục",
    "20 dịch vụ",
    "trực tuyến một phần là 76 dịch vụ",
    "trực tuyến toàn trình là 130 dịch vụ",
    "đã tiếp nhận: 1.763 hồ sơ",
    "Số hồ sơ tiếp nhận trực tuyến: 1.704 hồ sơ",
    "số hồ sơ tiếp nhận trực tiếp: 59 hồ sơ",
    "Số hồ sơ đã giải quyết trước hạn/đúng hạn là 1.722 hồ sơ/1.722 hồ sơ (đạt 100%)",
    "không có hồ sơ đã giải quyết quá hạn",
    "Số hồ sơ đang giải quyết đúng hạn là 41 hồ sơ/41 hồ sơ (đạt 100%)",
    "không có hồ sơ đang giải quyết quá hạn",
    "số hoá đầy đủ thành phần hồ sơ: 1.402 hồ sơ/1.729",
    "(đạt 81,1%)",
    "số hóa kết quả giải quyết TTHC: 1.089 kết quả/1.319",
    "(đạt 82,6%)",
    "Thanh toán trực tuyến 158 hồ sơ/606",
    "(đạt 26,1%)",
]
# Section 9 as the seed prints it (names corrected as in the scenario). Two figures of the
# results column differ in precision only: the seed prints 66,2% and 39,4% but 69,97% and 57,23%
# in the same column; the report uses 2 decimals for the whole column (66,23%, 39,39%).
SEED_SECTION_9 = [
    "phường Minh Đức 97,8%",
    "xã Xuân Dục 89,7%",
    "xã Hưng Long 82,9%",
    "phường Bần Yên Nhân 75%",
    "xã Xuân Dục 69,97%",
    "phường Minh Đức 57,23%",
    "phường Bần Yên Nhân 66,23%",
    "xã Hưng Long 39,39%",
    "phường Bần Yên Nhân 90,5%",
    "phường Minh Đức 78%",
    "xã Hưng Long 14,3%",
    "xã Xuân Dục 3,5%",
    "phường Bần Yên Nhân 81,67%",
    "xã Hưng Long 82,71%",
    "xã Xuân Dục 79,17%",
    "phường Minh Đức 77,92%",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    with running_services(Path(tmp_path_factory.mktemp("my-hao"))) as stack:
        events = generate_events(load_scenario(), 2023)
        post_events(events, stack.url("intake"), batch_size=1000)
        asyncio.run(_caught_up(stack))
        yield stack


async def _caught_up(stack: ServiceSet) -> None:
    """Wait until the aggregator has applied everything the intake acknowledged."""
    ends = await end_offsets(KAFKA, stack.topic)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": stack.schema})
    try:

        async def applied() -> bool:
            rows = await conn.fetch(
                "SELECT partition, next_offset FROM consumer_positions WHERE topic = $1", stack.topic
            )
            stored = {r["partition"]: r["next_offset"] for r in rows}
            return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)

        await eventually(applied, timeout=180, interval=0.2, what="every event applied")
    finally:
        await conn.close()


@pytest.fixture
async def client(services: ServiceSet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.url("reporting"), headers=READ, timeout=30) as http:
        yield http


async def report(client: httpx.AsyncClient, fmt: str, **params: str) -> httpx.Response:
    response = await client.get("/v1/reports/annual", params={**REPORT, "format": fmt, **params})
    assert response.status_code == 200, response.text
    return response


def assert_seed_figures(text: str) -> None:
    missing = [phrase for phrase in SEED_TEXT + SEED_SECTION_9 if phrase not in text]
    assert not missing, f"not in the report: {missing}"
    assert "7,47%" not in text and "7.47%" not in text


async def test_markdown_report_prints_the_seed_figures(client: httpx.AsyncClient) -> None:
    response = await report(client, "md")
    assert response.headers["content-type"].startswith("text/markdown")
    text = response.text
    assert_seed_figures(text)
    assert "## 4.1." in text and "## 4.4." in text and "## 9." in text
    assert "không gồm các đơn vị trực thuộc" in text, "the report states its scope"
    assert "| 6 | Phường Minh Đức | 450 | 97,8% (440/450) |" in text


async def test_report_section_10_is_the_decision_766_index_of_the_year(client: httpx.AsyncClient) -> None:
    text = (await report(client, "md")).text
    section = text[text.index("## 10. Chỉ số phục vụ người dân, doanh nghiệp") :]
    window = {"unit": REPORT["unit"], "from": "2023-01-01", "to": REPORT["to"]}
    response = await client.get("/v1/index766", params=window)
    assert response.status_code == 200, response.text
    index = response.json()
    total = f"{format_points(index['score'])} điểm trên {format_points(index['computable_points'])} điểm"
    assert f"{total} tính được" in section
    for group in index["groups"]:
        for c in group["components"]:
            if c["computed"]:
                counts = f"{format_count(c['numerator'])}/{format_count(c['denominator'])}"
                assert f"| {c['code']} | {c['name']} | {counts} |" in section, c
    expected = "; ".join(
        f"{place}. {in_sentence(rank['name'])} {format_points(rank['score'])} điểm"
        for place, rank in enumerate(index["ranking"], start=1)
    )
    assert index["ranking"] and f"Xếp hạng các đơn vị trực thuộc: {expected}." in section


async def test_html_report_prints_the_seed_figures(client: httpx.AsyncClient) -> None:
    response = await report(client, "html")
    assert response.headers["content-type"].startswith("text/html")
    assert_seed_figures(response.text)
    assert '<html lang="vi">' in response.text and "<table>" in response.text


async def test_docx_report_opens_and_prints_the_seed_figures(client: httpx.AsyncClient) -> None:
    response = await report(client, "docx")
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert response.headers["content-disposition"] == 'attachment; filename="bao-cao-my-hao-2023.docx"'
    document = Document(io.BytesIO(response.content))
    text = "\n".join(p.text for p in document.paragraphs)
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    assert_seed_figures(text)
    assert "97,8% (440/450)" in cells and "Phường Minh Đức" in cells


async def test_docx_report_converts_with_libreoffice(
    client: httpx.AsyncClient, tmp_path_factory: pytest.TempPathFactory
) -> None:
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.skip("libreoffice is not installed: only the python-docx check runs")
    folder = tmp_path_factory.mktemp("docx")
    source = folder / "report.docx"
    source.write_bytes((await report(client, "docx")).content)
    command = [office, "--headless", "--convert-to", "pdf", "--outdir", str(folder), str(source)]
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True, timeout=180)
    assert (folder / "report.pdf").stat().st_size > 0


async def test_report_defaults_to_the_whole_year_and_scope_can_widen(client: httpx.AsyncClient) -> None:
    whole_year = (await client.get("/v1/reports/annual", params={"unit": "my-hao", "year": "2023"})).text
    assert "đến ngày 31/12/2023" in whole_year
    subtree = (await report(client, "md", scope="subtree")).text
    expected = (
        await client.get(
            "/v1/indicators", params={"unit": "my-hao", "from": "2023-01-01", "to": "2023-11-27", "scope": "subtree"}
        )
    ).json()
    assert f"đã tiếp nhận: {format_count(expected['dossiers']['received'])} hồ sơ" in subtree
    assert "và tất cả các đơn vị trực thuộc" in subtree


# ---- the dashboard in a real browser --------------------------------------------------------


@pytest.fixture(scope="module")
def browser_available() -> None:
    require_browser()


async def test_dashboard_shows_the_figures_and_changes_live(
    browser_available: None, client: httpx.AsyncClient, services: ServiceSet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.async_api import expect

    snapshot: dict[str, Any] = (await client.get("/v1/snapshot", params={"unit": "my-hao", "year": "2023"})).json()
    d, docs = snapshot["dossiers"], snapshot["documents"]
    expected_cards = {
        "#fig-received": format_count(d["received"]),
        "#fig-received-online": format_count(d["received_online"]),
        "#fig-received-direct": format_count(d["received_direct"]),
        "#fig-on-time-rate": percent(d["resolved_on_time"], d["resolved"]),
        "#fig-in-progress": format_count(d["in_progress"]),
        "#fig-overdue": format_count(d["in_progress_overdue"]),
        "#fig-components-rate": percent(d["components_digitized"], d["digitization_required"]),
        "#fig-results-rate": percent(d["results_digitized"], d["result_digitization_required"]),
        "#fig-paid-rate": percent(d["paid_online"], d["fee_required"]),
        "#fig-leader-rate": percent(docs["signed_by_leader"], docs["signed_by_organization"], 2),
    }
    breakdown = (
        await client.get(
            "/v1/indicators/breakdown", params={"unit": "my-hao", "from": "2023-01-01", "to": "2023-12-31"}
        )
    ).json()
    minh_duc = next(r for r in breakdown["rows"] if r["unit"] == "my-hao.minh-duc")

    async with open_dashboard(services.url("reporting"), "unit=my-hao&year=2023") as (page, loads, failed):
        for selector, text in expected_cards.items():
            await expect(page.locator(selector)).to_have_text(text, timeout=15_000)
        await expect(page.locator("#unit-name")).to_have_text("Thị xã Mỹ Hào")
        row = page.locator('#breakdown tr[data-unit="my-hao.minh-duc"] td')
        await expect(row.nth(1)).to_have_text(format_count(minh_duc["dossiers"]["received"]), timeout=15_000)
        await expect(page.locator("#chart-units rect")).to_have_count(2 * 13)
        await expect(page.locator("#chart-months rect")).to_have_count(2 * 12)
        await expect(page.locator("#live-text")).to_have_text("Trực tuyến")
        index = await index766(client)
        await expect(page.locator("#fig-766-total")).to_have_text(total_text(index), timeout=15_000)
        await expect(page.locator("#chart-766-trend circle")).to_have_count(12, timeout=15_000)
        await page.screenshot(path=str(tmp_path_factory.mktemp("screens") / "dashboard-1920x1080.png"))

        events = [received("my-hao.minh-duc", in_2023(day)) for day in (4, 5, 6)]
        async with httpx.AsyncClient(timeout=30) as intake:
            await post(intake, services.url("intake"), events)
        await expect(page.locator("#fig-received")).to_have_text(format_count(d["received"] + 3), timeout=5_000)
        await expect(row.nth(1)).to_have_text(format_count(minh_duc["dossiers"]["received"] + 3), timeout=5_000)
        assert loads == ["load"], "the page changed without a reload"
        assert not failed, failed
        await expect(page.locator(".big.flash")).to_have_count(0)  # changed figures flash briefly
        screens = os.environ.get("DASHBOARD_SCREENSHOT")
        shot = Path(screens) if screens else tmp_path_factory.mktemp("screens") / "dashboard-live.png"
        await page.screenshot(path=str(shot), animations="disabled")  # the flash's fade ended


YEAR_2023 = {"unit": "my-hao", "from": "2023-01-01", "to": "2023-12-31"}


async def index766(client: httpx.AsyncClient, **window: str) -> dict[str, Any]:
    response = await client.get("/v1/index766", params={**YEAR_2023, **window})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def total_text(index: dict[str, Any]) -> str:
    return f"{format_points(index['score'])} / {format_points(index['computable_points'])} điểm"


async def test_dashboard_shows_the_766_index_and_its_ranking_change_live(
    browser_available: None, client: httpx.AsyncClient, services: ServiceSet
) -> None:
    """The 766 total, groups (numerators and denominators on hover), ranking and trend are the API's,
    and follow it when events push the best-ranked child down, without a reload."""
    from playwright.async_api import Page, expect

    before = await index766(client)
    march = {"from": "2023-03-01", "to": "2023-03-31"}
    march_before = await index766(client, **march)

    async def shows(page: Page, index: dict[str, Any], timeout: int) -> None:
        await expect(page.locator("#fig-766-total")).to_have_text(total_text(index), timeout=timeout)
        rows = page.locator("#ranking766 tbody tr")
        await expect(rows).to_have_count(len(index["ranking"]))
        for position, child in enumerate(index["ranking"]):
            await expect(rows.nth(position)).to_have_attribute("data-unit", child["unit"], timeout=timeout)
            await expect(rows.nth(position).locator("td.score")).to_have_text(format_points(child["score"]))
        progress = next(g for g in index["groups"] if g["code"] == "TDGQ")
        on_time = progress["components"][0]
        hover = page.locator('#chart-766-groups g[data-group="TDGQ"] title')
        await expect(hover).to_contain_text(
            f"2.1 {on_time['name']}: {format_count(on_time['numerator'])}/{format_count(on_time['denominator'])}"
        )
        await expect(hover).to_contain_text(f"{format_points(on_time['score'])}/20 điểm")

    async with open_dashboard(services.url("reporting"), "unit=my-hao&year=2023") as (page, loads, failed):
        await expect(page.locator("#index766 h2")).to_have_text("Chỉ số phục vụ người dân, doanh nghiệp (QĐ 766)")
        await shows(page, before, timeout=15_000)
        trend = page.locator('#chart-766-trend circle[data-month="2023-03"] title')
        await expect(trend).to_have_text(f"Tháng 3/2023: {total_text(march_before)}", timeout=15_000)

        # Overdue dossiers received directly and never synchronised: progress, online share,
        # synchronisation, digitization and satisfaction of the best-ranked child all drop.
        best = before["ranking"][0]["unit"]
        received_before = await received_count(client, best)
        events = [
            received(best, in_2023(day), due_at=in_2023(day + 1), channel="direct")
            for day in range(1, 26)
            for _ in range(2)
        ]
        async with httpx.AsyncClient(timeout=30) as intake:
            await post(intake, services.url("intake"), events)

        async def all_applied() -> bool:
            return await received_count(client, best) == received_before + len(events)

        await eventually(all_applied, timeout=30, what="the posted dossiers counted")
        after = await index766(client)
        assert after["score"] < before["score"]
        assert after["ranking"][0]["unit"] != best, "the best-ranked child is no longer first"
        await shows(page, after, timeout=10_000)
        march_after = await index766(client, **march)
        assert march_after["score"] < march_before["score"]
        # The trend refreshes at most every 15 s, and a round is twelve /v1/index766 calls (one
        # per month), each several hundred milliseconds on a loaded 2-core machine: up to a
        # throttle period, a round on the last change's data and the round already running.
        await expect(trend).to_have_text(f"Tháng 3/2023: {total_text(march_after)}", timeout=60_000)
        assert loads == ["load"], "the page changed without a reload"
        assert not failed, failed


async def received_count(client: httpx.AsyncClient, unit: str) -> int:
    response = await client.get("/v1/indicators", params={**YEAR_2023, "unit": unit})
    assert response.status_code == 200, response.text
    count: int = response.json()["dossiers"]["received"]
    return count
