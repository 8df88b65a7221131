"""report.html from the report's data: one self-contained page (inline CSS and SVG, no scripts).

Every value that came from a document or a file name goes through ``html.escape``: sample texts
are web pages, and a rejected page is exactly the kind that carries ``<script>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.report_plots import DROPPED_COLOR, KEPT_COLOR, bars, histogram, stacked_bars

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { margin-top: 1.6rem; } .note { color: #777; font-style: italic; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; vertical-align: top; }
th { background: #f4f6f8; } td.l, th.l { text-align: left; }
tr.warn td { background: #fff2e8; } .warnings li { color: #a0461f; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: .5rem; font-size: 12px; max-height: 14em; overflow: auto; }
details { margin: .3rem 0; } summary { cursor: pointer; }
.kept { color: %s; } .dropped { color: %s; } .chart { display: block; margin: .5rem 0; }
""" % (KEPT_COLOR, DROPPED_COLOR)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def _table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1,
           row_classes: Sequence[str] | None = None) -> str:
    """``rows`` hold already-escaped HTML; the first ``left`` columns are left-aligned."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _funnel(i: int, run: dict[str, Any]) -> str:
    funnel = run["funnel"]
    if not funnel:
        return f'<section id="funnel-{i}"><h3>Funnel</h3>{_note("No stats.json: this run has no funnel.")}</section>'
    chart = stacked_bars(f"plot-funnel-{i}", "Documents per stage: kept and dropped",
                         [s["stage"] for s in funnel],
                         {"kept": [s["out"] for s in funnel], "dropped": [s["dropped"] for s in funnel]})
    tokens = any(s.get("tokens_in") is not None for s in funnel)
    headers = ["stage", "in", "dropped", "out"] + (["tokens in", "tokens dropped", "tokens out"] if tokens else [])
    rows = []
    for s in funnel:
        row = [escape(s["stage"]), _num(s["in"]), _num(s["dropped"]), _num(s["out"])]
        if tokens:
            row += [_num(s.get("tokens_in")), _num(s.get("tokens_dropped")), _num(s.get("tokens_out"))]
        rows.append(row)
    reason_rows = [[escape(s["stage"]), escape(r), _num(n), _num(s.get("reason_tokens", {}).get(r))]
                   for s in funnel for r, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1])]
    last_tokens = funnel[-1].get("tokens_out")
    if tokens:
        token_note = ""
    elif last_tokens is not None:
        token_note = _note(f"{last_tokens:,} tokens kept in shards; per-stage tokens need rejects/ "
                           "(output.rejects: true) and the tokenizer beside the shards.")
    else:
        token_note = _note("No shards: token counts appear once the run is tokenized.")
    return (f'<section id="funnel-{i}"><h3>Funnel</h3>{chart}{_table(f"funnel-table-{i}", headers, rows)}'
            f"{token_note}<h4>Drops by reason</h4>"
            f'{_table(f"reasons-table-{i}", ["stage", "reason", "documents", "tokens"], reason_rows, left=2)}</section>')


def _languages(i: int, run: dict[str, Any]) -> str:
    langs = run["languages"]
    if not langs:
        return f'<section id="languages-{i}"><h3>Languages</h3>{_note("No kept documents.")}</section>'
    top = list(langs.items())[:15]
    chart = bars(f"plot-languages-{i}", "Kept documents per language", [k for k, _ in top], [v for _, v in top])
    return f'<section id="languages-{i}"><h3>Languages (kept documents)</h3>{chart}</section>'


def _scores(i: int, run: dict[str, Any]) -> str:
    parts = [f'<section id="scores-{i}"><h3>Scores</h3>']
    for column, label in (("lang_score", "language-ID score"), ("quality_score", "quality score")):
        hist = run["scores"].get(column)
        if hist is None:
            parts.append(_note(f"No document has a {label}."))
            continue
        counts = ", ".join(f"{k} {v:,}" for k, v in hist["documents"].items())
        parts.append(histogram(f"plot-{column.replace('_', '-')}-{i}", f"Histogram of {label} ({counts})",
                               hist["edges"], hist["series"], xlabel=f"{label} ({counts})"))
    if not run["samples"]["have_rejects"]:
        parts.append(_note("Dropped documents are not shown: the run wrote no rejects/."))
    return "".join(parts) + "</section>"


def _dedup(i: int, run: dict[str, Any]) -> str:
    dedup = run["dedup"]
    if dedup is None:
        return f'<section id="dedup-{i}"><h3>Near-duplicates</h3>{_note("No clusters/: MinHash dedup did not run or found nothing to record.")}</section>'
    sizes = dedup["size_distribution"]
    chart = bars(f"plot-dedup-{i}", "Clusters per cluster size", [f"size {k}" for k in sizes], list(sizes.values())) if sizes else _note("No near-duplicate clusters were found.")
    fraction = dedup["removed_fraction"]
    rows = [["clusters", _num(dedup["clusters"])], ["documents in clusters", _num(dedup["documents_in_clusters"])],
            ["removed as near-duplicates", _num(dedup["removed"])],
            ["removed fraction of MinHashDedup input", "–" if fraction is None else f"{fraction:.2%}"],
            ["removed as exact duplicates", _num(dedup["exact_removed"])]]
    return f'<section id="dedup-{i}"><h3>Near-duplicates</h3>{_table(f"dedup-table-{i}", ["", ""], rows)}{chart}</section>'


def _shards(i: int, run: dict[str, Any]) -> str:
    if not run["shards"]:
        return f'<section id="shards-{i}"><h3>Shards</h3>{_note("Not tokenized: no shards/manifest.json.")}</section>'
    rows = [[escape(s["source"]), _num(s["documents"]), _num(s["tokens"]), _num(s["shards"]), _bytes(s["disk_bytes"]),
             escape(s["dtype"]), _num(s["vocab_size"]), escape(s["tokenizer_sha256"][:12])] for s in run["shards"]]
    headers = ["source", "documents", "tokens", "shards", "disk", "dtype", "vocab", "tokenizer"]
    return f'<section id="shards-{i}"><h3>Shards</h3>{_table(f"shards-table-{i}", headers, rows)}</section>'


def _cost(i: int, run: dict[str, Any]) -> str:
    """The run's core-hours and cost, in the same columns as `refinery estimate` prints."""
    cost = run.get("cost")
    if cost is None:
        return (f'<section id="cost-{i}"><h3>Cost</h3>'
                + _note("No cpu_seconds and input_bytes in stats.json (a run on another machine's workers, "
                        "or from before they were recorded).") + "</section>")
    price = f"at {cost['price_per_core_hour']:g} {escape(cost['currency'])} per core-hour"
    return (f'<section id="cost-{i}"><h3>Cost</h3><p>This run, {price}:</p>'
            + _table(f"cost-table-{i}", cost["columns"], [[escape(c) for c in cost["row"]]], left=2)
            + _table(f"rates-table-{i}", cost["rate_columns"], [[escape(c) for c in cost["rate_row"]]], left=2)
            + "".join(_note(n) for n in cost["notes"]) + "</section>")


