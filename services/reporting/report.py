"""The annual report sections 4.1, 4.4, 9 and the Decision 766 index in Vietnamese, from the
figures of a unit, its children and its index (pure: no I/O).

`build_annual_report` turns figures into a small document model; `to_markdown` and `to_html`
render it (DOCX lives in report_docx.py). Wording follows the report officers file today
(UBND thị xã Mỹ Hào, 11/2023); figures come from the same queries as the API.

Percent precision follows that report: 1 decimal (81,1%), except where it prints 2: the leader
signature share (50,21%) and, in section 9, results digitized and satisfaction (77,92%).
Percentages are rounded half up from the exact counts, trailing zeros dropped (100%, 78%), by the
one formatter every surface uses (shared.vietnamese.format_share).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from shared.timezone import LOCAL_TZ, end_of_day, local_day
from shared.units import Scope
from shared.vietnamese import NO_FIGURE, format_count, format_points, format_share

PERCENT_DECIMALS = 1
LEADER_SIGNATURE_DECIMALS = 2
SECTION9_DECIMALS = {"online": 1, "results_digitized": 2, "paid_online": 1, "satisfaction": 2}

# Prefixes of unit names that name the kind of unit; the reports write them in lower case
# inside a sentence ("Bộ phận Một cửa thị xã Mỹ Hào", "phường Minh Đức 97,8%").
_KIND_PREFIXES = ("Thành phố", "Thị xã", "Thị trấn", "Đặc khu", "Tỉnh", "Huyện", "Quận", "Phường", "Xã")


# ---- document model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """A paragraph of a section; level 0 starts with "-", level 1 with "+" (as officers write)."""

    text: str
    level: int = 0


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Item | Table


@dataclass(frozen=True)
class Section:
    number: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    preamble: tuple[str, ...]
    sections: tuple[Section, ...]
    notes: tuple[str, ...]
    filename_stem: str


# ---- Vietnamese formats ---------------------------------------------------------------------


def day_text(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def in_sentence(name: str) -> str:
    """'Thị xã Mỹ Hào' -> 'thị xã Mỹ Hào' (the kind of unit in lower case, the proper name kept)."""
    for prefix in _KIND_PREFIXES:
        if name.startswith(prefix + " "):
            return prefix.lower() + name[len(prefix) :]
    return name


def level_label(name: str) -> str:
    """'Thị xã Mỹ Hào' -> 'riêng cấp thị xã': the unit's own figures, without its children."""
    for prefix in _KIND_PREFIXES:
        if name.startswith(prefix + " "):
            return f"riêng cấp {prefix.lower()}"
    return "riêng đơn vị"


def as_of_text(as_of: datetime) -> str:
    day = local_day(as_of)
    if as_of == end_of_day(day):
        return f"hết ngày {day_text(day)}"
    return f"{as_of.astimezone(LOCAL_TZ):%H:%M} ngày {day_text(day)}"


# ---- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildFigures:
    code: str
    name: str
    dossiers: Mapping[str, int]
    split: bool = False  # a unit split among several successors, counted in this unit (contract §1.1)

    @property
    def label(self) -> str:
        return f"{self.name} (đã chia tách)" if self.split else self.name


@dataclass(frozen=True)
class ReportInput:
    unit: str
    unit_name: str
    year: int
    scope: Scope
    start: date
    end: date
    as_of: datetime
    generated_at: datetime
    dossiers: Mapping[str, int]
    documents: Mapping[str, int]
    procedures: Mapping[str, int]
    children: Sequence[ChildFigures]
    # The rendered index and its ranking, as in a GET /v1/index766 body (without the period).
    index766: Mapping[str, Any] | None = None
    # Names of the ended units whose events of the period count in these figures (contract §1.1).
    predecessors: Sequence[str] = ()


