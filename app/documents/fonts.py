"""The CJK font every generated document uses: a TrueType-outline face installed by the project's setup
(Debian ``fonts-wqy-microhei``, see the Makefile). Noto CJK's CFF outlines are refused by ReportLab and have been
reported blank in some PDF readers, so they are not used. ``HOTLINE_CJK_FONT`` names another TrueType/TTC file.
Nothing is downloaded: a missing font is a clear error naming the package to install."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),  # other distributions
)
FAMILY = "WenQuanYi Micro Hei"  # the family name inside the file (what Word/WPS and PDF readers show)
# What a DOCX asks Word/WPS for (GB/T 9704: 仿宋 body, 黑体/楷体 headings); where those are missing the reader
# substitutes, and our PDF shows the bundled face.
DOCX_BODY, DOCX_HEADING, DOCX_SUBHEADING = "仿宋", "黑体", "楷体"


class FontMissing(RuntimeError):
    """No CJK TrueType font on this machine: documents with Chinese text cannot be made."""


@cache
def cjk_font() -> Path:
    """The path of the CJK TrueType font (the first of HOTLINE_CJK_FONT and CANDIDATES that exists)."""
    configured = os.environ.get("HOTLINE_CJK_FONT")
    for path in ([Path(configured)] if configured else []) + list(CANDIDATES):
        if path.is_file():
            return path
    raise FontMissing("找不到中文字体：请安装 fonts-wqy-microhei（make setup 会安装），"
                      "或用 HOTLINE_CJK_FONT 指定 TrueType 字体文件")