def _doc(doc: dict[str, Any]) -> str:
    meta = " · ".join(escape(str(doc.get(k))) for k in ("id", "url", "lang") if doc.get(k))
    return f"<details open><summary>{meta}</summary><pre>{escape(doc.get('text') or '')}</pre></details>"


def _samples(i: int, run: dict[str, Any]) -> str:
    samples = run["samples"]
    parts = [f'<section id="samples-{i}"><h3>Sample documents</h3><h4 class="kept">Kept</h4>']
    parts += [_doc(d) for d in samples["kept"]] or [_note("No kept documents.")]
    parts.append('<h4 class="dropped">Dropped, by reason</h4>')
    if not samples["have_rejects"]:
        parts.append(_note("The run wrote no rejects/ (set output.rejects: true to see dropped documents)."))
    for reason, docs in samples["rejected"].items():
        parts.append(f"<h5>{escape(reason)}</h5>" + "".join(_doc(d) for d in docs))
    return "".join(parts) + "</section>"


def _mixture(mixture: dict[str, Any] | None) -> str:
    if mixture is None:
        return '<section id="mixture"><h2>Mixture</h2>' + _note("No mixture given (--mixture mixture.json).") + "</section>"
    rows, classes = [], []
    max_epochs = mixture.get("max_epochs")
    for s in mixture["sources"]:
        rows.append([escape(s["name"]), escape(s.get("recipe_key", "")), f"{s.get('target_weight', 0):.3f}",
                     f"{s['weight']:.3f}", f"{s['token_share']:.3f}", _num(s["documents"]), _num(s["tokens"]),
                     f"{s['epochs']:.2f}", _bytes(s["disk_bytes"])])
        classes.append("warn" if max_epochs and s["epochs"] > max_epochs else "")
    headers = ["source", "recipe key", "target", "sampling prop.", "token share", "documents", "tokens", "epochs", "disk"]
    # Two rows per source, each coloured by what it measures: how often a source is sampled next to
    # how much of the available data it is (their ratio is the over- or under-sampling).
    labels, sampled, share = [], [], []
    for s in mixture["sources"]:
        labels += [f"{s['name']} · sampled", f"{s['name']} · tokens"]
        sampled += [s["weight"], 0.0]
        share += [0.0, s["token_share"]]
    chart = stacked_bars("plot-mixture", "Sampling proportion vs share of available tokens", labels,
                         {"sampling proportion": sampled, "share of tokens": share}, label_width=240)
    parts = ['<section id="mixture"><h2>Mixture</h2>',
             f"<p>{escape(mixture['path'])}: budget {_num(mixture['token_budget'])} tokens"
             + (f"; recipe {escape(mixture['recipe'])}" if mixture.get("recipe") else "")
             + (f" ({escape(mixture['reference'])})" if mixture.get("reference") else "")
             + "</p>", _table("mixture-table", headers, rows, left=2, row_classes=classes), chart]
    scaling = mixture.get("scaling")
    if scaling:
        parts.append(_table("scaling-table", ["", "tokens", "tokens / parameter"], [
            ["this budget", _num(scaling["token_budget"]), f"{scaling['tokens_per_param']:.1f}"],
            ["Chinchilla-optimal (Hoffmann et al. 2022)", _num(scaling["chinchilla_tokens"]), "20"],
            ["LLaMA-1 (Touvron et al. 2023)", _num(scaling["llama_tokens"]), f"{scaling['llama_tokens_per_param']:.0f}"],
        ]))
    if mixture["warnings"]:
        parts.append('<ul class="warnings">' + "".join(f"<li>{escape(w)}</li>" for w in mixture["warnings"]) + "</ul>")
    return "".join(parts) + "</section>"


def render(data: dict[str, Any]) -> str:
    runs = data["runs"]
    body = ["<h1>refinery report</h1>",
            f"<p>{len(runs)} run(s): " + ", ".join(escape(r["path"]) for r in runs) + "</p>",
            _mixture(data.get("mixture"))]
    for i, run in enumerate(runs):
        totals = run["totals"]
        summary = (f"{_num(totals.get('files'))} files, {_num(totals.get('records'))} records → "
                   f"{_num(totals.get('kept'))} documents kept" if totals else "no stats.json")
        body.append(f'<section id="run-{i}"><h2>Run: {escape(run["path"])}</h2><p>{summary}</p>'
                    + _funnel(i, run) + _languages(i, run) + _scores(i, run) + _dedup(i, run)
                    + _shards(i, run) + _cost(i, run) + _samples(i, run) + "</section>")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>refinery report</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