def build_annual_report(data: ReportInput) -> Report:
    phrase = in_sentence(data.unit_name)
    if data.scope == "self":
        scope_text = (
            f"Phạm vi số liệu mục 4.1 và 4.4: hồ sơ, văn bản và thủ tục của chính {phrase} "
            "(không gồm các đơn vị trực thuộc)."
        )
    else:
        scope_text = f"Phạm vi số liệu mục 4.1 và 4.4: {phrase} và tất cả các đơn vị trực thuộc."
    preamble = (
        f"Đơn vị: {data.unit_name}",
        f"Kỳ số liệu: từ ngày {day_text(data.start)} đến ngày {day_text(data.end)}; "
        f"số liệu tính đến {as_of_text(data.as_of)}.",
        scope_text,
        *(
            (f"Số liệu gồm cả số liệu của các đơn vị trước sắp xếp: {', '.join(data.predecessors)}.",)
            if data.predecessors
            else ()
        ),
        "Mục 9: số liệu của mỗi đơn vị trực thuộc gồm cả các đơn vị cấp dưới của đơn vị đó.",
    )
    generated = data.generated_at.astimezone(LOCAL_TZ)
    notes = (
        f"Số liệu tổng hợp tự động từ hệ thống tthc-pulse lúc {generated:%H:%M} ngày {day_text(generated.date())}.",
        "Tỷ lệ được làm tròn đến 1 chữ số thập phân; tỷ lệ văn bản ký số của lãnh đạo, tỷ lệ số hóa kết quả "
        "và mức độ hài lòng ở mục 9 làm tròn đến 2 chữ số thập phân.",
    )
    return Report(
        title="BÁO CÁO",
        subtitle=f"Kết quả giải quyết thủ tục hành chính và ứng dụng công nghệ thông tin năm {data.year}",
        preamble=preamble,
        sections=(
            _section_documents(data),
            _section_dossiers(data, phrase),
            _section_children(data),
            *((_section_index766(data, data.index766),) if data.index766 is not None else ()),
        ),
        notes=notes,
        filename_stem=f"bao-cao-{data.unit}-{data.year}",
    )


def _section_documents(data: ReportInput) -> Section:
    d = data.documents
    registered = d["incoming"] + d["outgoing"]
    items = [
        Item(
            f"Từ {day_text(data.start)} - {day_text(data.end)} có {format_count(d['incoming'])} văn bản đến, "
            f"{format_count(d['outgoing'])} văn bản đi được cập nhật, xử lý trên phần mềm Quản lý văn bản "
            "và điều hành (không tính văn bản mật)"
            + (
                f"; trong đó {format_count(d['electronic'])}/{format_count(registered)} văn bản điện tử "
                f"(đạt {format_share(d['electronic'], registered)})."
                if registered
                else "."
            )
        ),
        Item(
            "Tổng số văn bản ký số của lãnh đạo/tổng số văn bản ký số của cơ quan: "
            f"{format_count(d['signed_by_leader'])}/{format_count(d['signed_by_organization'])}"
            + (
                f", đạt {format_share(d['signed_by_leader'], d['signed_by_organization'], LEADER_SIGNATURE_DECIMALS)};"
                if d["signed_by_organization"]
                else ";"
            )
        ),
    ]
    return Section("4.1", "Ứng dụng CNTT trong nội bộ các cơ quan Nhà nước", tuple(items))


def _received_sentence(data: ReportInput, phrase: str) -> str:
    d = data.dossiers
    office = f"Bộ phận Một cửa {phrase}" + (" và các đơn vị trực thuộc" if data.scope == "subtree" else "")
    channels = [f"Số hồ sơ tiếp nhận trực tuyến: {format_count(d['received_online'])} hồ sơ"]
    channels.append(f"số hồ sơ tiếp nhận trực tiếp: {format_count(d['received_direct'])} hồ sơ")
    if d["received_postal"]:
        channels.append(f"số hồ sơ tiếp nhận qua dịch vụ bưu chính: {format_count(d['received_postal'])} hồ sơ")
    received = f"{office} đã tiếp nhận: {format_count(d['received'])} hồ sơ (trong đó: {'; '.join(channels)})."
    if d["withdrawn"]:
        received += f" Số hồ sơ đã rút: {format_count(d['withdrawn'])} hồ sơ."
    return received


