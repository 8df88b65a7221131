"""Inline SVG charts for the report: no plotting library, nothing fetched when the page is opened.

Three shapes cover the report: horizontal stacked bars (the funnel: kept and dropped per stage),
horizontal bars (languages, reasons, cluster sizes) and overlaid histograms (scores of kept vs
dropped documents). Every label is escaped; every chart is an ``<svg>`` with an id and a title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

KEPT_COLOR = "#3b7dd8"
DROPPED_COLOR = "#d8583b"
SERIES_COLORS = (KEPT_COLOR, DROPPED_COLOR, "#5aa469", "#9b59b6")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _fmt(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f}B"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


def _svg(chart_id: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (f'<svg id="{escape(chart_id)}" class="chart" role="img" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" {_FONT}>'
            f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def stacked_bars(
    chart_id: str, title: str, labels: Sequence[str], parts: Mapping[str, Sequence[float]], *,
    width: int = 760, label_width: int = 190,
) -> str:
    """One bar per label split into named parts (e.g. kept / dropped), with a legend."""
    row, top = 24, 28
    height = top + row * len(labels) + 10
    names = list(parts)
    totals = [sum(parts[n][i] for n in names) for i in range(len(labels))]
    scale = (width - label_width - 90) / max(max(totals, default=0), 1)
    body = _legend(names, label_width)
    for i, label in enumerate(labels):
        y = top + i * row
        body.append(f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        x = float(label_width)
        for j, name in enumerate(names):
            w = parts[name][i] * scale
            if w > 0:
                body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}" '
                            f'fill="{SERIES_COLORS[j % len(SERIES_COLORS)]}"><title>{escape(label)}: '
                            f'{escape(name)} {parts[name][i]:,.0f}</title></rect>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{_fmt(totals[i])}</text>')
    return _svg(chart_id, title, width, height, body)


def bars(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float], *,
         width: int = 760, label_width: int = 190) -> str:
    """Plain horizontal bars: a one-part stacked chart, whose empty part name draws no legend."""
    return stacked_bars(chart_id, title, labels, {"": values}, width=width, label_width=label_width)


def histogram(
    chart_id: str, title: str, edges: Sequence[float], series: Mapping[str, Sequence[int]], *,
    xlabel: str, width: int = 760, height: int = 240, marks: Mapping[str, float] | None = None,
) -> str:
    """Counts per bin for each series, drawn as translucent overlaid bars on shared axes.

    Bins are drawn equally wide whatever their edges, so log-spaced edges give a log x axis. ``marks``
    (label -> x, e.g. a stage's threshold) are dashed vertical lines, placed linearly between the
    outer edges; the caller fits the edges to include them."""
    left, right, top, bottom = 56, 16, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((max(c, default=0) for c in series.values()), default=0) or 1
    bins = len(edges) - 1
    bw = plot_w / max(bins, 1)
    body = _legend(list(series), left)
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>')
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>')
    for frac in (0.5, 1.0):
        y = top + plot_h * (1 - frac)
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(peak * frac)}</text>')
    for j, (name, counts) in enumerate(series.items()):
        color = SERIES_COLORS[j % len(SERIES_COLORS)]
        for i, count in enumerate(counts):
            if count:
                h = plot_h * count / peak
                body.append(f'<rect x="{left + i * bw + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                            f'height="{h:.1f}" fill="{color}" fill-opacity="0.55"><title>{escape(name)} '
                            f'[{edges[i]:.3g}, {edges[i + 1]:.3g}): {count:,}</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = left + i * bw
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{edges[i]:.3g}</text>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    span = (edges[-1] - edges[0]) or 1.0
    for label, value in (marks or {}).items():
        x = left + plot_w * (value - edges[0]) / span
        body.append(f'<line class="threshold" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h}" '
                    f'stroke="#222" stroke-width="1.5" stroke-dasharray="5,3"><title>{escape(label)}</title></line>'
                    f'<text x="{x + 4:.1f}" y="{top + 8}">{escape(label)}</text>')
    return _svg(chart_id, title, width, height, body)


def _legend(names: Sequence[str], x0: int) -> list[str]:
    items, x = [], float(x0)
    for j, name in enumerate(n for n in names if n):
        color = SERIES_COLORS[j % len(SERIES_COLORS)]
        items.append(f'<rect x="{x:.0f}" y="6" width="12" height="12" fill="{color}"/>'
                     f'<text x="{x + 16:.0f}" y="16">{escape(name)}</text>')
        x += 28 + 7 * len(name)
    return items
