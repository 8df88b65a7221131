"""compare.html: two runs side by side, as ``refinery report --compare`` found them (inline CSS and SVG)."""

from __future__ import annotations

from html import escape
from typing import Any

from pipeline.report_html_base import CSS, note, num, numbers, section, table
from pipeline.report_plots import histogram


def _delta(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return "–"
    return f"{b - a:+,}" if b != a else "0"


def _stages(data: dict[str, Any]) -> str:
    rows = [[escape(s["stage"]), num(s.get("a_in")), num(s.get("b_in")), num(s.get("a_dropped")),
             num(s.get("b_dropped")), _delta(s.get("a_dropped"), s.get("b_dropped")), num(s.get("a_out")),
             num(s.get("b_out")), _delta(s.get("a_out"), s.get("b_out"))] for s in data["stages"]]
    headers = ["stage", "in A", "in B", "dropped A", "dropped B", "Δ dropped", "out A", "out B", "Δ out"]
    reasons = [[escape(r["stage"]), escape(r["reason"]), num(r.get("a", 0)), num(r.get("b", 0)), f"{r['delta']:+,}"]
               for r in sorted(data["reasons"], key=lambda r: -abs(r["delta"]))]
    return (section("compare-stages", "Counts per stage", table("compare-stages-table", headers, rows))
            + section("compare-reasons", "Drops per reason (largest change first)",
                      table("compare-reasons-table", ["stage", "reason", "A", "B", "Δ"], reasons, left=2)))


def _totals(data: dict[str, Any]) -> str:
    a, b = data["a"], data["b"]
    rows = [[label, num(a["totals"].get(k)), num(b["totals"].get(k)), _delta(a["totals"].get(k), b["totals"].get(k))]
            for label, k in (("records", "records"), ("documents kept", "kept"), ("dropped", "dropped"))]
    rows.append(["tokens kept", num(a["tokens"]), num(b["tokens"]), _delta(a["tokens"], b["tokens"])])
    rows.append(["kept by both", num(data["both"]), num(data["both"]), "0"])
    return section("compare-totals", "Totals", table("compare-totals-table", ["", "A", "B", "Δ"], rows))


def _scores(data: dict[str, Any]) -> str:
    parts = []
    for column, hist in data["scores"].items():
        if hist is None:
            continue
        slug = column.replace("_", "-")
        parts.append(histogram(f"plot-compare-{slug}", f"{column} of kept documents, A vs B", hist["edges"],
                               hist["series"], xlabel=column))
        edges, series = hist["edges"], hist["series"]
        rows = [[f"{edges[i]:.4g} – {edges[i + 1]:.4g}", *(num(series[k][i]) for k in series)]
                for i in range(len(edges) - 1)]
        parts.append(numbers(table(f"compare-{slug}-table", ["bin", *series], rows)))
    return section("compare-scores", "Score distributions (kept documents)",
                   "".join(parts) or note("Neither run has scores."))


def _only(key: str, title: str, found: dict[str, Any], other: str) -> str:
    why = [[escape(reason), num(n)] for reason, n in found["dropped_by_other"].items()]
    body = f"<p>{num(found['documents'])} document(s).</p>"
    if why:
        body += table(f"{key}-why", [f"dropped by {other} as", "documents"], why)
    for doc in found["samples"]:
        meta = " · ".join(escape(str(doc[k])) for k in ("id", "url") if doc.get(k))
        body += f"<details><summary>{meta}</summary><pre>{escape(doc.get('text') or '')}</pre></details>"
    return section(key, title, body)


def render_compare(data: dict[str, Any]) -> str:
    a, b = data["a"], data["b"]
    body = ["<h1>refinery report: comparison</h1>",
            f"<p>A = {escape(a['name'])} ({escape(a['path'])}), B = {escape(b['name'])} ({escape(b['path'])})</p>",
            _totals(data), _stages(data), _scores(data),
            _only("only-a", f"Kept only in A ({a['name']})", data["only_a"], "B"),
            _only("only-b", f"Kept only in B ({b['name']})", data["only_b"], "A")]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>refinery comparison</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