def _resolved_sentence(d: Mapping[str, int]) -> str:
    if d["resolved"]:
        return (
            f" Trong đó: Số hồ sơ đã giải quyết trước hạn/đúng hạn là {format_count(d['resolved_on_time'])} hồ sơ/"
            f"{format_count(d['resolved'])} hồ sơ (đạt {format_share(d['resolved_on_time'], d['resolved'])}); "
            + (
                f"số hồ sơ đã giải quyết quá hạn là {format_count(d['resolved_late'])} hồ sơ."
                if d["resolved_late"]
                else "không có hồ sơ đã giải quyết quá hạn."
            )
        )
    return " Chưa có hồ sơ đã giải quyết."


def _pending_sentence(d: Mapping[str, int]) -> str:
    in_time = d["in_progress"] - d["in_progress_overdue"]
    if d["in_progress"]:
        return (
            f" Số hồ sơ đang giải quyết đúng hạn là {format_count(in_time)} hồ sơ/{format_count(d['in_progress'])} "
            f"hồ sơ (đạt {format_share(in_time, d['in_progress'])}); "
            + (
                f"số hồ sơ đang giải quyết quá hạn là {format_count(d['in_progress_overdue'])} hồ sơ."
                if d["in_progress_overdue"]
                else "không có hồ sơ đang giải quyết quá hạn."
            )
        )
    return " Không có hồ sơ đang giải quyết."


def _section_dossiers(data: ReportInput, phrase: str) -> Section:
    p, d = data.procedures, data.dossiers
    items = [
        Item(
            "Tổng số thủ tục hành chính được đưa vào phần mềm một cửa điện tử là "
            f"{format_count(p['total'])} thủ tục, trong đó tổng số dịch vụ công cung cấp thông tin là "
            f"{format_count(p['info'])} dịch vụ; tổng số dịch vụ công trực tuyến một phần là "
            f"{format_count(p['partial_online'])} dịch vụ; tổng số dịch vụ công trực tuyến toàn trình là "
            f"{format_count(p['full_online'])} dịch vụ;"
        ),
        Item(
            f"Tình hình giải quyết TTHC năm {data.year} (từ ngày {day_text(data.start)} đến ngày {day_text(data.end)}):"
        ),
        Item(_received_sentence(data, phrase) + _resolved_sentence(d) + _pending_sentence(d), 1),
        Item(
            _ratio_sentence(
                "Thực hiện số hoá đầy đủ thành phần hồ sơ",
                d["components_digitized"],
                d["digitization_required"],
                "hồ sơ",
                "tổng số hồ sơ tiếp nhận phải số hóa",
            )
            + "; "
            + _ratio_sentence(
                "số hóa kết quả giải quyết TTHC",
                d["results_digitized"],
                d["result_digitization_required"],
                "kết quả",
                "tổng số hồ sơ đã giải quyết phải số hóa kết quả",
            )
            + ".",
            1,
        ),
        Item(
            _ratio_sentence(
                "Thanh toán trực tuyến",
                d["paid_online"],
                d["fee_required"],
                "hồ sơ",
                "tổng số hồ sơ tiếp nhận phải thanh toán phí, lệ phí",
                colon=False,
            )
            + ".",
            1,
        ),
    ]
    return Section("4.4", "Kết quả giải quyết TTHC", tuple(items))


def _ratio_sentence(label: str, numerator: int, denominator: int, noun: str, of: str, *, colon: bool = True) -> str:
    if denominator == 0:
        return f"{label}: không có hồ sơ thuộc diện này"
    sep = ": " if colon else " "
    return (
        f"{label}{sep}{format_count(numerator)} {noun}/{format_count(denominator)} {of} "
        f"(đạt {format_share(numerator, denominator)})"
    )


