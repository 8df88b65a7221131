"""The parts of one source's section of report.html: its funnel, scores, lengths, domains, dedup,
shards and cost. Each chart has its exact numbers in a table beside it (folded) and on hover."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.report_html_base import nbytes, note, num, numbers, pct, section, table
from pipeline.report_plots import bars, histogram, stacked_bars


def funnel(key: str, rows: Sequence[dict[str, Any]]) -> str:
    """Stages of one or more runs (``run`` names the run when a source has several) in documents and tokens."""
    if not rows:
        return section(f"funnel-{key}", "Funnel", note("No stats.json: this run has no funnel."))
    several = len({r.get("run") for r in rows}) > 1
    labels = [f"{r['run']} · {r['stage']}" if several else r["stage"] for r in rows]
    chart = stacked_bars(f"plot-funnel-{key}", "Documents per stage: kept and dropped", labels,
                         {"kept": [s["out"] for s in rows], "dropped": [s["dropped"] for s in rows]},
                         label_width=260 if several else 190)
    tokens = any(s.get("tokens_in") is not None for s in rows)
    headers = ["stage", "in", "dropped", "out"] + (["tokens in", "tokens dropped", "tokens out"] if tokens else [])
    body = []
    for label, s in zip(labels, rows, strict=True):
        row = [escape(label), num(s["in"]), num(s["dropped"]), num(s["out"])]
        if tokens:
            row += [num(s.get("tokens_in")), num(s.get("tokens_dropped")), num(s.get("tokens_out"))]
        body.append(row)
    reason_rows = [[escape(s["stage"]), escape(r), num(n), num(s.get("reason_tokens", {}).get(r))]
                   for s in rows for r, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1])]
    last_tokens = rows[-1].get("tokens_out")
    if tokens:
        token_note = ""
    elif last_tokens is not None:
        token_note = note(f"{last_tokens:,} tokens kept in shards; per-stage tokens need rejects/ "
                          "(output.rejects: true) and the tokenizer beside the shards.")
    else:
        token_note = note("No tokenizer beside this source's shards: token counts appear once it is tokenized.")
    return section(f"funnel-{key}", "Funnel", chart + table(f"funnel-table-{key}", headers, body) + token_note
                   + "<h4>Drops by reason</h4>"
                   + table(f"reasons-table-{key}", ["stage", "reason", "documents", "tokens"], reason_rows, left=2))


def languages(key: str, run: dict[str, Any]) -> str:
    langs = run["languages"]
    if not langs:
        return section(f"languages-{key}", "Languages", note("No kept documents."))
    top = list(langs.items())[:15]
    chart = bars(f"plot-languages-{key}", "Kept documents per language", [k for k, _ in top], [v for _, v in top])
    return section(f"languages-{key}", "Languages (kept documents)", chart)


def _histogram_table(table_id: str, hist: dict[str, Any]) -> str:
    edges, series = hist["edges"], hist["series"]
    rows = [[f"{edges[i]:.4g} – {edges[i + 1]:.4g}", *(num(series[k][i]) for k in series)]
            for i in range(len(edges) - 1)]
    return numbers(table(table_id, ["bin", *series], rows))


def scores(key: str, run: dict[str, Any]) -> str:
    """Score histograms, kept vs dropped, with the stage's threshold drawn where it ran."""
    parts = []
    for column, label in (("lang_score", "language-ID score"), ("quality_score", "quality score")):
        hist = run["scores"].get(column)
        if hist is None:
            continue
        counts = ", ".join(f"{k} {v:,}" for k, v in hist["documents"].items())
        slug = column.replace("_", "-")
        threshold = hist.get("threshold")
        marks = {f"min_score {threshold:g}": threshold} if threshold is not None else None
        parts.append(histogram(f"plot-{slug}-{key}", f"Histogram of {label} ({counts})", hist["edges"],
                               hist["series"], xlabel=f"{label} ({counts})", marks=marks))
        parts.append(_histogram_table(f"{slug}-table-{key}", hist))
    if not parts:
        return ""
    if not run["samples"]["have_rejects"]:
        parts.append(note("Dropped documents are not shown: the run wrote no rejects/."))
    return section(f"scores-{key}", "Scores", "".join(parts))


