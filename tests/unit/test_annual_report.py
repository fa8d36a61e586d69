"""The annual report text from figures: Vietnamese formats, wording, renderers (pure, no I/O)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from docx import Document

from services.reporting.indicators import DOSSIER_FIGURES
from services.reporting.report import (
    ChildFigures,
    Item,
    ReportInput,
    Table,
    build_annual_report,
    in_sentence,
    level_label,
    to_html,
    to_markdown,
)
from services.reporting.report_docx import to_docx
from shared.timezone import end_of_day
from shared.vietnamese import format_share as percent

DOSSIERS = dict.fromkeys(DOSSIER_FIGURES, 0)
TOWN = DOSSIERS | {
    "received": 1763, "received_online": 1704, "received_direct": 59, "resolved": 1722, "resolved_on_time": 1722,
    "in_progress": 41, "digitization_required": 1729, "components_digitized": 1402,
    "result_digitization_required": 1319, "results_digitized": 1089, "fee_required": 606, "paid_online": 158,
}  # fmt: skip
DOCUMENTS = {"incoming": 8623, "outgoing": 13816, "electronic": 22439, "signed_by_organization": 8411,
             "signed_by_leader": 4223}  # fmt: skip
PROCEDURES = {"total": 226, "info": 20, "partial_online": 76, "full_online": 130}
PILOTS = {
    "Phường Minh Đức": (450, 440, 159, 91, 41, 32, 77, 60),
    "Xã Xuân Dục": (390, 350, 333, 233, 57, 2, 72, 57),
    "Xã Hưng Long": (210, 174, 99, 39, 49, 7, 133, 110),
    "Phường Bần Yên Nhân": (200, 150, 77, 51, 63, 57, 60, 49),
}


def child(name: str, figures: tuple[int, ...]) -> ChildFigures:
    keys = ("received", "received_online", "result_digitization_required", "results_digitized", "fee_required",
            "paid_online", "ratings", "ratings_satisfied")  # fmt: skip
    return ChildFigures(name.lower().replace(" ", "-"), name, DOSSIERS | dict(zip(keys, figures, strict=True)))


def my_hao(**changes: Any) -> ReportInput:
    values: dict[str, Any] = {
        "unit": "my-hao",
        "unit_name": "Thị xã Mỹ Hào",
        "year": 2023,
        "scope": "self",
        "start": date(2023, 1, 1),
        "end": date(2023, 11, 27),
        "as_of": end_of_day(date(2023, 11, 27)),
        "generated_at": datetime(2023, 11, 28, 2, 0, tzinfo=UTC),
        "dossiers": TOWN,
        "documents": DOCUMENTS,
        "procedures": PROCEDURES,
        "children": [child(name, figures) for name, figures in PILOTS.items()],
    }
    return ReportInput(**(values | changes))


@pytest.mark.parametrize(
    ("numerator", "denominator", "decimals", "text"),
    [
        (1402, 1729, 1, "81,1%"),
        (1089, 1319, 1, "82,6%"),
        (158, 606, 1, "26,1%"),
        (1722, 1722, 1, "100%"),
        (4223, 8411, 2, "50,21%"),
        (60, 77, 2, "77,92%"),
        (32, 41, 1, "78%"),
        (2, 57, 1, "3,5%"),
        (1, 8, 2, "12,5%"),
        (1, 200, 0, "1%"),  # 0,5 rounds half up
        (1, 3, 1, "33,3%"),
        (0, 5, 1, "0%"),
        (3, 0, 1, "–"),
        (123456, 100, 1, "123.456%"),
    ],
)
def test_percent(numerator: int, denominator: int, decimals: int, text: str) -> None:
    assert percent(numerator, denominator, decimals) == text


@pytest.mark.parametrize(
    ("name", "phrase", "level"),
    [
        ("Thị xã Mỹ Hào", "thị xã Mỹ Hào", "riêng cấp thị xã"),
        ("Phường Minh Đức", "phường Minh Đức", "riêng cấp phường"),
        ("Xã Xuân Dục", "xã Xuân Dục", "riêng cấp xã"),
        ("Tỉnh Hưng Yên", "tỉnh Hưng Yên", "riêng cấp tỉnh"),
        ("Thành phố Hưng Yên", "thành phố Hưng Yên", "riêng cấp thành phố"),
        ("Xãhội", "Xãhội", "riêng đơn vị"),
    ],
)
def test_unit_names_in_a_sentence(name: str, phrase: str, level: str) -> None:
    assert in_sentence(name) == phrase
    assert level_label(name) == level


def test_sections_41_44_9_print_the_seed_figures() -> None:
    text = to_markdown(build_annual_report(my_hao()))
    for phrase in (
        "Từ 01/01/2023 - 27/11/2023 có 8.623 văn bản đến, 13.816 văn bản đi",
        "4.223/8.411, đạt 50,21%",
        "là 226 thủ tục",
        "Bộ phận Một cửa thị xã Mỹ Hào đã tiếp nhận: 1.763 hồ sơ (trong đó: Số hồ sơ tiếp nhận trực tuyến: "
        "1.704 hồ sơ; số hồ sơ tiếp nhận trực tiếp: 59 hồ sơ)",
        "1.722 hồ sơ/1.722 hồ sơ (đạt 100%); không có hồ sơ đã giải quyết quá hạn",
        "41 hồ sơ/41 hồ sơ (đạt 100%); không có hồ sơ đang giải quyết quá hạn",
        "1.402 hồ sơ/1.729 tổng số hồ sơ tiếp nhận phải số hóa (đạt 81,1%)",
        "1.089 kết quả/1.319 tổng số hồ sơ đã giải quyết phải số hóa kết quả (đạt 82,6%)",
        "Thanh toán trực tuyến 158 hồ sơ/606 tổng số hồ sơ tiếp nhận phải thanh toán phí, lệ phí (đạt 26,1%)",
        "phường Minh Đức 97,8%; xã Xuân Dục 89,7%; xã Hưng Long 82,9%; phường Bần Yên Nhân 75%;",
        "xã Xuân Dục 69,97%; phường Bần Yên Nhân 66,23%; phường Minh Đức 57,23%; xã Hưng Long 39,39%;",
        "phường Bần Yên Nhân 90,5%; phường Minh Đức 78%; xã Hưng Long 14,3%; xã Xuân Dục 3,5%;",
        "xã Hưng Long 82,71%; phường Bần Yên Nhân 81,67%; xã Xuân Dục 79,17%; phường Minh Đức 77,92%;",
        "không gồm các đơn vị trực thuộc",
        "số liệu tính đến hết ngày 27/11/2023",
    ):
        assert phrase in text, phrase


def test_late_overdue_postal_and_withdrawn_are_spelled_out() -> None:
    dossiers = TOWN | {"resolved_on_time": 1700, "resolved_late": 22, "in_progress_overdue": 3,
                       "received_postal": 4, "withdrawn": 2}  # fmt: skip
    text = to_markdown(build_annual_report(my_hao(dossiers=dossiers, scope="subtree")))
    assert "1.700 hồ sơ/1.722 hồ sơ (đạt 98,7%); số hồ sơ đã giải quyết quá hạn là 22 hồ sơ." in text
    assert "38 hồ sơ/41 hồ sơ (đạt 92,7%); số hồ sơ đang giải quyết quá hạn là 3 hồ sơ." in text
    assert "số hồ sơ tiếp nhận qua dịch vụ bưu chính: 4 hồ sơ" in text
    assert "Số hồ sơ đã rút: 2 hồ sơ." in text
    assert "thị xã Mỹ Hào và các đơn vị trực thuộc đã tiếp nhận" in text
    assert "và tất cả các đơn vị trực thuộc" in text


def test_no_figures_no_division() -> None:
    empty = {k: 0 for k in DOCUMENTS}
    report = build_annual_report(
        my_hao(dossiers=DOSSIERS, documents=empty, procedures=dict.fromkeys(PROCEDURES, 0), children=[])
    )
    text = to_markdown(report)
    assert "Chưa có hồ sơ đã giải quyết." in text and "Không có hồ sơ đang giải quyết." in text
    assert "không có hồ sơ thuộc diện này" in text
    assert "Thị xã Mỹ Hào không có đơn vị trực thuộc." in text
    assert "%" not in text.split("## 4.1.")[1].split("---")[0].replace("đạt 100%", "")


def test_section_9_table_lists_every_child_in_tree_order() -> None:
    report = build_annual_report(my_hao())
    table = next(b for b in report.sections[2].blocks if isinstance(b, Table))
    assert [row[1] for row in table.rows] == list(PILOTS)
    assert table.rows[0][2:] == ("450", "97,8% (440/450)", "57,23% (91/159)", "78% (32/41)", "77,92% (60/77)")
    assert all(isinstance(b, Item) for b in report.sections[1].blocks)


def test_html_is_a_standalone_escaped_document() -> None:
    odd = my_hao(unit_name="Xã <A&B>", children=[child("Phường <i>", PILOTS["Xã Xuân Dục"])])
    page = to_html(build_annual_report(odd))
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<i>" not in page and "&lt;i&gt;" in page and "Xã &lt;A&amp;B&gt;" in page
    assert "http" not in page, "no external asset"


def test_markdown_escapes_table_pipes() -> None:
    text = to_markdown(build_annual_report(my_hao(children=[child("Xã A|B", PILOTS["Xã Xuân Dục"])])))
    assert "| Xã A\\|B |" in text


def test_docx_opens_with_the_figures() -> None:
    document = Document(io.BytesIO(to_docx(build_annual_report(my_hao()))))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "4.223/8.411, đạt 50,21%" in text and "1.763 hồ sơ" in text
    assert document.tables[0].rows[1].cells[1].text == "Phường Minh Đức"
    assert document.core_properties.language == "vi-VN"


def index766_body() -> dict[str, Any]:
    """A /v1/index766 body of two groups (one component without input), two children."""
    return {
        "formula": "766-2025.1",
        "score": 14.25,
        "computable_points": 20.0,
        "groups": [
            {"code": "CKMB", "name": "Công khai, minh bạch", "max_points": 18.0, "score": 8.25, "components": [
                {"code": "1.1", "name": "Công bố, công khai TTHC", "max_points": 10.0, "numerator": 33,
                 "denominator": 40, "ratio": 0.825, "score": 8.25, "computed": True},
                {"code": "1.2", "name": "Phản ánh, kiến nghị", "max_points": 8.0, "numerator": None,
                 "denominator": None, "ratio": None, "score": None, "computed": False},
            ]},
            {"code": "TDGQ", "name": "Tiến độ giải quyết", "max_points": 10.0, "score": 6.0, "components": [
                {"code": "2.1", "name": "Giải quyết trước hạn, đúng hạn", "max_points": 10.0, "numerator": 1722,
                 "denominator": 2870, "ratio": 0.6, "score": 6.0, "computed": True},
            ]},
        ],
        "ranking": [
            {"unit": "xuan-duc", "name": "Xã Xuân Dục", "score": 15.5},
            {"unit": "minh-duc", "name": "Phường Minh Đức", "score": 12.0},
        ],
    }  # fmt: skip


def test_section_10_gives_the_index_components_with_their_counts_and_the_ranking() -> None:
    report = build_annual_report(my_hao(index766=index766_body()))
    section = report.sections[3]
    assert (section.number, section.title) == ("10", "Chỉ số phục vụ người dân, doanh nghiệp (Quyết định 766/QĐ-TTg)")
    first = section.blocks[0]
    assert isinstance(first, Item)
    assert "14,25 điểm trên 20 điểm tính được" in first.text and "tổng điểm bộ chỉ số 28" in first.text
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert table.rows == (
        ("1.1", "Công bố, công khai TTHC", "33/40", "82,5%", "8,25/10"),
        ("1.2", "Phản ánh, kiến nghị", "–", "–", "chưa tính/8"),
        ("2.1", "Giải quyết trước hạn, đúng hạn", "1.722/2.870", "60%", "6/10"),
    )
    last = section.blocks[-1]
    assert isinstance(last, Item)
    assert last.text == "Xếp hạng các đơn vị trực thuộc: 1. xã Xuân Dục 15,5 điểm; 2. phường Minh Đức 12 điểm."
    assert "10. Chỉ số phục vụ người dân" in to_markdown(report)


def test_without_an_index_the_report_has_no_section_10() -> None:
    assert [s.number for s in build_annual_report(my_hao()).sections] == ["4.1", "4.4", "9"]
