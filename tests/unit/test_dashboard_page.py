"""The dashboard shell (pure, no I/O): configuration, escaping, only local assets."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from services.reporting.dashboard import render_dashboard
from services.reporting.indicators import year_window
from shared.timezone import LOCAL_TZ

NOW = datetime(2025, 6, 10, 10, 0, tzinfo=LOCAL_TZ)


def page(**changes: object) -> str:
    values: dict[str, object] = {
        "unit": "my-hao",
        "unit_name": "Thị xã Mỹ Hào",
        "year": 2023,
        "current_year": 2025,
        "window": year_window(2023, NOW),
        "token": "dev-read-token",
    }
    return render_dashboard(**(values | changes))  # type: ignore[arg-type]


def config_of(html: str) -> dict[str, object]:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html, re.S)
    assert match
    loaded: dict[str, object] = json.loads(match.group(1))
    return loaded


def test_configuration_and_labels() -> None:
    html = page()
    config = config_of(html)
    assert config == {
        "unit": "my-hao",
        "unit_name": "Thị xã Mỹ Hào",
        "year": 2023,
        "from": "2023-01-01",
        "to": "2023-12-31",
        "token": "dev-read-token",
        "own_level": "riêng cấp thị xã",
        "tree": None,
    }
    assert '<html lang="vi">' in html and "Từ 01/01/2023 đến 31/12/2023" in html
    assert '<option value="2023" selected>2023</option>' in html and '<option value="2025">' in html
    assert "$" not in html, "every placeholder filled"


def test_the_page_reads_the_chosen_tree() -> None:
    assert config_of(page(tree=date(2025, 6, 30)))["tree"] == "2025-06-30"


def test_no_token_outside_development() -> None:
    assert config_of(page(token=None))["token"] is None


def test_names_cannot_break_out() -> None:
    html = page(unit_name="</script><b>x</b>")
    assert "<b>x</b>" not in html
    assert config_of(html)["unit_name"] == "</script><b>x</b>"


def test_every_asset_is_local() -> None:
    sources = re.findall(r'(?:src|href)="([^"]+)"', page())
    assert sources and all(s.startswith("/assets/") or s == "data:," for s in sources), sources


def test_the_pure_part_loads_first() -> None:
    scripts = re.findall(r'<script src="([^"]+)" defer></script>', page())
    assert scripts == ["/assets/dashboard-core.js", "/assets/dashboard.js"]


def test_the_766_panel_and_ranking_are_labelled_in_vietnamese() -> None:
    html = page()
    for label in (
        "Chỉ số phục vụ người dân, doanh nghiệp (QĐ 766)",
        "Xếp hạng đơn vị trực thuộc",
        "Xu hướng theo tháng năm <span>2023</span>",
    ):
        assert label in html, label
    for element in ('id="fig-766-total"', 'id="chart-766-groups"', 'id="chart-766-trend"', 'id="ranking766"'):
        assert element in html, element
