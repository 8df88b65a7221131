"""The first screen of report.html: mixture, funnel in tokens, where tokens were lost, plan, eval.

It answers "what is in this mixture, how much, and what was thrown away" before any per-source
detail, which follows collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.report_html_base import big, nbytes, note, num, numbers, pct, section, table
from pipeline.report_plots import stacked_bars


def cards(overview: dict[str, Any], mixture: dict[str, Any] | None) -> str:
    total = overview["total"]
    items = [("sources", num(len(overview["sources"]))), ("records read", num(total["records"])),
             ("documents kept", num(total["kept"])), ("tokens kept", big(total["tokens_kept"])),
             ("tokens dropped", big(total["tokens_dropped"]))]
    if mixture:
        items.append(("token budget", big(mixture.get("token_budget"))))
    return '<div class="cards" id="overview-cards">' + "".join(
        f'<div class="card"><b>{value}</b>{escape(label)}</div>' for label, value in items) + "</div>"


def mixture_table(mixture: dict[str, Any] | None) -> str:
    if mixture is None:
        return section("mixture", "Mixture", note("No mixture given (--mixture mixture.json)."))
    rows, classes = [], []
    max_epochs = mixture.get("max_epochs")
    for s in mixture["sources"]:
        rows.append([escape(s["name"]), escape(s.get("recipe_key", "")), f"{s.get('target_weight', 0):.3f}",
                     f"{s['weight']:.3f}", f"{s['token_share']:.3f}", num(s["documents"]), num(s["tokens"]),
                     f"{s['epochs']:.2f}", nbytes(s["disk_bytes"])])
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
    recipe = (f"; recipe {escape(mixture['recipe'])}" if mixture.get("recipe") else "") + (
        f" ({escape(mixture['reference'])})" if mixture.get("reference") else "")
    body = (f"<p>{escape(mixture['path'])}: budget {num(mixture['token_budget'])} tokens{recipe}</p>"
            + table("mixture-table", headers, rows, left=2, row_classes=classes) + numbers(chart, "chart"))
    if mixture["warnings"]:
        body += '<ul class="warnings">' + "".join(f"<li>{escape(w)}</li>" for w in mixture["warnings"]) + "</ul>"
    return section("mixture", "Mixture", body)


def whole_funnel(overview: dict[str, Any]) -> str:
    """Records -> kept documents -> kept tokens per source and in total, with the tokens dropped."""
    rows, classes = [], []
    for s in [*overview["sources"], overview["total"]]:
        rows.append([escape(s["source"]), num(s["records"]), num(s["kept"]), pct(s["kept"], s["records"]),
                     num(s["tokens_in"]), num(s["tokens_dropped"]), num(s["tokens_kept"]),
                     pct(s["tokens_kept"], s["tokens_in"])])
        classes.append("total" if s is overview["total"] else "")
    headers = ["source", "records", "documents kept", "documents kept (share)", "tokens of text", "tokens dropped", "tokens kept",
               "tokens kept (share)"]
    known = [s for s in overview["sources"] if s["tokens_in"] is not None]
    chart = stacked_bars("plot-overview-funnel", "Tokens per source: kept and dropped", [s["source"] for s in known],
                         {"kept": [s["tokens_kept"] for s in known], "dropped": [s["tokens_dropped"] for s in known]}
                         ) if known else note("No source has a tokenizer yet: the funnel is in documents only.")
    return section("overview-funnel", "From records to kept tokens",
                   table("overview-funnel-table", headers, rows, row_classes=classes) + chart
                   + note("Tokens of text: the kept tokens plus every dropped document's, encoded with the "
                          "source's tokenizer (records dropped before extraction have no text)."))


def top_reasons(overview: dict[str, Any]) -> str:
    reasons = overview["top_reasons"]
    if not reasons:
        return section("top-reasons", "Where the tokens were lost", note("Nothing was dropped."))
    rows = [[escape(r["stage"]), escape(r["reason"]), escape(", ".join(r["sources"])), num(r["documents"]),
             num(r["tokens"]), pct(r["tokens"], overview["total"]["tokens_in"])] for r in reasons]
    labels = [r["reason"] for r in reasons]
    tokens = all(r["tokens"] is not None for r in reasons)
    chart = stacked_bars("plot-top-reasons", "Tokens dropped per reason" if tokens else "Documents dropped per reason",
                         labels, {"": [(r["tokens"] if tokens else r["documents"]) for r in reasons]},
                         width=900, label_width=380)
    return section("top-reasons", "Where the tokens were lost",
                   table("top-reasons-table", ["stage", "reason", "sources", "documents", "tokens",
                                               "share of tokens of text"], rows, left=3) + chart)


def planner(plan: dict[str, Any] | None) -> str:
    """Candidate budgets for the model size: tokens, compute, GPU-hours and epochs per source."""
    if plan is None:
        return section("planner", "Token budget", note("No model size: pass --model-params to `refinery mix` "
                                                       "or `refinery report` for the planner."))
    sources: Sequence[str] = plan["sources"]
    max_epochs = plan.get("max_epochs")
    rows = []
    for r in plan["rows"]:
        epochs = []
        for name in sources:
            e = r["epochs"].get(name)
            flag = ' class="warn"' if e is not None and max_epochs and e > max_epochs else ""
            epochs.append(f"<span{flag}>{'–' if e is None else _short(e)}</span>")
        rows.append([escape(r["budget"]), big(r["tokens"]), _short(r["tokens_per_param"]), f"{r['flops']:.3g}",
                     _short(r["gpu_hours"]), *epochs])
    headers = ["budget", "tokens", "tokens / parameter", "compute (6·N·D FLOPs)", "H100-hours", *sources]
    assumed = (f"Model size N = {big(plan['model_params'])} parameters. GPU-hours at {plan['peak_tflops']:g} TFLOP/s "
               f"per GPU (H100 SXM dense BF16) and an assumed {plan['mfu']:.0%} MFU: hours = 6·N·D / (peak · MFU) "
               "/ 3600. The per-source columns are epochs, how often each source is read at that budget"
               + (f"; above max_epochs {max_epochs:g} is marked." if max_epochs else "."))
    return section("planner", "Token budget planner", table("planner-table", headers, rows) + note(assumed))


def _short(value: float) -> str:
    """Two decimals for small numbers, three significant figures (1.2e+07) for large or tiny ones."""
    return f"{value:.2f}" if 0.01 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"


def eval_table(found: dict[str, Any] | None) -> str:
    if found is None:
        return section("eval", "Held-out eval", note("No eval.json: train and `refinery eval` a checkpoint, then pass "
                                                     "--eval (found beside the mixture as pretrain/eval.json)."))
    rows = [[escape(r["source"]), num(r["windows"]), num(r["tokens"]), num(r["loss"], 4), num(r["perplexity"], 4),
             num(r["bits_per_byte"], 4)] for r in found["rows"]]
    head = f"<p>Checkpoint {escape(str(found.get('checkpoint')))} at step {num(found.get('step'))}, " \
           f"{num(found.get('max_windows'))} held-out windows of {num(found.get('seq_len'))} tokens per source at most.</p>"
    unscored = note(f"No held-out windows (too little data held out): {', '.join(found['unscored'])}."
                    ) if found["unscored"] else ""
    return section("eval", "Held-out eval", head + table("eval-table", ["source", "windows", "tokens", "loss",
                                                                        "perplexity", "bits per byte"],
                                                         rows, row_classes=["total" if r["source"] == "all" else ""
                                                                            for r in found["rows"]]) + unscored)


def lengths_table(runs: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]]) -> str:
    """Kept documents' length in tokens per source: the last run of the source that has lengths."""
    rows = []
    for g in groups:
        found = [runs[i]["lengths"] for i in g["runs"] if runs[i].get("lengths")]
        if found:
            s = found[-1]
            rows.append([escape(g["source"]), num(s["documents"]), num(s["min"]), num(round(s["p10"])),
                         num(round(s["p50"])), num(round(s["p90"])), num(s["max"]), num(round(s["mean"]))])
    if not rows:
        return ""
    return section("lengths", "Document length in tokens", table(
        "lengths-table", ["source", "documents", "min", "p10", "median", "p90", "max", "mean"], rows))


def render_overview(data: dict[str, Any]) -> str:
    overview = data["overview"]
    return ('<section id="overview"><h2>Overview</h2>' + cards(overview, data.get("mixture"))
            + mixture_table(data.get("mixture")) + whole_funnel(overview) + top_reasons(overview)
            + planner(data.get("plan")) + eval_table(data.get("eval"))
            + lengths_table(data["runs"], overview["groups"]) + "</section>")