def lengths(key: str, run: dict[str, Any]) -> str:
    """Kept documents' lengths in tokens on a log axis fitted to the shortest and longest."""
    summary = run.get("lengths")
    if summary is None:
        return ""
    chart = histogram(f"plot-lengths-{key}", "Kept documents by length in tokens", summary["edges"],
                      {"kept": summary["counts"]}, xlabel="tokens per document (log scale)")
    rows = [[f"{summary['edges'][i]:,.0f} – {summary['edges'][i + 1]:,.0f}", num(c)]
            for i, c in enumerate(summary["counts"])]
    return section(f"lengths-{key}", "Document length (tokens)",
                   chart + numbers(table(f"lengths-table-{key}", ["tokens", "documents"], rows)))


def domains(key: str, run: dict[str, Any]) -> str:
    top = run.get("domains") or []
    if not top:
        return ""
    chart = stacked_bars(f"plot-domains-{key}", "Documents per domain: kept and dropped", [d["domain"] for d in top],
                         {"kept": [d["kept"] for d in top], "dropped": [d["dropped"] for d in top]}, label_width=240)
    rows = [[escape(d["domain"]), num(d["kept"]), num(d["kept_tokens"]), num(d["dropped"]), num(d["dropped_tokens"]),
             pct(d["dropped"], d["kept"] + d["dropped"])] for d in top]
    headers = ["domain", "kept", "kept tokens", "dropped", "dropped tokens", "dropped share"]
    return section(f"domains-{key}", "Top domains", chart + table(f"domains-table-{key}", headers, rows))


def dedup(key: str, run: dict[str, Any]) -> str:
    found = run["dedup"]
    if found is None:
        return ""
    sizes = found["size_distribution"]
    chart = (bars(f"plot-dedup-{key}", "Clusters per cluster size", [f"size {k}" for k in sizes], list(sizes.values()))
             if sizes else note("No near-duplicate clusters were found."))
    fraction = found["removed_fraction"]
    rows = [["clusters", num(found["clusters"])], ["documents in clusters", num(found["documents_in_clusters"])],
            ["removed as near-duplicates", num(found["removed"])],
            ["removed fraction of MinHashDedup input", "–" if fraction is None else f"{fraction:.2%}"],
            ["removed as exact duplicates", num(found["exact_removed"])]]
    return section(f"dedup-{key}", "Near-duplicates", table(f"dedup-table-{key}", ["", ""], rows) + chart)


def shards(key: str, run: dict[str, Any]) -> str:
    if not run["shards"]:
        return ""
    rows = [[escape(s["source"]), num(s["documents"]), num(s["tokens"]), num(s["shards"]), nbytes(s["disk_bytes"]),
             escape(s["dtype"]), num(s["vocab_size"]), escape(s["tokenizer_sha256"][:12])] for s in run["shards"]]
    headers = ["source", "documents", "tokens", "shards", "disk", "dtype", "vocab", "tokenizer"]
    return section(f"shards-{key}", "Shards", table(f"shards-table-{key}", headers, rows))


def cost(key: str, run: dict[str, Any]) -> str:
    """The run's core-hours and cost, in the same columns as `refinery estimate` prints."""
    found = run.get("cost")
    if found is None:
        return section(f"cost-{key}", "Cost", note("No cpu_seconds and input_bytes in stats.json (a run on another "
                                                   "machine's workers, or from before they were recorded)."))
    price = f"at {found['price_per_core_hour']:g} {escape(found['currency'])} per core-hour"
    return section(f"cost-{key}", "Cost", f"<p>This run, {price}:</p>"
                   + table(f"cost-table-{key}", found["columns"], [[escape(c) for c in found["row"]]], left=2)
                   + table(f"rates-table-{key}", found["rate_columns"], [[escape(c) for c in found["rate_row"]]], left=2)
                   + "".join(note(n) for n in found["notes"]))


def missing(runs: Sequence[dict[str, Any]]) -> str:
    """What a source's runs lack, said once for the source rather than once per empty part."""
    notes = []
    if all(r["dedup"] is None for r in runs):
        notes.append("No clusters/: MinHash dedup did not run or found nothing to record.")
    if all(not r["shards"] for r in runs):
        notes.append("Not tokenized: no shards/manifest.json.")
    if not any(r["samples"]["have_rejects"] for r in runs):
        notes.append("The run wrote no rejects/ (set output.rejects: true to see dropped documents).")
    return "".join(note(n) for n in notes)
