"""What every part of report.html is built from: the stylesheet, number formats, tables and notes.

Every value that came from a document or a file name goes through ``html.escape``: sample texts
are web pages, and a rejected page is exactly the kind that carries ``<script>``. Table cells are
passed in already escaped (they often hold formatted numbers or markup of our own).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.report_plots import DROPPED_COLOR, KEPT_COLOR

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; } .note { color: #666; font-style: italic; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; display: block; overflow-x: auto; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; vertical-align: top; }
th { background: #f4f6f8; } td.l, th.l { text-align: left; } tr.total td { font-weight: 600; }
tr.warn td, td.warn, span.warn { background: #fff2e8; } .warnings li { color: #a0461f; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: .5rem; font-size: 12px; max-height: 18em; overflow: auto; }
details { margin: .3rem 0; } summary { cursor: pointer; }
details.source { border: 1px solid #ddd; border-radius: 6px; padding: .3rem .8rem; margin: .6rem 0; }
details.source > summary { font-size: 1.1rem; font-weight: 600; }
.kept { color: %s; } .dropped { color: %s; } .chart { display: block; margin: .5rem 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: .8rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; min-width: 9rem; }
.card b { display: block; font-size: 1.4rem; } .filters select { margin-right: .8rem; }
.sample .meta { color: #555; font-size: 12px; }
""" % (KEPT_COLOR, DROPPED_COLOR)


def num(value: Any, digits: int = 3) -> str:
    """Thousands separators for counts, ``digits`` significant figures for fractions, "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"


def big(value: float | None) -> str:
    """A count too large to read digit by digit (tokens, FLOPs): 1.40T, 2.05e+23."""
    if value is None:
        return "–"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if abs(value) >= size and abs(value) < 1e15:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}" if abs(value) >= 1e15 else num(value)


def nbytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def pct(part: float | None, whole: float | None) -> str:
    return "–" if part is None or not whole else f"{part / whole:.1%}"


def table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1,
          row_classes: Sequence[str] | None = None) -> str:
    """``rows`` hold already-escaped HTML; the first ``left`` columns are left-aligned."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def numbers(table_html: str, label: str = "exact numbers") -> str:
    """A chart's table of exact numbers, folded under it."""
    return f"<details><summary>{escape(label)}</summary>{table_html}</details>"


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def section(section_id: str, title: str, body: str, level: int = 3) -> str:
    return f'<section id="{escape(section_id)}"><h{level}>{escape(title)}</h{level}>{body}</section>'
