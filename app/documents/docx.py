"""DOCX building blocks (python-docx) for every document the product writes for Word and WPS: case and
transcript exports, the monthly report. Start with ``new_document``, add to it with the helpers here, finish
with ``to_bytes``::

    from app.documents import docx as wd

    doc = wd.new_document(title="工单 12351-2026-000123")
    wd.add_title(doc, "12351 职工服务热线 工单", subtitle="12351-2026-000123")
    wd.add_key_value_table(doc, [("状态", "受理"), ("来电号码", "138****5678")])
    wd.add_heading(doc, "诉求摘要")
    wd.add_paragraph(doc, "来电人反映：……")
    wd.add_table(doc, ["时间", "内容"], [["2026-11-24 09:30", "受理"]], widths_cm=[4, None])
    wd.set_footer(doc, "12351 职工服务热线 · 工单 12351-2026-000123")
    data = wd.to_bytes(doc)

Fonts (the part people get wrong): Word keeps four font slots per run and uses ``w:eastAsia`` for Chinese;
python-docx's ``run.font.name`` only fills the Latin ones, and the default template's theme puts a Japanese
face (ＭＳ 明朝) in the East-Asian slot. Here every style and every run written gets explicit ``w:rFonts``
(ascii/hAnsi = ``LATIN``, eastAsia = 仿宋 for body text, 黑体 for titles and headings, 楷体 on request: see
``app.documents.fonts``) with the theme attributes removed, the document language is zh-CN, and the font table
names WenQuanYi Micro Hei (the free face the project installs) as the alternate of each Chinese face, with
the GB2312 charset, so a reader that lacks 仿宋 substitutes a Chinese face rather than drawing boxes.
Page: A4 with GB/T 9704-like margins (top 37 mm, bottom 35 mm, left 28 mm, right 26 mm).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import docx
from docx.document import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt, RGBColor
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from app.documents.fonts import DOCX_BODY, DOCX_HEADING, DOCX_SUBHEADING, FAMILY

__all__ = [
    "BODY_SIZE", "LATIN", "MONO", "Document", "add_heading", "add_key_value_table", "add_paragraph", "add_run",
    "add_signature_block", "add_table", "add_title", "new_document", "set_font", "set_footer", "to_bytes",
]

LATIN = "Times New Roman"  # digits and Latin letters beside the Chinese (GB/T 9704 practice)
MONO = "Courier New"  # digests (sha256)
BODY_SIZE = 12.0  # 小四; GB/T 9704 letters use 三号 (16 pt): new_document(body_size=16)
_THEME_ATTRS = ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")
_HEADING_STYLES = ("Title", "Title Char", *(f"Heading {n}" for n in range(1, 10)),
                   *(f"Heading {n} Char" for n in range(1, 10)))
_SUBHEADING_STYLES = ("Subtitle", "Subtitle Char")
# The font table's entries for the faces asked for: GB2312 charset (86), WenQuanYi Micro Hei as the alternate.
_CHINESE_FACES = {DOCX_BODY: "modern", DOCX_HEADING: "modern", DOCX_SUBHEADING: "modern"}


def set_font(target: Any, east_asia: str, *, latin: str = LATIN, size: float | None = None,
             bold: bool | None = None) -> None:
    """Set a run's or a style's fonts: ``east_asia`` into ``w:eastAsia`` (what Chinese text is drawn with),
    ``latin`` into ascii/hAnsi/cs, theme fonts removed (they would win over the names); size in points."""
    element = target.element if hasattr(target, "style_id") else target._element  # a style, or a run
    rpr = element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in _THEME_ATTRS:
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:cs"), latin)
    fonts.set(qn("w:eastAsia"), east_asia)
    if size is not None:
        target.font.size = Pt(size)
    if bold is not None:
        target.font.bold = bold


def _set_language(rpr: Any) -> None:
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")


def _defaults(doc: Document, body_size: float) -> None:
    """Document defaults and every style of the template: explicit Chinese fonts, black, zh-CN."""
    styles_el = doc.styles.element
    for fonts in styles_el.iter(qn("w:rFonts")):  # defaults, styles, table styles' parts: no theme fonts left
        for attr in _THEME_ATTRS:
            fonts.attrib.pop(qn(attr), None)
        for attr in ("w:ascii", "w:hAnsi", "w:cs"):
            fonts.set(qn(attr), LATIN)
        fonts.set(qn("w:eastAsia"), DOCX_BODY)
    rpr = styles_el.find(qn("w:docDefaults") + "/" + qn("w:rPrDefault") + "/" + qn("w:rPr"))
    if rpr is not None:
        _set_language(rpr)
    for style in doc.styles:
        if style.type not in (1, 2):  # paragraph and character styles (tables and numbering hold no runs)
            continue
        face = (DOCX_HEADING if style.name in _HEADING_STYLES
                else DOCX_SUBHEADING if style.name in _SUBHEADING_STYLES else DOCX_BODY)
        set_font(style, face)
        if style.font.color is not None and style.font.color.type is not None:
            style.font.color.rgb = RGBColor(0, 0, 0)
    normal = doc.styles["Normal"]
    normal.font.size = Pt(body_size)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing = 1.3
    title = doc.styles["Title"]
    set_font(title, DOCX_HEADING, size=22)
    ppr = title.element.get_or_add_pPr()
    for border in ppr.findall(qn("w:pBdr")):  # the template's blue rule under the title
        ppr.remove(border)
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.paragraph_format.space_after = Pt(6)
    for level, size in ((1, 16.0), (2, 14.0), (3, 12.0)):  # 三号, 四号, 小四
        heading = doc.styles[f"Heading {level}"]
        set_font(heading, DOCX_HEADING if level == 1 else DOCX_SUBHEADING, size=size, bold=level == 1)
        heading.paragraph_format.space_before = Pt(12 if level == 1 else 8)
        heading.paragraph_format.space_after = Pt(4)


def _declare_fonts(doc: Document) -> None:
    """Name 仿宋/黑体/楷体 in the font table with their charset (GB2312) and WenQuanYi Micro Hei as alternate."""
    from lxml import etree

    for rel in doc.part.rels.values():
        if not rel.reltype.endswith("/fontTable"):
            continue
        part = rel.target_part
        root = etree.fromstring(part.blob)
        for face, family in _CHINESE_FACES.items():
            font = etree.SubElement(root, qn("w:font"))
            font.set(qn("w:name"), face)
            for tag, value in (("w:altName", FAMILY), ("w:charset", "86"), ("w:family", family),
                               ("w:pitch", "variable")):
                etree.SubElement(font, qn(tag)).set(qn("w:val"), value)
        part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def new_document(*, title: str = "", author: str = "12351 职工服务热线", subject: str = "",
                 body_size: float = BODY_SIZE, landscape: bool = False) -> Document:
    """An empty A4 document (portrait unless ``landscape``) with GB/T 9704-like margins, 仿宋 body text of
    ``body_size`` points, 黑体 title and headings, Chinese fonts set in every style, and its properties."""
    doc = docx.Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Mm(297), Mm(210)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    section.footer_distance = Mm(20)
    _defaults(doc, body_size)
    _declare_fonts(doc)
    props = doc.core_properties
    props.title, props.author, props.subject, props.language = title, author, subject, "zh-CN"
    props.last_modified_by = author
    return doc


def add_run(paragraph: Paragraph, text: str, *, font: str = DOCX_BODY, latin: str = LATIN,
            size: float | None = None, bold: bool | None = None) -> Run:
    """A run of text with its East-Asian font set (never use ``paragraph.add_run`` bare)."""
    run = paragraph.add_run(text)
    set_font(run, font, latin=latin, size=size, bold=bold)
    return run


def add_paragraph(doc: Document | _Cell, text: str = "", *, font: str = DOCX_BODY, size: float | None = None,
                  bold: bool | None = None, align: str | None = None, style: str | None = None,
                  first_line_indent: bool = False) -> Paragraph:
    """A paragraph of plain text (newlines become line breaks). ``align``: left, center, right or justify;
    ``first_line_indent``: two characters, as Chinese prose is set."""
    paragraph = doc.add_paragraph(style=style)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        run = add_run(paragraph, line, font=font, size=size, bold=bold)
        if i < len(lines) - 1:
            run.add_break()
    if align:
        paragraph.alignment = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER,
                               "right": WD_ALIGN_PARAGRAPH.RIGHT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}[align]
    if first_line_indent:
        paragraph.paragraph_format.first_line_indent = Pt(2 * (size or BODY_SIZE))
    return paragraph


def add_title(doc: Document, text: str, *, subtitle: str | None = None) -> Paragraph:
    """The document's title (Title style: 黑体 二号, centred) and an optional centred line under it."""
    paragraph = doc.add_paragraph(style="Title")
    add_run(paragraph, text, font=DOCX_HEADING)
    if subtitle:
        add_paragraph(doc, subtitle, font=DOCX_SUBHEADING, align="center")
    return paragraph


