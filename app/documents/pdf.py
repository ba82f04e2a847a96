"""PDF building blocks (ReportLab platypus) for every document the product prints: case and transcript exports,
the monthly and daily reports. A document is a list of flowables ("the story") made with the helpers here and
turned into bytes by ``build``::

    from app.documents import pdf

    story = [*pdf.title("12351 职工服务热线 工单", "12351-2026-000123"),
             pdf.key_value_table([("状态", "受理"), ("来电号码", "138****5678")]),
             pdf.heading("诉求摘要"), pdf.paragraph("来电人反映：……"),
             pdf.table(["时间", "内容"], [["2026-11-24 09:30", "受理"]], widths=[40 * pdf.mm, None])]
    data = pdf.build(story, title="工单 12351-2026-000123", footer="12351 职工服务热线 · 工单 12351-2026-000123")

Layout: A4 with GB/T 9704-like margins (top 37 mm, bottom 35 mm, left 28 mm, right 26 mm); every page ends with
a thin rule, the footer text and 第 N 页 / 共 M 页. Text is set in the CJK TrueType font of
``app.documents.fonts`` (WenQuanYi Micro Hei), embedded as a subset, so Chinese shows in every reader and
``pdftotext`` gets it back; digests and times may use ``MONO`` (the same file's monospaced face). Nothing
else is used, so every font the PDF names is embedded.
Paragraph text is plain text: ``&``, ``<`` and ``>`` are escaped here, newlines become line breaks. Strings
given to ``table``/``key_value_table`` become wrapping paragraphs; a flowable is taken as it is.

The font file is parsed once per process (about 0.4 s for the 5 MB TTC); ``register_fonts()`` does it up front
(for a benchmark, or at start-up), after which a one-page case PDF takes a few tens of milliseconds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, TypeAlias
from xml.sax.saxutils import escape as _xml_escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.documents.fonts import FAMILY, cjk_font

__all__ = [
    "FONT", "MARGINS", "MONO", "PAGE_SIZE", "Cell", "Flowable", "Margins", "Paragraph", "ParagraphStyle", "Styles",
    "build", "content_width", "escape", "heading", "image", "key_value_table", "mm", "paragraph", "register_fonts",
    "signature_block", "spacer", "styles", "table", "title",
]

FONT = "HotlineCJK"  # the name the CJK face is registered under in ReportLab (the PDF shows FAMILY's own name)
MONO = "HotlineCJKMono"  # digests (sha256), times: the TTC's monospaced face (WenQuanYi Micro Hei Mono)
PAGE_SIZE = A4
GRID = colors.HexColor("#808080")
KEY_BACKGROUND = colors.HexColor("#F2F2F2")


@dataclass(frozen=True)
class Margins:
    top: float
    bottom: float
    left: float
    right: float


MARGINS = Margins(top=37 * mm, bottom=35 * mm, left=28 * mm, right=26 * mm)  # GB/T 9704: 天头 37, 订口 28

Cell: TypeAlias = "str | Flowable"  # what a table cell may hold: plain text (wrapped) or any flowable


@cache
def register_fonts() -> str:
    """Register the CJK font with ReportLab (once per process; a TTC needs its sub-font index) as ``FONT``, and
    its monospaced face as ``MONO`` (a single-face file: the same face), and return ``FONT``. Bold/italic map
    to the same face (WenQuanYi has none), so ``<b>`` in markup is harmless."""
    path = str(cjk_font())
    pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
    try:
        mono = TTFont(MONO, path, subfontIndex=1)
    except Exception:  # not a collection, or no second face in it
        mono = TTFont(MONO, path, subfontIndex=0)
    pdfmetrics.registerFont(mono)
    for name in (FONT, MONO):
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)
    return FONT


@dataclass(frozen=True)
class Styles:
    """The paragraph styles of every document (sizes in points: 二号 22, 三号 16, 四号 14, 小四 12, 五号 10.5)."""

    title: ParagraphStyle
    subtitle: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    cell: ParagraphStyle
    key: ParagraphStyle
    small: ParagraphStyle
    mono: ParagraphStyle


@cache
def styles() -> Styles:
    font = register_fonts()
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, wordWrap="CJK", alignment=TA_LEFT,
                          spaceAfter=3)
    return Styles(
        title=ParagraphStyle("title", parent=body, fontSize=20, leading=28, alignment=TA_CENTER, spaceAfter=4),
        subtitle=ParagraphStyle("subtitle", parent=body, fontSize=11, leading=16, alignment=TA_CENTER,
                                textColor=colors.HexColor("#333333"), spaceAfter=8),
        heading=ParagraphStyle("heading", parent=body, fontSize=14, leading=20, spaceBefore=10, spaceAfter=4),
        body=body,
        cell=ParagraphStyle("cell", parent=body, fontSize=10, leading=14, spaceAfter=0),
        key=ParagraphStyle("key", parent=body, fontSize=10, leading=14, spaceAfter=0),
        small=ParagraphStyle("small", parent=body, fontSize=9, leading=13, textColor=colors.HexColor("#333333")),
        mono=ParagraphStyle("mono", parent=body, fontName=MONO, fontSize=8.5, leading=13, wordWrap=None,
                            spaceAfter=0),
    )


def content_width() -> float:
    """The width between the side margins, in points (for table column widths)."""
    return PAGE_SIZE[0] - MARGINS.left - MARGINS.right


def escape(text: str) -> str:
    """Plain text as ReportLab paragraph markup: &, <, > escaped, newlines as line breaks."""
    return _xml_escape(text).replace("\n", "<br/>")


def paragraph(text: str, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of plain text (wraps between any two Chinese characters)."""
    return Paragraph(escape(text), style or styles().body)


