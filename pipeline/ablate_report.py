"""The ablation report: seed and reference statistics, the noise rule, ``ablation.json`` and ``ablation.html``.

Two sources of noise. A recipe's reference bits per byte varies with the seed (init and data
order) and with the reference itself (a finite sample of documents). The first is measured by the
seed spread: mean and sample standard deviation over seeds (ddof 1). The second by a bootstrap
over the reference's documents (:func:`pipeline.ablate_score.bootstrap_ratio`): the per-document
nats, averaged over seeds, resampled with replacement; for a pair of recipes the per-document
difference is resampled, so the interval is paired (the same documents on both sides).

Noise rule. Two recipes differ beyond noise when both hold: ``|mean_A - mean_B| >= 2 * s_p``, with
the pooled seed deviation ``s_p = sqrt((s_A^2 + s_B^2) / 2)``, and the 95% bootstrap interval of the
difference excludes 0. Otherwise the report says "within noise". It is a screening rule (about a
two-sigma band for the seeds), not a significance test; with one seed the verdict is unknown.

Downstream tasks (``--mc-tasks``). Each recipe's accuracy on a task is the mean and sample std over
seeds, beside what guessing at random scores (mean of 1/choices over the items). A small proxy sits at
chance, and on a few hundred items chance itself is noisy, so an arm counts as above (below) chance
only when ``|mean - chance| >= 2 * max(seed std, std of a random guesser's accuracy)``
(:data:`CHANCE_RULE`); when no arm is, a sentence says the tasks cannot rank the recipes here.

The HTML has no script and fetches nothing: tables and one inline-SVG plot whose y axis spans the
data, with the seed std (thick) and the reference bootstrap interval (thin) as error bars.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ablate_score import bootstrap_ratio

NOISE_RULE = ("two recipes differ beyond noise when |mean_A - mean_B| >= 2 * pooled seed std (pooled std = "
              "sqrt((std_A^2 + std_B^2) / 2), std over seeds, ddof 1) AND the 95% paired bootstrap interval of the "
              "difference over reference documents excludes 0; otherwise 'within noise' (unknown with one seed)")
PRIMARY = "reference_bits_per_byte"
VERDICTS = {None: "unknown (one seed)", True: "within noise", False: "beyond noise"}
CHANCE_RULE = ("an arm is above (below) chance on a task when |mean accuracy - chance| >= 2 * max(std over seeds, "
               "std of a random guesser's accuracy = sqrt(sum p_i (1 - p_i)) / items, p_i = 1 / choices of item i); "
               "otherwise at chance")
MC_METRICS = ("acc", "acc_norm")


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample std of the finite values (std None below two of them)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {"mean": statistics.fmean(finite) if finite else None,
            "std": statistics.stdev(finite) if len(finite) >= 2 else None, "n": len(finite)}


def compare(a: dict[str, Any], b: dict[str, Any], ci: tuple[float, float] | None = None) -> dict[str, Any]:
    """Apply :data:`NOISE_RULE` to two :func:`mean_std` summaries and the bootstrap interval of A - B."""
    if a["mean"] is None or b["mean"] is None:
        return {"delta": None, "pooled_std": None, "ci": ci, "within_noise": None}
    delta = a["mean"] - b["mean"]
    if a["std"] is None or b["std"] is None:
        return {"delta": delta, "pooled_std": None, "ci": ci, "within_noise": None}
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    excludes_zero = ci is None or ci[0] > 0 or ci[1] < 0
    return {"delta": delta, "pooled_std": pooled, "ci": ci,
            "within_noise": not (abs(delta) >= 2 * pooled and excludes_zero)}


def per_document(runs: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-document nats averaged over a recipe's seeds, and the documents' bytes."""
    loaded = [np.load(r["reference"]["per_document"]) for r in runs]
    return np.mean([x["nats"] for x in loaded], axis=0), loaded[0]["bytes"]