# Section 9: (rate name, label in the prose and table, numerator, denominator).
_SECTION9 = (
    ("online", "Tỷ lệ hồ sơ được tiếp nhận, giải quyết trực tuyến", "received_online", "received"),
    ("results_digitized", "Số hóa kết quả giải quyết TTHC", "results_digitized", "result_digitization_required"),
    ("paid_online", "Tỷ lệ hồ sơ thanh toán trực tuyến", "paid_online", "fee_required"),
    ("satisfaction", "Mức độ hài lòng của người dân, doanh nghiệp", "ratings_satisfied", "ratings"),
)


def _section_children(data: ReportInput) -> Section:
    title = "Kết quả chuyển đổi số nổi bật"
    if not data.children:
        return Section("9", title, (Item(f"{data.unit_name} không có đơn vị trực thuộc."),))
    items: list[Block] = []
    for rate, label, num, den in _SECTION9:
        decimals = SECTION9_DECIMALS[rate]
        ranked = sorted(
            (c for c in data.children if c.dossiers[den]),
            key=lambda c: -Fraction(c.dossiers[num], c.dossiers[den]),
        )
        if ranked:
            parts = "; ".join(
                f"{in_sentence(c.label)} {format_share(c.dossiers[num], c.dossiers[den], decimals)}" for c in ranked
            )
            items.append(Item(f"{label}: {parts};"))
        else:
            items.append(Item(f"{label}: chưa có số liệu;"))
    rows = []
    for index, child in enumerate(data.children, start=1):
        cells = [str(index), child.label, format_count(child.dossiers["received"])]
        for rate, _label, num, den in _SECTION9:
            n, m = child.dossiers[num], child.dossiers[den]
            share = format_share(n, m, SECTION9_DECIMALS[rate])
            cells.append(f"{share} ({format_count(n)}/{format_count(m)})" if m else NO_FIGURE)
        rows.append(tuple(cells))
    items.append(
        Table(
            caption=f"Kết quả theo đơn vị trực thuộc {in_sentence(data.unit_name)} "
            f"(từ ngày {day_text(data.start)} đến ngày {day_text(data.end)})",
            headers=(
                "STT",
                "Đơn vị",
                "Hồ sơ tiếp nhận",
                "Tiếp nhận trực tuyến",
                "Số hóa kết quả",
                "Thanh toán trực tuyến",
                "Hài lòng",
            ),
            rows=tuple(rows),
        )
    )
    return Section("9", title, tuple(items))


def _section_index766(data: ReportInput, index: Mapping[str, Any]) -> Section:
    """The unit's Decision 766 components for the year, with their counts, and the children's ranking."""
    phrase = in_sentence(data.unit_name)
    total = sum(group["max_points"] for group in index["groups"])
    period = f"từ ngày {day_text(data.start)} đến ngày {day_text(data.end)}"
    items: list[Block] = [
        Item(
            f"Điểm Chỉ số phục vụ người dân, doanh nghiệp của {phrase} (tính cả các đơn vị trực thuộc) "
            f"{period}: {format_points(index['score'])} điểm "
            f"trên {format_points(index['computable_points'])} điểm tính được từ số liệu của hệ thống "
            f"(tổng điểm bộ chỉ số {format_points(total)}; công thức {index['formula']})."
        )
    ]
    rows = []
    for group in index["groups"]:
        for component in group["components"]:
            if component["computed"]:
                counts = f"{format_count(component['numerator'])}/{format_count(component['denominator'])}"
                ratio = format_share(component["numerator"], component["denominator"])
                score = f"{format_points(component['score'])}/{format_points(component['max_points'])}"
            else:
                counts, ratio, score = NO_FIGURE, NO_FIGURE, f"chưa tính/{format_points(component['max_points'])}"
            rows.append((component["code"], component["name"], counts, ratio, score))
    items.append(
        Table(
            caption=f"Các chỉ tiêu thành phần của {phrase} ({period})",
            headers=("Mã", "Chỉ tiêu", "Tử số/Mẫu số", "Tỷ lệ", "Điểm"),
            rows=tuple(rows),
        )
    )
    if index["ranking"]:
        ranking = "; ".join(
            f"{place}. {in_sentence(rank['name'])} {format_points(rank['score'])} điểm"
            for place, rank in enumerate(index["ranking"], start=1)
        )
        items.append(Item(f"Xếp hạng các đơn vị trực thuộc: {ranking}."))
    return Section("10", "Chỉ số phục vụ người dân, doanh nghiệp (Quyết định 766/QĐ-TTg)", tuple(items))


