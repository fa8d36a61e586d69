"""The dashboard's pure part (static/dashboard-core.js) run by node: its Vietnamese formats agree with
the reports', and the Decision 766 panel's texts, ranks, trend months and axis from API bodies."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.reporting.api_docs import index766_example
from shared.vietnamese import format_count
from shared.vietnamese import format_share as percent

CORE = Path(__file__).resolve().parents[2] / "services" / "reporting" / "static" / "dashboard-core.js"
# One node process for the module (a start costs about a second): it reads a JSON line
# [[function, args...], ...] and answers a JSON line with the results in the same order.
RUNNER = """
const core = require(process.argv[1]);
require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const calls = JSON.parse(line);
  process.stdout.write(JSON.stringify(calls.map(([name, ...args]) => core[name](...args))) + "\\n");
});
"""


@pytest.fixture(scope="module")
def node() -> Iterator[subprocess.Popen[str]]:
    executable = shutil.which("node")
    if executable is None:
        pytest.skip("node is not installed: the dashboard's pure part is checked by the browser test only")
    process = subprocess.Popen(
        [executable, "-e", RUNNER, str(CORE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture
def call(node: subprocess.Popen[str]) -> Callable[..., list[Any]]:
    def run(*calls: tuple[Any, ...]) -> list[Any]:
        assert node.stdin is not None and node.stdout is not None
        node.stdin.write(json.dumps([list(c) for c in calls]) + "\n")
        node.stdin.flush()
        line = node.stdout.readline()
        assert line, f"node stopped (exit code {node.poll()})"
        results: list[Any] = json.loads(line)
        return results

    return run


@pytest.fixture
def one(call: Callable[..., list[Any]]) -> Callable[..., Any]:
    return lambda name, *args: call((name, *args))[0]


COUNTS = [0, 7, 999, 1000, 1763, 22439, 1_000_000, -1234]
FRACTIONS = [(1402, 1729), (1089, 1319), (4223, 8411), (158, 606), (1, 8), (1, 3), (0, 5), (5, 5), (3, 0), (1, 1000)]


def test_counts_and_percents_are_the_reports(call: Callable[..., list[Any]]) -> None:
    assert call(*(("fmtCount", n) for n in COUNTS)) == [format_count(n) for n in COUNTS]
    for decimals in (1, 2):
        got = call(*(("fmtPercent", n, d, decimals) for n, d in FRACTIONS))
        assert got == [percent(n, d, decimals) for n, d in FRACTIONS]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (61.3, "61,3"),
        (19.44, "19,44"),
        (70, "70"),
        (0, "0"),
        (0.07, "0,07"),
        (0.1 + 0.2, "0,3"),  # binary noise is not a third decimal
        (43.88, "43,88"),
        (1234.5, "1.234,5"),
        (None, "–"),
    ],
)
def test_points(value: float | None, text: str, one: Callable[..., Any]) -> None:
    assert one("fmtPoints", value) == text


@pytest.mark.parametrize(
    ("ratio", "text"), [(0.9718, "97,2%"), (1.0, "100%"), (0.0, "0%"), (0.8105, "81,1%"), (0.0004, "0%"), (None, "–")]
)
def test_ratios(ratio: float | None, text: str, one: Callable[..., Any]) -> None:
    assert one("fmtRatio", ratio) == text


def test_equal_scores_share_a_rank(one: Callable[..., Any]) -> None:
    ranking = [
        {"unit": "a", "name": "A", "score": 50.0},
        {"unit": "b", "name": "B", "score": 45.5},
        {"unit": "c", "name": "C", "score": 45.5},
        {"unit": "d", "name": "D", "score": 40.0},
    ]
    assert [row["rank"] for row in one("rankRows", ranking)] == [1, 2, 2, 4]
    assert one("rankRows", []) == []


def month(year: int, number: int, begun: bool) -> dict[str, Any]:
    last = {2: 28, 4: 30, 6: 30, 9: 30, 11: 30}.get(number, 31)
    return {
        "month": f"{year}-{number:02d}",
        "from": f"{year}-{number:02d}-01",
        "to": f"{year}-{number:02d}-{last}",
        "dossiers": {"received": 3 if begun else None},
    }


def test_the_trend_asks_for_the_months_begun_only(one: Callable[..., Any]) -> None:
    monthly = {"months": [month(2026, m, begun=m <= 11) for m in range(1, 13)]}
    months = one("trendMonths", monthly)
    assert [m["month"] for m in months] == list(range(1, 12))
    assert months[1] == {"month": 2, "key": "2026-02", "from": "2026-02-01", "to": "2026-02-28"}
    assert one("trendMonths", {"months": [month(2026, m, begun=False) for m in range(1, 13)]}) == []


@pytest.mark.parametrize(
    ("scores", "axis"),
    [
        ([41.51, 37.03, 42.65], {"lo": 35, "hi": 45}),
        ([70, 70], {"lo": 65, "hi": 70}),  # never above the computable points
        ([0, 0.5], {"lo": 0, "hi": 5}),  # never below 0
        ([40.0], {"lo": 35, "hi": 45}),
        ([], {"lo": 0, "hi": 100}),
    ],
)
def test_trend_axis(scores: list[float], axis: dict[str, int], one: Callable[..., Any]) -> None:
    points = [{"month": i + 1, "score": s, "computable": 70} for i, s in enumerate(scores)]
    assert one("trendAxis", points) == axis


def test_the_panel_texts_of_a_body(call: Callable[..., list[Any]]) -> None:
    body = index766_example()
    total, count, groups = call(("totalText", body), ("computedCount", body), ("groupRows", body))
    score = f"{body['score']:.2f}".rstrip("0").rstrip(".").replace(".", ",")
    assert total == f"{score} / 70 điểm"
    assert count == {"computed": 13, "all": 21}
    by_code = {g["code"]: g for g in groups}
    assert [g["code"] for g in groups] == ["CKMB", "TDGQ", "ONLINE", "TTTT", "MDSH", "MDHL"]
    assert sum(g["computable"] for g in groups) == body["computable_points"]
    assert {code: (g["computable"], g["max"]) for code, g in by_code.items()} == {
        "CKMB": (6, 18),
        "TDGQ": (20, 20),
        "ONLINE": (12, 12),
        "TTTT": (10, 10),
        "MDSH": (16, 22),
        "MDHL": (6, 18),
    }
    progress = by_code["TDGQ"]["title"].split("\n")
    assert progress == [
        "Tiến độ giải quyết: 20/20 điểm tính được (tối đa 20)",
        "2.1 Hồ sơ giải quyết trước hạn, đúng hạn: 1.763/1.763 = 100% → 20/20 điểm",
    ]
    publicity = by_code["CKMB"]["title"]
    assert "1.1 Công bố, công khai thủ tục hành chính đúng hạn: chưa có dữ liệu, không tính điểm (6 điểm)" in publicity
    online = by_code["ONLINE"]["title"]
    assert "3.3 Hồ sơ tiếp nhận trực tuyến: 1.704/1.763 [1.704/1.763 × 1.700/1.763] = 93,2%" in online


UNITS_AFTER_THE_REFORM = [
    {"code": "33", "name": "Tỉnh Hưng Yên", "parent": None, "valid_from": None, "valid_to": None, "predecessors": [
        {"code": "34", "name": "Tỉnh Thái Bình", "valid_from": None, "valid_to": "2025-07-01", "whole": True},
    ]},
    {"code": "12103", "name": "Phường Mỹ Hào", "parent": "33", "valid_from": "2025-07-01", "valid_to": None,
     "predecessors": []},
]  # fmt: skip


def test_the_tree_picker_offers_today_and_the_day_before_each_reorganization(one: Callable[..., Any]) -> None:
    choices = one("treeChoices", UNITS_AFTER_THE_REFORM, None)
    assert choices == [
        {"value": "", "label": "Hiện nay", "selected": True},
        {"value": "2025-06-30", "label": "Trước 01/07/2025", "selected": False},
    ]
    chosen = one("treeChoices", UNITS_AFTER_THE_REFORM, "2025-06-30")
    assert [c["value"] for c in chosen if c["selected"]] == ["2025-06-30"]
    other = one("treeChoices", UNITS_AFTER_THE_REFORM, "2024-01-01")
    assert other[-1] == {"value": "2024-01-01", "label": "Ngày 01/01/2024", "selected": True}


def test_no_tree_picker_for_a_registry_without_dates(one: Callable[..., Any]) -> None:
    units = [{"code": "my-hao", "name": "Thị xã Mỹ Hào", "parent": None, "valid_from": None, "valid_to": None,
              "predecessors": []}]  # fmt: skip
    assert one("treeChoices", units, None) == []