def title(text: str, subtitle: str | None = None) -> list[Flowable]:
    """The document's title, centred, with an optional line under it (a number, a period)."""
    out: list[Flowable] = [Paragraph(escape(text), styles().title)]
    if subtitle:
        out.append(Paragraph(escape(subtitle), styles().subtitle))
    return out


def heading(text: str) -> Paragraph:
    """A section heading (一、二、… are the caller's to write)."""
    return Paragraph(escape(text), styles().heading)


def spacer(height: float = 4 * mm) -> Spacer:
    return Spacer(1, height)


def image(png: bytes, *, width: float | None = None) -> Image:
    """A picture (a chart rendered to PNG) scaled to ``width`` points (default: the content width)."""
    img = Image(io.BytesIO(png))
    target = width or content_width()
    img.drawHeight = img.drawHeight * target / img.drawWidth
    img.drawWidth = target
    return img


def _cell(value: Cell, style: ParagraphStyle) -> Flowable:
    return Paragraph(escape(value), style) if isinstance(value, str) else value


def _grid(extra: Sequence[tuple[Any, ...]] = ()) -> TableStyle:
    return TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT),  # for plain strings put in cells by hand (else Helvetica)
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        *extra,
    ])


def key_value_table(rows: Sequence[tuple[str, Cell]], *, key_width: float = 28 * mm,
                    columns: int = 1) -> Table:
    """A form: label | value rows, labels shaded. ``columns=2`` puts two pairs on each line (short values)."""
    st = styles()
    cells = [(_cell(k, st.key), _cell(v, st.cell)) for k, v in rows]
    if columns == 2:
        cells += [(_cell("", st.key), _cell("", st.cell))] * (len(cells) % 2)
        data = [[*cells[i], *cells[i + 1]] for i in range(0, len(cells), 2)]
        value_width = (content_width() - 2 * key_width) / 2
        widths = [key_width, value_width, key_width, value_width]
        shade = [("BACKGROUND", (0, 0), (0, -1), KEY_BACKGROUND), ("BACKGROUND", (2, 0), (2, -1), KEY_BACKGROUND)]
    else:
        data = [list(pair) for pair in cells]
        widths = [key_width, content_width() - key_width]
        shade = [("BACKGROUND", (0, 0), (0, -1), KEY_BACKGROUND)]
    return Table(data, colWidths=widths, style=_grid(shade), hAlign="LEFT")