# ---- renderers ------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("|", "\\|")


def to_markdown(report: Report) -> str:
    lines = [f"# {report.title}", "", f"**{_md_escape(report.subtitle)}**", ""]
    for line in report.preamble:
        lines += [_md_escape(line), ""]
    for section in report.sections:
        lines += [f"## {section.number}. {_md_escape(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Item):
                lines.append(("- " if block.level == 0 else "    + ") + _md_escape(block.text))
            else:
                lines += ["", f"*{_md_escape(block.caption)}*", ""]
                lines.append("| " + " | ".join(_md_escape(h) for h in block.headers) + " |")
                lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(block.headers))) + "|")
                lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in block.rows]
        lines.append("")
    lines += ["---", ""]
    lines += [f"_{_md_escape(note)}_  " for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"


# The report's only style, inline so the page stands alone when saved; its CSP allows it by hash.
HTML_STYLE = """
body { font-family: "Times New Roman", "Noto Serif", serif; font-size: 13pt; line-height: 1.45;
       max-width: 60em; margin: 2em auto; padding: 0 1.5em; color: #111; }
h1 { text-align: center; font-size: 15pt; margin-bottom: 0.2em; }
.subtitle { text-align: center; font-weight: bold; margin-top: 0; }
h2 { font-size: 13pt; margin-top: 1.4em; }
ul { list-style: none; padding-left: 0; margin: 0.3em 0; }
ul li { text-indent: 1.5em; margin: 0.35em 0; text-align: justify; }
ul.level1 li { text-indent: 1.5em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0 1em; font-size: 12pt; }
caption { font-style: italic; margin-bottom: 0.3em; }
th, td { border: 1px solid #555; padding: 0.25em 0.45em; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
footer { margin-top: 2em; font-size: 11pt; font-style: italic; color: #333; }
@media print { body { margin: 0; max-width: none; } }
"""


def to_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="vi"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.subtitle)}</title><style>{HTML_STYLE}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f'<p class="subtitle">{e(report.subtitle)}</p>',
    ]
    parts += [f"<p>{e(line)}</p>" for line in report.preamble]
    for section in report.sections:
        parts.append(f"<section><h2>{e(section.number)}. {e(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Item):
                marker = "-" if block.level == 0 else "+"
                parts.append(f'<ul class="level{block.level}"><li>{marker} {e(block.text)}</li></ul>')
            else:
                parts.append(f"<table><caption>{e(block.caption)}</caption><thead><tr>")
                parts += [f"<th>{e(h)}</th>" for h in block.headers]
                parts.append("</tr></thead><tbody>")
                for row in block.rows:
                    cells = [
                        f"<td>{e(c)}</td>" if i == 1 else f'<td class="num">{e(c)}</td>' for i, c in enumerate(row)
                    ]
                    parts.append("<tr>" + "".join(cells) + "</tr>")
                parts.append("</tbody></table>")
        parts.append("</section>")
    parts.append("<footer>" + "".join(f"<p>{e(note)}</p>" for note in report.notes) + "</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
