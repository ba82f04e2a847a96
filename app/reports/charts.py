"""Charts for the reports, drawn by matplotlib (Agg, no pyplot: safe in worker threads) in the project's CJK font
and returned as PNG bytes, which both the DOCX and the PDF embed.

The same figures give the same bytes: no timestamps or software versions in the PNG, fixed size, dpi and margins
(no ``tight_layout``, which costs a second drawing pass). A chart is kept for the same figures (regenerating a
report draws nothing again), so the arguments are tuples."""

from __future__ import annotations

import io
import threading
from functools import cache, lru_cache
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from app.documents.fonts import FAMILY, cjk_font

DPI = 150
BLUE, GREY, RED = "#2F5597", "#A6A6A6", "#C00000"
_lock = threading.Lock()  # matplotlib's font cache and rcParams are process-wide


@cache
def _font() -> str:
    """Add the CJK TrueType font to matplotlib's font manager (else Chinese shows as boxes, with warnings)."""
    font_manager.fontManager.addfont(str(cjk_font()))
    return FAMILY


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _style(ax: object) -> None:
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # type: ignore[attr-defined]  # cases are whole
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]
    ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    return out.getvalue()


def _rc() -> Any:
    return {"font.family": [_font()], "font.size": 9, "axes.unicode_minus": False}


@lru_cache(maxsize=16)
def daily_counts(days: tuple[str, ...], current: tuple[int, ...], title: str) -> bytes:
    """Cases accepted each day of the month (bars), labelled by day of the month."""
    with _lock, matplotlib.rc_context(_rc()):
        fig = _figure(6.4, 2.6)
        ax = fig.add_subplot()
        xs = list(range(len(days)))
        ax.bar(xs, current, color=BLUE, width=0.7)
        ax.set_xticks(xs, [d[-2:].lstrip("0") for d in days], fontsize=7)
        ax.set_ylabel("件")
        ax.set_title(title, fontsize=10)
        _style(ax)
        fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.12)
        return _png(fig)


@lru_cache(maxsize=16)
def compare_bars(labels: tuple[str, ...], current: tuple[int, ...], previous: tuple[int, ...], *, title: str,
                 current_label: str, previous_label: str) -> bytes:
    """Horizontal bars, this period against the one before, largest first from the top."""
    with _lock, matplotlib.rc_context(_rc()):
        height = max(2.2, 0.36 * len(labels) + 0.9)
        fig = _figure(6.4, height)
        ax = fig.add_subplot()
        ys = list(range(len(labels)))[::-1]
        ax.barh([y + 0.2 for y in ys], current, height=0.38, color=BLUE, label=current_label)
        ax.barh([y - 0.2 for y in ys], previous, height=0.38, color=GREY, label=previous_label)
        ax.set_yticks(ys, list(labels))
        for y, v in zip(ys, current, strict=True):
            ax.text(v, y + 0.2, f" {v}", va="center", fontsize=7)
        ax.set_xlabel("件")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_axisbelow(True)
        fig.subplots_adjust(left=0.16, right=0.95, top=1 - 0.35 / height, bottom=0.55 / height)
        return _png(fig)


@lru_cache(maxsize=16)
def bars(labels: tuple[str, ...], values: tuple[int, ...], *, title: str, highlight: tuple[str, ...] = ()) -> bytes:
    """Vertical bars with their values on top (districts)."""
    with _lock, matplotlib.rc_context(_rc()):
        fig = _figure(6.4, 2.8)
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        ax.bar(xs, values, color=[RED if label in highlight else BLUE for label in labels], width=0.6)
        ax.set_xticks(xs, list(labels), fontsize=8)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=7)
        ax.set_ylabel("件")
        ax.set_title(title, fontsize=10)
        _style(ax)
        fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.12)
        return _png(fig)
