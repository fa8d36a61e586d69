"""The annual report as a Word document (python-docx), built in memory from the report model."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from services.reporting.report import Item, Report

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Administrative documents are set in Times New Roman 13-14 pt on A4 (Decree 30/2020/ND-CP).
_FONT = "Times New Roman"
_SIZE = Pt(13)


def to_docx(report: Report) -> bytes:
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin, section.right_margin = Cm(3), Cm(2)
    section.top_margin, section.bottom_margin = Cm(2), Cm(2)
    normal = document.styles["Normal"]
    normal.font.name = _FONT
    normal.font.size = _SIZE
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), _FONT)  # Word picks the font per script

    core = document.core_properties
    core.title = report.subtitle
    core.language = "vi-VN"

    _centered(document, report.title, bold=True, size=Pt(14))
    _centered(document, report.subtitle, bold=True)
    for line in report.preamble:
        document.add_paragraph(line)
    for part in report.sections:
        heading = document.add_paragraph()
        heading.paragraph_format.space_before = Pt(10)
        heading.add_run(f"{part.number}. {part.title}").bold = True
        for block in part.blocks:
            if isinstance(block, Item):
                paragraph = document.add_paragraph(("- " if block.level == 0 else "+ ") + block.text)
                paragraph.paragraph_format.first_line_indent = Cm(1)
                paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
                continue
            caption = document.add_paragraph()
            caption.add_run(block.caption).italic = True
            table = document.add_table(rows=1, cols=len(block.headers))
            table.style = "Table Grid"
            table.alignment = WD_TABLE_ALIGNMENT.CENTER
            for cell, text in zip(table.rows[0].cells, block.headers, strict=True):
                cell.text = ""
                run = cell.paragraphs[0].add_run(text)
                run.bold = True
                run.font.size = Pt(11)
            for row in block.rows:
                cells = table.add_row().cells
                for index, (cell, text) in enumerate(zip(cells, row, strict=True)):
                    cell.text = ""
                    paragraph = cell.paragraphs[0]
                    paragraph.add_run(text).font.size = Pt(11)
                    if index != 1:
                        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for note in report.notes:
        paragraph = document.add_paragraph()
        run = paragraph.add_run(note)
        run.italic = True
        run.font.size = Pt(11)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _centered(document: object, text: str, *, bold: bool, size: Pt | None = None) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = paragraph.add_run(text)
    run.bold = bold
    if size is not None:
        run.font.size = size