def table(header: Sequence[str], rows: Sequence[Sequence[Cell]], *, widths: Sequence[float | None] | None = None,
          repeat_header: bool = True, font_size: float | None = None) -> Table:
    """A grid with a shaded header row, repeated on every page it runs over. ``widths``: points per column,
    ``None`` entries share what is left of the content width."""
    st = styles()
    cell_style = st.cell if font_size is None else ParagraphStyle(
        "cell-sized", parent=st.cell, fontSize=font_size, leading=font_size * 1.4)
    data = [[_cell(h, cell_style) for h in header]] + [[_cell(v, cell_style) for v in row] for row in rows]
    col_widths: list[float] | None = None
    if widths is not None:
        fixed = sum(w for w in widths if w is not None)
        free = [w for w in widths if w is None]
        share = (content_width() - fixed) / len(free) if free else 0.0
        col_widths = [share if w is None else w for w in widths]
    return Table(data, colWidths=col_widths, repeatRows=1 if repeat_header else 0, hAlign="LEFT",
                 style=_grid([("BACKGROUND", (0, 0), (-1, 0), KEY_BACKGROUND)]))


def signature_block(lines: Sequence[str] = ("承办人签字：", "日期：")) -> KeepTogether:
    """Lines to sign on paper (承办人签字 / 日期 by default), kept together on one page."""
    st = styles()
    data = [[Paragraph(escape(label), st.body), Spacer(1, 1)] for label in lines]
    tbl = Table(data, colWidths=[32 * mm, 70 * mm], rowHeights=[12 * mm] * len(lines), hAlign="RIGHT",
                style=TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT),
                                  ("LINEBELOW", (1, 0), (1, -1), 0.6, colors.black),
                                  ("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    return KeepTogether([spacer(8 * mm), tbl])


class _NumberedCanvas(Canvas):
    """A canvas that holds its pages back until the end, so each footer can say how many pages there are."""

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._draw_footer(total)
            super().showPage()
        super().save()

    def _draw_footer(self, total: int) -> None:
        width = PAGE_SIZE[0]
        y = MARGINS.bottom - 10 * mm
        self.saveState()
        self.setStrokeColor(GRID)
        self.setLineWidth(0.5)
        self.line(MARGINS.left, y + 4 * mm, width - MARGINS.right, y + 4 * mm)
        self.setFont(FONT, 8.5)
        self.setFillColor(colors.HexColor("#333333"))
        if self._footer:
            self.drawString(MARGINS.left, y, self._footer)
        self.drawRightString(width - MARGINS.right, y, f"第 {self._pageNumber} 页 / 共 {total} 页")
        self.restoreState()


def build(story: Sequence[Flowable], *, title: str, footer: str = "", author: str = "12351 职工服务热线",
          subject: str = "", invariant: bool = False) -> bytes:
    """The story laid out on A4 pages as PDF bytes: the font embedded (subset), ``footer`` and page numbers on
    every page, ``title``/``author``/``subject`` in the document's properties. ``invariant``: no creation
    date or random file id, so the same story gives the same bytes (archived reports)."""
    register_fonts()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=PAGE_SIZE, leftMargin=MARGINS.left, rightMargin=MARGINS.right, topMargin=MARGINS.top,
        bottomMargin=MARGINS.bottom, title=title, author=author, subject=subject,
        creator=f"12351 Hotline ({FAMILY})", invariant=1 if invariant else 0, lang="zh-CN",
        initialFontName=FONT, initialFontSize=11,  # else the canvas names Helvetica, a font nobody embeds
    )
    doc.build(list(story), canvasmaker=partial(_NumberedCanvas, footer=footer))  # type: ignore[arg-type]
    return out.getvalue()
