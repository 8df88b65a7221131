"""The ablation report: seed statistics, the noise rule, ``ablation.json`` and a self-contained ``ablation.html``.

Statistics. Each metric of a recipe is summarised over its seeds as mean and sample standard
deviation (ddof = 1; with one seed the deviation is unknown and no difference can be judged).

Noise rule. Two recipes differ beyond seed noise on a metric when ``|mean_A - mean_B| >= 2 * s_p``,
with the pooled deviation ``s_p = sqrt((s_A^2 + s_B^2) / 2)``. Below that the report says
"within seed noise": a few seeds of a proxy cannot tell the recipes apart on that metric. It is a
screening rule (about a two-sigma band for equal seed counts), not a significance test.

The HTML has no script and fetches nothing: a table, a cross matrix and one inline-SVG bar plot
of the reference bits per byte with ±1 std error bars.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NOISE_RULE = ("two recipes differ beyond seed noise on a metric when |mean_A - mean_B| >= 2 * pooled std, "
              "pooled std = sqrt((std_A^2 + std_B^2) / 2), std = sample std over seeds (ddof 1); "
              "otherwise the difference is 'within seed noise' (unknown with a single seed)")
PRIMARY = "reference_bits_per_byte"
VERDICTS = {None: "unknown (one seed)", True: "within seed noise", False: "beyond seed noise"}


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample std of the finite values (std None below two of them)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {"mean": statistics.fmean(finite) if finite else None,
            "std": statistics.stdev(finite) if len(finite) >= 2 else None, "n": len(finite)}


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Apply :data:`NOISE_RULE` to two :func:`mean_std` summaries."""
    if a["mean"] is None or b["mean"] is None:
        return {"delta": None, "pooled_std": None, "within_noise": None}
    delta = a["mean"] - b["mean"]
    if a["std"] is None or b["std"] is None:
        return {"delta": delta, "pooled_std": None, "within_noise": None}
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    return {"delta": delta, "pooled_std": pooled, "within_noise": abs(delta) < 2 * pooled}


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Add per-recipe summaries and pairwise comparisons (on the primary metric) to ``report``."""
    names = report["recipes_order"]
    for name in names:
        recipe = report["recipes"][name]
        runs = recipe["runs"]
        recipe["summary"] = {
            PRIMARY: mean_std([r["reference"]["bits_per_byte"] for r in runs]),
            "reference_loss": mean_std([r["reference"]["loss"] for r in runs]),
            "final_train_loss": mean_std([r["final_loss"] for r in runs]),
            "own_bits_per_byte": mean_std([r["cross"][name]["bits_per_byte"] for r in runs]),
            "cross_bits_per_byte": {o: mean_std([r["cross"][o]["bits_per_byte"] for r in runs]) for o in names},
            "epochs": mean_std([r["epochs"] for r in runs]),
        }
    comparisons = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            sa, sb = report["recipes"][a]["summary"][PRIMARY], report["recipes"][b]["summary"][PRIMARY]
            comparisons.append({"a": a, "b": b, "metric": PRIMARY, **compare(sa, sb)})
    report["noise_rule"] = NOISE_RULE
    report["comparisons"] = comparisons
    return report


def write_report(root: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Summarise, then write ``ablation.json`` and ``ablation.html`` into ``root``."""
    summarize(report)
    json_path, html_path = root / "ablation.json", root / "ablation.html"
    json_path.write_text(json.dumps(report, indent=2, default=str, allow_nan=True) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def _fmt(summary: dict[str, Any], digits: int = 4) -> str:
    if summary["mean"] is None:
        return "n/a"
    std = "?" if summary["std"] is None else f"{summary['std']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {std}"


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def bar_plot(labels: Sequence[str], summaries: Sequence[dict[str, Any]], *, title: str) -> str:
    """An inline SVG bar chart of means with ±1 std error bars (the axis starts at 0)."""
    width, height, left, bottom, top = 120 + 110 * len(labels), 300, 60, 50, 30
    tops = [(s["mean"] or 0) + (s["std"] or 0) for s in summaries]
    scale_max = max(tops + [1e-9]) * 1.1
    plot_h = height - bottom - top

    def y(v: float) -> float:
        return top + plot_h * (1 - v / scale_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="#333"/>']
    for tick in range(5):
        v = scale_max * tick / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">{v:.2f}</text>')
    for i, (label, s) in enumerate(zip(labels, summaries, strict=True)):
        x = left + 30 + 110 * i
        mean, std = s["mean"], s["std"] or 0.0
        if mean is not None:
            parts.append(f'<rect x="{x}" y="{y(mean):.1f}" width="60" height="{y(0) - y(mean):.1f}" fill="#4a7ab5"/>')
            cx = x + 30
            parts.append(f'<line x1="{cx}" y1="{y(mean - std):.1f}" x2="{cx}" y2="{y(mean + std):.1f}" '
                         f'stroke="#000" stroke-width="1.5"/>')
            for v in (mean - std, mean + std):
                parts.append(f'<line x1="{cx - 8}" y1="{y(v):.1f}" x2="{cx + 8}" y2="{y(v):.1f}" stroke="#000"/>')
            parts.append(f'<text x="{cx}" y="{y(mean + std) - 4:.1f}" text-anchor="middle" font-size="10">'
                         f'{mean:.3f}</text>')
        parts.append(f'<text x="{x + 30}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                     f'{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    names = report["recipes_order"]
    recipes = report["recipes"]
    e = html.escape
    rows = []
    for n in names:
        r, s = recipes[n], recipes[n]["summary"]
        clf = "-" if not r["classifier"] else f"AUC {r['classifier']['auc']:.2f}"
        rows.append(
            f"<tr><td>{e(n)}</td><td>{e(', '.join(r['stages']) or '(extraction only)')}</td>"
            f"<td>{r['kept']} / {r['records']}</td><td>{r['tokens']:,}</td><td>{_fmt(s['epochs'], 2)}</td>"
            f"<td>{clf}</td><td><b>{_fmt(s[PRIMARY])}</b></td>"
            f"<td>{_fmt(s['own_bits_per_byte'])}</td><td>{_fmt(s['final_train_loss'], 3)}</td></tr>")
    cross = "".join(
        f"<tr><th>{e(n)}</th>" + "".join(f"<td>{_fmt(recipes[n]['summary']['cross_bits_per_byte'][o])}</td>"
                                          for o in names) + "</tr>" for n in names)
    comps = "".join(
        f"<tr><td>{e(c['a'])} − {e(c['b'])}</td><td>{_num(c['delta'], '+.4f')}</td>"
        f"<td>{_num(c['pooled_std'], '.4f')}</td><td>{VERDICTS[c['within_noise']]}</td></tr>"
        for c in report["comparisons"])
    ref = report["reference"]
    budget = report["token_budget"]
    plot = bar_plot(names, [recipes[n]["summary"][PRIMARY] for n in names],
                    title="held-out reference: bits per byte (mean ± 1 std over seeds; lower is better)")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>refinery ablation</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
</head><body><h1>Curation ablation</h1>
<p>Every recipe curated the same input ({len(report['inputs'])} file(s)); one tokenizer
({report['tokenizer']['vocab_size']} pieces, trained on the union of every recipe's kept documents) tokenized all of
them. Each run trained {e(Path(report['model']).name)} from scratch for {budget['steps']} steps ×
{budget['tokens_per_step']:,} = <b>{budget['tokens']:,} tokens</b>, seeds {report['seeds']}. A recipe with fewer
tokens repeats its data (epochs column).</p>
<h2>Held-out reference</h2><p>{ref['documents']} documents, {ref['bytes']:,} bytes, {ref['tokens']:,} tokens from
{e(', '.join(ref['roots']))}. Rule: {e(ref['rule'])}. Every model is scored on the same windows of it
({report['eval_windows']} at most).</p>
{plot}
<table><tr><th>recipe</th><th>stages</th><th>kept / records</th><th>tokens</th><th>epochs</th><th>classifier</th>
<th>reference bits/byte</th><th>own held-out bits/byte</th><th>final train loss</th></tr>{''.join(rows)}</table>
<h2>Cross matrix: bits per byte of the model trained on (row) on the held-out split of (column)</h2>
<p>A recipe's held-out split is the windows its loader never trains on; the documents behind another recipe's
split may be in a row's training data (recipes overlap), so off-diagonal cells are optimistic.</p>
<table><tr><th>trained on \\ evaluated on</th>{''.join(f'<th>{e(n)}</th>' for n in names)}</tr>{cross}</table>
<h2>Is a difference real?</h2><p>Rule: {e(report['noise_rule'])}.</p>
<table><tr><th>pair</th><th>Δ mean reference bits/byte</th><th>pooled std</th><th>verdict</th></tr>{comps}</table>
</body></html>
"""


def format_summary(result: Any) -> str:
    """The console table of ``refinery ablate``."""
    report = result.report
    lines = [f"{'recipe':<36} {'kept':>6} {'tokens':>9} {'epochs':>7} {'reference bits/byte':>22}"]
    for name in report["recipes_order"]:
        r = report["recipes"][name]
        s = r["summary"]
        lines.append(f"{name:<36} {r['kept']:>6} {r['tokens']:>9,} {s['epochs']['mean']:>7.2f} "
                     f"{_fmt(s[PRIMARY]):>22}")
    for c in report["comparisons"]:
        lines.append(f"  {c['a']} vs {c['b']}: {_num(c['delta'], '+.4f')} bits/byte, {VERDICTS[c['within_noise']]}")
    lines.append(f"wrote {result.json_path} and {result.html_path}")
    return "\n".join(lines)