def sentence(c: dict[str, Any]) -> str:
    """The pair's verdict in plain words."""
    if c["delta"] is None:
        return f"{c['a']} and {c['b']}: no score to compare."
    better, worse = (c["a"], c["b"]) if c["delta"] < 0 else (c["b"], c["a"])
    size = f"{abs(c['delta']):.4f} bits/byte lower"
    ci = "" if c["ci"] is None else f" (95% reference interval of {c['a']} − {c['b']}: {c['ci'][0]:+.4f} to {c['ci'][1]:+.4f})"
    if c["within_noise"] is None:
        return f"{better} scored {size} than {worse}{ci}; one seed, so the seed noise is unknown."
    if c["within_noise"]:
        return f"{better} scored {size} than {worse}{ci}, within noise: this study cannot tell them apart."
    return f"{better} made a better proxy than {worse}: {size}{ci}, beyond seed and reference noise."


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Add per-recipe summaries and pairwise comparisons (on the primary metric) to ``report``."""
    names = report["recipes_order"]
    docs = {}
    for name in names:
        recipe = report["recipes"][name]
        runs = recipe["runs"]
        docs[name] = per_document(runs)
        recipe["summary"] = {
            PRIMARY: mean_std([r["reference"]["bits_per_byte"] for r in runs]),
            "reference_ci": bootstrap_ratio(*docs[name]),
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
            ci = bootstrap_ratio(docs[a][0] - docs[b][0], docs[a][1])
            c = {"a": a, "b": b, "metric": PRIMARY, **compare(sa, sb, ci)}
            comparisons.append({**c, "sentence": sentence(c)})
    report["noise_rule"] = NOISE_RULE
    report["comparisons"] = comparisons
    if report.get("mc"):
        summarize_mc(report)
    return report


def versus_chance(summary: dict[str, Any], chance: float, chance_std: float) -> str:
    """Apply :data:`CHANCE_RULE`: "above chance", "below chance" or "at chance"."""
    if summary["mean"] is None:
        return "n/a"
    noise = max(summary["std"] or 0.0, chance_std)
    if abs(summary["mean"] - chance) < 2 * noise:
        return "at chance"
    return "above chance" if summary["mean"] > chance else "below chance"


def summarize_mc(report: dict[str, Any]) -> None:
    """Per recipe and task: accuracies over seeds and their verdict against chance; per task and for the
    study, a sentence that says plainly when no arm is above chance."""
    names, mc = report["recipes_order"], report["mc"]
    for name in names:
        recipe = report["recipes"][name]
        recipe["summary"]["mc"] = {}
        for task, info in mc["tasks"].items():
            scores = {m: mean_std([r["mc"][task][m] for r in recipe["runs"]]) for m in MC_METRICS}
            verdicts = {m: versus_chance(scores[m], info["chance"], info["chance_std"]) for m in MC_METRICS}
            recipe["summary"]["mc"][task] = {**scores, "chance": info["chance"], "versus_chance": verdicts}
    anywhere = False
    for task, info in mc["tasks"].items():
        verdicts = {n: report["recipes"][n]["summary"]["mc"][task]["versus_chance"].values() for n in names}
        above = [n for n in names if "above chance" in verdicts[n]]
        below = [n for n in names if "below chance" in verdicts[n] and n not in above]
        anywhere = anywhere or bool(above)
        chance = f"chance ({info['chance']:.3f} ± {info['chance_std']:.3f} for a random guesser on {info['items']} items)"
        if not above and not below:
            info["sentence"] = f"{Path(task).name}: every arm is within noise of {chance}; it does not rank these proxies."
        else:
            parts = [f"{', '.join(group)} {side} {chance} beyond noise"
                     for group, side in ((above, "above"), (below, "below")) if group]
            info["sentence"] = f"{Path(task).name}: {'; '.join(parts)}; any other arm is within noise of it."
    mc["rule"] = CHANCE_RULE
    mc["sentence"] = None if anywhere else (
        "No arm is above chance on any task: at this proxy scale the accuracies say nothing about the recipes, "
        "which is expected for small proxies; compare them by reference bits per byte.")


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


def zoomed_range(lows: Sequence[float], highs: Sequence[float]) -> tuple[float, float]:
    """A y range around the data (10% margin), not from 0: differences of 0.01 bits/byte must show."""
    low, high = min(lows), max(highs)
    pad = max((high - low) * 0.1, 1e-3)
    return low - pad, high + pad


def dot_plot(labels: Sequence[str], summaries: Sequence[dict[str, Any]], cis: Sequence[Sequence[float] | None],
             *, title: str) -> str:
    """Inline SVG: each recipe's mean as a dot, ±1 seed std as a thick bar, the reference bootstrap
    interval as a thin bar with caps; the y axis spans the data only, with 5 labelled ticks."""
    width, height, left, bottom, top = 140 + 120 * len(labels), 320, 80, 50, 30
    spans = []
    for s, ci in zip(summaries, cis, strict=True):
        if s["mean"] is not None:
            std = s["std"] or 0.0
            spans.append((min(s["mean"] - std, *(ci or [s["mean"]])), max(s["mean"] + std, *(ci or [s["mean"]]))))
    lo, hi = zoomed_range([a for a, _ in spans], [b for _, b in spans]) if spans else (0.0, 1.0)
    plot_h = height - bottom - top

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>']
    for tick in range(5):
        v = lo + (hi - lo) * tick / 4
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - 20}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">{v:.4f}</text>')
    for i, (label, s, ci) in enumerate(zip(labels, summaries, cis, strict=True)):
        cx = left + 60 + 120 * i
        if s["mean"] is not None:
            std = s["std"] or 0.0
            if ci:
                parts.append(f'<line x1="{cx}" y1="{y(ci[0]):.1f}" x2="{cx}" y2="{y(ci[1]):.1f}" stroke="#888"/>')
                for v in ci:
                    parts.append(f'<line x1="{cx - 10}" y1="{y(v):.1f}" x2="{cx + 10}" y2="{y(v):.1f}" stroke="#888"/>')
            parts.append(f'<line x1="{cx}" y1="{y(s["mean"] - std):.1f}" x2="{cx}" y2="{y(s["mean"] + std):.1f}" '
                         f'stroke="#1f4e8c" stroke-width="6"/>')
            parts.append(f'<circle cx="{cx}" cy="{y(s["mean"]):.1f}" r="4" fill="#000"/>')
            parts.append(f'<text x="{cx + 14}" y="{y(s["mean"]) + 4:.1f}" font-size="10">{s["mean"]:.4f}</text>')
        parts.append(f'<text x="{cx}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                     f'{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ci(ci: Sequence[float] | None) -> str:
    return "n/a" if not ci else f"{ci[0]:.4f} – {ci[1]:.4f}"


def _overlap(o: dict[str, Any] | None) -> str:
    return "-" if not o else f"{o['fraction']:.2%} ({o['near_copies']} near-copies)"


def render_html(report: dict[str, Any]) -> str:
    names = report["recipes_order"]
    recipes = report["recipes"]
    e = html.escape
    rows = []
    for n in names:
        r, s = recipes[n], recipes[n]["summary"]
        clf = "-" if not r["classifier"] else f"AUC {r['classifier']['auc']:.2f}"
        if r["classifier"] and r["classifier"].get("kept_by_stage") is not None:
            clf += f", kept {r['classifier']['kept_by_stage']:.0%} of what reached it"
        rows.append(
            f"<tr><td>{e(n)}</td><td>{e(', '.join(r['stages']) or '(extraction only)')}</td>"
            f"<td>{r['kept']} / {r['records']}</td><td>{r['tokens']:,}</td><td>{_fmt(s['epochs'], 2)}</td>"
            f"<td>{e(clf)}</td><td><b>{_fmt(s[PRIMARY])}</b></td><td>{_ci(s['reference_ci'])}</td>"
            f"<td>{_fmt(s['own_bits_per_byte'])}</td><td>{_fmt(s['final_train_loss'], 3)}</td>"
            f"<td>{_overlap(r['reference_overlap'])}</td><td>{_overlap(r.get('positives_overlap'))}</td></tr>")
    cross = "".join(
        f"<tr><th>{e(n)}</th>" + "".join(f"<td>{_fmt(recipes[n]['summary']['cross_bits_per_byte'][o])}</td>"
                                          for o in names) + "</tr>" for n in names)
    comps = "".join(
        f"<tr><td>{e(c['a'])} − {e(c['b'])}</td><td>{_num(c['delta'], '+.4f')}</td>"
        f"<td>{_num(c['pooled_std'], '.4f')}</td><td>{_ci(c['ci'])}</td><td>{VERDICTS[c['within_noise']]}</td>"
        f"<td style='text-align:left'>{e(c['sentence'])}</td></tr>" for c in report["comparisons"])
    ref, budget, tok = report["reference"], report["token_budget"], report["tokenizer"]
    scored = recipes[names[0]]["runs"][0]["reference"]
    plot = dot_plot(names, [recipes[n]["summary"][PRIMARY] for n in names],
                    [recipes[n]["summary"]["reference_ci"] for n in names],
                    title="reference bits per byte: mean, ±1 seed std (thick), 95% reference bootstrap (thin); "
                          "lower is better")
    under = "" if budget["tokens"] >= budget["rule"] else (
        f" <b>That is {budget['tokens'] / budget['rule']:.2%} of the rule of 20 tokens per parameter "
        f"({budget['rule']:,}): an undertrained proxy may not separate curated arms.</b>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>refinery ablation</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
</head><body><h1>Curation ablation</h1>
<p>Every recipe curated the same input ({report['input_files']} file(s)). One tokenizer,
{tok['vocab_size']} pieces, vocabulary sha256 <code>{e(tok['vocab_sha256'])}</code> (file {e(tok['sha256'][:12])}) (trained on {e(str(tok['trained_on']))}, never on
an arm), tokenized all of them. Each run trained {e(Path(report['model']).name)}
({report['model_params']:,} parameters) from scratch for {budget['steps']} steps × {budget['tokens_per_step']:,} =
<b>{budget['tokens']:,} tokens</b> ({budget['tokens_per_param']:.3g} per parameter), context
{report['train_config']['seq_len']}, seeds {report['seeds']}.{under} A recipe with fewer tokens repeats its data
(epochs column).</p>
<h2>Reference</h2><p>{ref['documents']} documents, {ref['bytes']:,} bytes, {ref['tokens']:,} tokens from
{e(', '.join(ref['roots']))}. Every model scored <b>{scored['tokens_scored']:,} tokens</b> (every token after the first)
in {scored['windows']:,} windows of {scored['seq_len']} starting every {scored['stride']} tokens. Overlap with what the
arms learned from is measured as the share of the reference's 13-grams found there (an error above
{ref['max_overlap']:.0%}).</p>
{plot}
<table><tr><th>recipe</th><th>stages</th><th>kept / records</th><th>tokens</th><th>epochs</th><th>classifier</th>
<th>reference bits/byte (seeds)</th><th>95% reference interval</th><th>own held-out bits/byte</th>
<th>final train loss</th><th>reference in kept text</th><th>reference in positives</th></tr>{''.join(rows)}</table>
<h2>Is a difference real?</h2><p>Rule: {e(report['noise_rule'])}.</p>
<table><tr><th>pair</th><th>Δ mean bits/byte</th><th>pooled seed std</th><th>95% reference interval of Δ</th>
<th>verdict</th><th>in words</th></tr>{comps}</table>
<h2>Cross matrix: bits per byte of the model trained on (row) on the held-out split of (column)</h2>
<p>A recipe's held-out split is the windows its loader never trains on; the documents behind another recipe's
split may be in a row's training data (recipes overlap), so off-diagonal cells are optimistic.</p>
<table><tr><th>trained on \\ evaluated on</th>{''.join(f'<th>{e(n)}</th>' for n in names)}</tr>{cross}</table>
{mc_section(report)}</body></html>
"""


