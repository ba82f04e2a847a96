"""A report as a list of blocks (title, headings, paragraphs, tables, charts), rendered twice from the same blocks:
as DOCX in the GB/T 9704 manner and as PDF (``app.documents.pdf``), so both say the same words and numbers.

DOCX (``app.documents.docx``): A4, margins 37/35/28/26 mm, body 三号仿宋 (16 pt) at a fixed 28 pt line pitch with
a two-character first-line indent, headings 黑体 (一、) and 楷体 (（一）), title 二号黑体, page numbers at the foot.
Every run and style names its East-Asian font in ``w:eastAsia``; Word and WPS show 仿宋/黑体/楷体 where installed
and substitute otherwise (the font table names WenQuanYi Micro Hei as the alternate).

Both formats are deterministic: document dates are the report's own date (never the time it was made), no
random ids, ReportLab's invariant mode, and the DOCX zip written with fixed member times; so the same blocks give
the same bytes (the archive relies on that)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.shared import Mm, Pt
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, KeepTogether, Spacer, TableStyle

from app.documents import docx as wd
from app.documents import pdf
from app.documents.fonts import DOCX_HEADING, DOCX_SUBHEADING

BODY_PT, TABLE_PT, CAPTION_PT = 16.0, 10.5, 12.0
LINE_PT = 28  # GB/T 9704: 22 lines on the page
INDENT_PT = 2 * BODY_PT  # 首行缩进两字
CONTENT_MM = 210 - 28 - 26


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1  # 1: 一、 (黑体); 2: （一） (楷体)


@dataclass(frozen=True)
class Para:
    text: str
    small: bool = False  # notes (说明): smaller, not indented


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths_mm: Sequence[float | None] | None = None  # None entries share the rest of the width
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str
    width_mm: float = CONTENT_MM


Block = Heading | Para | Table | Figure


@dataclass
class Document:
    title: str
    subtitle: str
    date: datetime  # the document's own date (properties of both files): the end of the period it covers
    author: str
    subject: str = ""
    keywords: str = ""
    footer: str = ""
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def text(self) -> str:
        """All the words of the document, for tests and search (tables row by row, cells tab-separated)."""
        out = [self.title, self.subtitle]
        for b in self.blocks:
            if isinstance(b, Heading | Para):
                out.append(b.text)
            elif isinstance(b, Table):
                out += ["\t".join(b.header), *("\t".join(r) for r in b.rows)]
            else:
                out.append(b.caption)
        return "\n".join(out)


# --- DOCX --------------------------------------------------------------------------------------------------


def _pitch(paragraph: Any) -> None:
    """GB/T 9704 body text: a fixed line pitch (22 lines a page) and a two-character first-line indent."""
    fmt = paragraph.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(LINE_PT)
    fmt.first_line_indent = Pt(INDENT_PT)


def to_docx(document: Document) -> bytes:
    doc = wd.new_document(title=document.title + document.subtitle, author=document.author,
                          subject=document.subject, body_size=BODY_PT)
    wd.add_title(doc, document.title, subtitle=document.subtitle)
    for block in document.blocks:
        if isinstance(block, Heading):
            heading = wd.add_heading(doc, block.text, level=block.level)
            heading.paragraph_format.keep_with_next = True
        elif isinstance(block, Para):
            if block.small:
                wd.add_paragraph(doc, block.text, size=CAPTION_PT)
            else:
                _pitch(wd.add_paragraph(doc, block.text, align="justify"))
        elif isinstance(block, Table):
            if block.caption:
                cap = wd.add_paragraph(doc, block.caption, font=DOCX_HEADING, size=CAPTION_PT, align="center")
                cap.paragraph_format.keep_with_next = True
            widths = None if block.widths_mm is None else [None if w is None else w / 10 for w in block.widths_mm]
            wd.add_table(doc, list(block.header), [list(r) for r in block.rows], widths_cm=widths, size=TABLE_PT)
            doc.add_paragraph()  # a blank line after the table (Word joins adjacent tables otherwise)
        else:
            doc.add_picture(io.BytesIO(block.png), width=Mm(block.width_mm))
            doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
            doc.paragraphs[-1].paragraph_format.keep_with_next = True
            wd.add_paragraph(doc, block.caption, font=DOCX_SUBHEADING, size=CAPTION_PT, align="center")
    wd.set_footer(doc, document.footer)
    props = doc.core_properties
    props.keywords, props.comments, props.category = document.keywords, "", "报告"
    # W3CDTF in UTC (python-docx writes a trailing Z): the instant the document's own day began in Beijing
    props.created = props.modified = props.last_printed = document.date.astimezone(UTC).replace(tzinfo=None)
    props.revision = 1
    return _fixed_zip(wd.to_bytes(doc), document.date)


def _fixed_zip(data: bytes, when: datetime) -> bytes:
    """The same zip with every member dated ``when`` (python-docx stamps them with the current time)."""
    stamp = (when.year, when.month, when.day, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=stamp)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------------------------


class _DocumentDate(Flowable):
    """Takes no room; sets the PDF's creation and modification dates to the document's own date."""

    def __init__(self, when: datetime) -> None:
        super().__init__()
        self.stamp = when.strftime("D:%Y%m%d%H%M%S+08'00'")

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.canv.setDateFormatter(lambda *_: self.stamp)


def _pdf_styles() -> dict[str, ParagraphStyle]:
    st = pdf.styles()
    return {
        "body": ParagraphStyle("report-body", parent=st.body, firstLineIndent=2 * st.body.fontSize,
                               alignment=4, spaceAfter=4),
        "h1": ParagraphStyle("report-h1", parent=st.heading, keepWithNext=1),  # never last on a page
        "sub": ParagraphStyle("report-sub", parent=st.heading, fontSize=12, leading=18, spaceBefore=6,
                              keepWithNext=1),
        "caption": ParagraphStyle("report-caption", parent=st.small, alignment=TA_CENTER, spaceAfter=8),
        "table-caption": ParagraphStyle("report-tcap", parent=st.body, fontSize=10, alignment=TA_CENTER,
                                        spaceBefore=4, spaceAfter=3),
    }


def to_pdf(document: Document) -> bytes:
    st = _pdf_styles()
    story: list[Flowable] = [_DocumentDate(document.date), *pdf.title(document.title, document.subtitle)]
    for block in document.blocks:
        if isinstance(block, Heading):
            story.append(pdf.paragraph(block.text, st["h1"] if block.level == 1 else st["sub"]))
        elif isinstance(block, Para):
            story.append(pdf.paragraph(block.text, pdf.styles().small if block.small else st["body"]))
        elif isinstance(block, Table):
            widths = None if block.widths_mm is None else [None if w is None else w * pdf.mm
                                                           for w in block.widths_mm]
            table = pdf.table(list(block.header), [list(r) for r in block.rows], widths=widths, font_size=9)
            # Table's own default cell font is Helvetica, which the PDF would then name without embedding it
            table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), pdf.FONT)]))
            if block.caption:  # the caption stays with the table's first rows
                story.append(KeepTogether([pdf.paragraph(block.caption, st["table-caption"]), table]))
            else:
                story.append(table)
            story.append(Spacer(1, 3 * pdf.mm))
        else:
            story.append(KeepTogether([pdf.image(block.png, width=block.width_mm * pdf.mm),
                                       pdf.paragraph(block.caption, st["caption"])]))
    return pdf.build(story, title=document.title + document.subtitle, footer=document.footer,
                     author=document.author, subject=document.subject, invariant=True)