def add_heading(doc: Document, text: str, level: int = 1) -> Paragraph:
    """A heading (Heading 1: 黑体 三号; 2 and 3: 楷体), in the document outline (Word's navigation pane)."""
    paragraph = doc.add_paragraph(style=f"Heading {level}")
    add_run(paragraph, text, font=DOCX_HEADING if level == 1 else DOCX_SUBHEADING)
    return paragraph


def _fill(cell: _Cell, value: str, *, size: float | None, bold: bool | None = None, font: str = DOCX_BODY,
          latin: str = LATIN) -> None:
    paragraph = cell.paragraphs[0]
    lines = value.split("\n")
    for i, line in enumerate(lines):
        run = add_run(paragraph, line, font=font, latin=latin, size=size, bold=bold)
        if i < len(lines) - 1:
            run.add_break()


def _shade(cell: _Cell, fill: str = "F2F2F2") -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _content_cm(doc: Document) -> float:
    section = doc.sections[-1]
    width = (section.page_width or Mm(210)) - (section.left_margin or 0) - (section.right_margin or 0)
    return float(width) / 360000  # EMU per cm


def _widths(doc: Document, widths_cm: Sequence[float | None] | None, n: int) -> list[float]:
    total = _content_cm(doc)
    given = list(widths_cm) if widths_cm is not None else [None] * n
    fixed = sum(w for w in given if w is not None)
    free = [w for w in given if w is None]
    share = (total - fixed) / len(free) if free else 0.0
    return [share if w is None else w for w in given]