def mc_section(report: dict[str, Any]) -> str:
    """The downstream-task table: per task and recipe, accuracy over seeds (mean ± std, and each seed),
    the random-guess baseline and the verdict against it; empty without ``--mc-tasks``."""
    mc = report.get("mc")
    if not mc:
        return ""
    e, names, recipes = html.escape, report["recipes_order"], report["recipes"]
    rows = []
    for task, info in mc["tasks"].items():
        for n in names:
            s = recipes[n]["summary"]["mc"][task]
            seeds = ", ".join(f"{r['seed']}: {r['mc'][task]['acc']:.3f}" for r in recipes[n]["runs"])
            verdict = "; ".join(f"{m} {v}" for m, v in s["versus_chance"].items())
            rows.append(f"<tr><td>{e(Path(task).name)}</td><td>{info['items']}</td>"
                        f"<td>{info['chance']:.3f} ± {info['chance_std']:.3f}</td><td>{e(n)}</td>"
                        f"<td><b>{_fmt(s['acc'], 3)}</b></td><td>{_fmt(s['acc_norm'], 3)}</td><td>{e(seeds)}</td>"
                        f"<td>{e(verdict)}</td></tr>")
    sentences = [info["sentence"] for info in mc["tasks"].values()] + ([mc["sentence"]] if mc["sentence"] else [])
    return f"""<h2>Downstream multiple-choice tasks ({mc['shots']}-shot)</h2>
<p>Each run scored by <code>refinery eval-mc</code>'s evaluator: a choice is the model's answer when its
log-likelihood is the highest (acc) or the highest per byte (acc_norm). Chance is the mean of 1/choices over the
items scored, ± the standard deviation of a random guesser's accuracy. Rule: {e(mc['rule'])}.</p>
<table><tr><th>task</th><th>items</th><th>chance</th><th>recipe</th><th>acc (seeds)</th><th>acc_norm (seeds)</th>
<th>acc per seed</th><th>versus chance</th></tr>{''.join(rows)}</table>
{''.join(f'<p>{e(line)}</p>' for line in sentences)}
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
        lines.append(f"  {c['sentence']}")
    if report.get("mc"):
        for task, info in report["mc"]["tasks"].items():
            scores = ", ".join(f"{n} {_fmt(report['recipes'][n]['summary']['mc'][task]['acc'], 3)}"
                               for n in report["recipes_order"])
            lines.append(f"  {Path(task).name} acc (chance {info['chance']:.3f}): {scores}")
            lines.append(f"  {info['sentence']}")
        if report["mc"]["sentence"]:
            lines.append(f"  {report['mc']['sentence']}")
    lines.append(f"wrote {result.json_path} and {result.html_path}")
    return "\n".join(lines)