def _set_widths(table: Table, widths: Sequence[float]) -> None:
    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=False):
            cell.width = Cm(width)


def add_key_value_table(doc: Document, rows: Sequence[tuple[str, str]], *, key_cm: float = 3.0,
                        size: float | None = 10.5, mono_keys: Sequence[str] = (), columns: int = 1) -> Table:
    """A form: label | value rows with shaded labels (五号 by default); ``columns=2`` puts two pairs on each
    line (short values). Values of labels in ``mono_keys`` (digests) are set in ``MONO``."""
    pairs = list(rows)
    if columns == 2 and len(pairs) % 2:
        pairs.append(("", ""))
    per_line = 2 if columns == 2 else 1
    table = doc.add_table(rows=len(pairs) // per_line, cols=2 * per_line)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for i, (key, value) in enumerate(pairs):
        cells = table.rows[i // per_line].cells
        key_cell, value_cell = cells[2 * (i % per_line)], cells[2 * (i % per_line) + 1]
        _fill(key_cell, key, size=size, bold=True)
        _shade(key_cell)
        _fill(value_cell, value, size=size, latin=MONO if key in mono_keys else LATIN)
    _set_widths(table, _widths(doc, [key_cm, None] * per_line, 2 * per_line))
    return table


def add_table(doc: Document, header: Sequence[str], rows: Sequence[Sequence[str]], *,
              widths_cm: Sequence[float | None] | None = None, size: float | None = 10.5) -> Table:
    """A grid with a shaded, bold header row that repeats on every page the table runs over. ``widths_cm``:
    centimetres per column, ``None`` entries share the rest of the text width."""
    table = doc.add_table(rows=1 + len(rows), cols=len(header))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    head = table.rows[0]
    tr_pr = head._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    tr_pr.append(repeat)
    for cell, text in zip(head.cells, header, strict=True):
        _fill(cell, text, size=size, bold=True)
        _shade(cell)
    for values, row in zip(rows, table.rows[1:], strict=True):
        for cell, text in zip(row.cells, values, strict=True):
            _fill(cell, text, size=size)
    _set_widths(table, _widths(doc, widths_cm, len(header)))
    return table


def add_signature_block(doc: Document, lines: Sequence[str] = ("承办人签字：", "日期：")) -> None:
    """Lines to sign on paper, right-aligned: each label followed by an underlined blank to write in."""
    doc.add_paragraph()
    for label in lines:
        paragraph = add_paragraph(doc, label, align="right")
        paragraph.paragraph_format.space_before = Pt(18)
        add_run(paragraph, "\u3000" * 12).font.underline = True


def _field(paragraph: Paragraph, instruction: str, *, size: float | None) -> None:
    """A Word field (PAGE, NUMPAGES) that the reader computes: begin, instruction, separate, "1", end."""
    def char(kind: str) -> None:
        element = OxmlElement("w:fldChar")
        element.set(qn("w:fldCharType"), kind)
        add_run(paragraph, "", size=size)._element.append(element)

    char("begin")
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    add_run(paragraph, "", size=size)._element.append(instr)
    char("separate")
    add_run(paragraph, "1", size=size)
    char("end")


def set_footer(doc: Document, text: str = "", *, size: float = 9) -> None:
    """Every page's footer: ``text`` on the left, then 第 N 页 / 共 M 页 (fields Word and WPS fill in)."""
    for section in doc.sections:
        paragraph = section.footer.paragraphs[0]
        for run in paragraph.runs:
            run._element.getparent().remove(run._element)
        if text:
            add_run(paragraph, f"{text}　　", size=size)
        add_run(paragraph, "第 ", size=size)
        _field(paragraph, "PAGE", size=size)
        add_run(paragraph, " 页 / 共 ", size=size)
        _field(paragraph, "NUMPAGES", size=size)
        add_run(paragraph, " 页", size=size)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER


def to_bytes(doc: Document) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
