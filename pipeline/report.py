"""``refinery report``: what a run kept and why it dropped the rest, as report.json and one HTML page.

The numbers come from pipeline.run_stats (the same frames a notebook gets), so the page and a
notebook never disagree. Each part appears only when the runs have what it needs: the funnel needs
stats.json, rejected samples and per-reason tokens need ``rejects/``, the dedup section needs
``clusters/``, token counts need a tokenizer (``shards/``, of the run or of its source's other run).
A missing part is said so on the page rather than failing the report.

The page opens on an overview (pipeline.report_overview): the mixture, the funnel from records to
kept tokens over every source, the drop reasons ranked by tokens, the token-budget planner
(pipeline.report_plan) and the eval of a trained checkpoint (pipeline.report_eval). Every path in
the page and in report.json is relative to the report or named by its run (pipeline.report_paths).
``--compare RUN_A RUN_B`` writes a comparison of two runs instead (pipeline.report_compare).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import estimate
from pipeline.output_dir import RUN_INFO
from pipeline.report_eval import eval_section, find_eval
from pipeline.report_html import render
from pipeline.report_overview import group_runs, overview
from pipeline.report_paths import Portable
from pipeline.report_plan import DEFAULT_MFU, H100_BF16_DENSE_TFLOPS, PlanError, plan
from pipeline.report_scan import Scan, length_summary, scan_run
from pipeline.run_stats import RunStats, RunStatsError, load_run

HISTOGRAM_BINS = 20
TOKENIZER_COPY = "tokenizer.model"
# The score a stage keeps documents at, by score column: (stage in the recipe, its config section).
THRESHOLDS = {"lang_score": "langid", "quality_score": "quality_classifier"}


def funnel_section(run: RunStats, reject_tokens: dict[tuple[str, str], int] | None,
                   kept_tokens: int | None) -> list[dict[str, Any]]:
    """Per stage: documents in/out/dropped per reason, and tokens where a tokenizer is known."""
    rows = [dict(s) for s in run.stats.get("funnel", [])]
    if kept_tokens is None or reject_tokens is None:
        for row in rows:
            row["tokens_out"] = kept_tokens if row is rows[-1] else None
        return rows
    remaining = kept_tokens
    for row in reversed(rows):
        dropped = {r: reject_tokens.get((row["stage"], r), 0) for r in row["reasons"]}
        row["tokens_out"] = remaining
        row["tokens_dropped"] = sum(dropped.values())
        row["reason_tokens"] = dropped
        remaining += row["tokens_dropped"]
        row["tokens_in"] = remaining
    return rows


def _histogram(values: dict[str, np.ndarray], marks: Sequence[float] = ()) -> dict[str, Any] | None:
    """Counts per bin on bins fitted to the data (and to the thresholds ``marks``, so they show)."""
    present = {k: v[~np.isnan(v)] for k, v in values.items()}
    present = {k: v for k, v in present.items() if v.size}
    if not present:
        return None
    everything = np.concatenate([*present.values(), np.asarray(marks, dtype=float)])
    low, high = float(everything.min()), float(everything.max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {"edges": edges.tolist(),
            "series": {k: np.histogram(v, bins=edges)[0].tolist() for k, v in present.items()},
            "documents": {k: int(v.size) for k, v in present.items()}}


def thresholds(run: RunStats) -> dict[str, float]:
    """Score column -> the ``min_score`` its stage kept documents at, for the stages the run ran."""
    try:
        config = json.loads((run.path / RUN_INFO).read_text(encoding="utf-8")).get("config") or {}
    except (OSError, ValueError):
        return {}
    found = {}
    for column, section in THRESHOLDS.items():
        value = (config.get(section) or {}).get("min_score")
        if section in (config.get("stages") or []) and isinstance(value, int | float):
            found[column] = float(value)
    return found


def scores_section(run: RunStats) -> dict[str, Any]:
    """Histograms of lang_score and quality_score, kept vs dropped, with the thresholds applied."""
    columns = list(THRESHOLDS)
    frames = {"kept": run.documents(columns), "dropped": run.rejects(columns)}
    marks = thresholds(run)
    result: dict[str, Any] = {}
    for column in columns:
        values = {k: f[column].to_numpy(dtype=float, na_value=np.nan) for k, f in frames.items() if column in f}
        hist = _histogram(values, [marks[column]] if column in marks else [])
        if hist is not None:
            hist["threshold"] = marks.get(column)
        result[column] = hist
    return result


def dedup_section(run: RunStats) -> dict[str, Any] | None:
    clusters = run.clusters()
    if clusters is None:
        return None
    per_cluster = clusters.groupby("cluster_id")["cluster_size"].first()
    sizes = per_cluster.value_counts().sort_index()
    removed = int((~clusters["kept"]).sum())
    funnel = {s["stage"]: s for s in run.stats.get("funnel", [])}
    minhash_in = funnel.get("MinHashDedup", {}).get("in")
    return {
        "clusters": len(per_cluster),
        "documents_in_clusters": len(clusters),
        "removed": removed,
        "minhash_in": minhash_in,
        "removed_fraction": removed / minhash_in if minhash_in else None,
        "exact_removed": funnel.get("ExactDedup", {}).get("dropped"),
        "size_distribution": {str(int(k)): int(v) for k, v in sizes.items()},
        "largest": [{"cluster_id": cid, "size": int(size)} for cid, size in per_cluster.nlargest(5).items()],
    }


def cost_section(run: RunStats, price_per_core_hour: float = estimate.DEFAULT_PRICE_PER_CORE_HOUR) -> dict[str, Any] | None:
    """The run's own core-hours, cost and output in `refinery estimate`'s columns; None when
    stats.json lacks the figures (an older run, or a runner whose CPU was not on this machine)."""
    cost = estimate.run_cost(run.stats, run.path, price_per_core_hour, tokens=run.tokens)
    if cost is None:
        return None
    return {"price_per_core_hour": price_per_core_hour, "currency": estimate.CURRENCY,
            "columns": list(estimate.PROJECTION_COLUMNS), "row": estimate.projection_row(cost),
            "rate_columns": list(estimate.RATE_COLUMNS), "rate_row": estimate.rate_row(cost),
            "notes": estimate.assumption_notes([cost], estimate.DEFAULT_BYTES_PER_TOKEN),
            "figures": cost.as_dict()}


def tokenizer_of(runs: Sequence[RunStats]) -> tuple[Path | None, bool]:
    """The tokenizer copied beside any of these runs' shards, and whether it writes BOS."""
    for run in runs:
        for manifest in run.manifests.values():
            if (manifest.dir / TOKENIZER_COPY).is_file():
                return manifest.dir / TOKENIZER_COPY, manifest.bos_id is not None
    return None, False


def run_section(run: RunStats, samples: int = 2,
                price_per_core_hour: float = estimate.DEFAULT_PRICE_PER_CORE_HOUR,
                tokenizer: tuple[Path | None, bool] | None = None) -> dict[str, Any]:
    """Everything the page shows of one run; ``tokenizer`` defaults to the run's own."""
    manifests = run.manifests
    scan: Scan = scan_run(run, *(tokenizer or tokenizer_of([run])), samples)
    kept_tokens = run.tokens if run.tokens is not None else scan.kept_tokens
    return {
        "name": run.path.name,
        "path": str(run.path),
        "source": run.stats.get("run", {}).get("source") or run.path.name,
        "totals": run.totals,
        "funnel": funnel_section(run, scan.reason_tokens, kept_tokens),
        "tokens_per_reason": scan.reason_tokens is not None,
        "files": run.files.to_dict(orient="records"),
        "languages": {str(k): int(v) for k, v in run.languages().items()},
        "scores": scores_section(run),
        "lengths": length_summary(scan.kept_lengths),
        "domains": scan.top_domains(),
        "dedup": dedup_section(run),
        "shards": [{"source": name, "tokens": m.tokens, "documents": m.documents, "shards": len(m.shards),
                    "disk_bytes": m.disk_bytes, "dtype": m.dtype, "vocab_size": m.vocab_size,
                    "tokenizer_sha256": m.tokenizer_sha256} for name, m in manifests.items()],
        "samples": {"kept": scan.kept_samples, "rejected": dict(sorted(scan.rejected_samples.items())),
                    "have_rejects": run.has_rejects},
        "cost": cost_section(run, price_per_core_hour),
    }


def mixture_section(path: str | Path) -> dict[str, Any]:
    """The mixture table against its recipe, from mixture.json (with `refinery mix`'s plan)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunStatsError(f"{path}: cannot read mixture: {exc}") from None
    if not isinstance(data, dict) or "sources" not in data:
        raise RunStatsError(f"{path}: not a mixture.json (no 'sources' key)")
    plan = data.get("plan") or {}
    rows = plan.get("sources") or [{**s, "recipe_key": s["name"], "target_weight": s["weight"], "used": True}
                                   for s in data["sources"]]
    total_tokens = sum(r["tokens"] for r in rows) or 1
    for row in rows:
        row["token_share"] = row["tokens"] / total_tokens
    return {"path": str(path), "token_budget": data.get("token_budget"), "recipe": plan.get("recipe"),
            "reference": plan.get("reference"), "max_epochs": plan.get("max_epochs"), "sources": rows,
            "warnings": plan.get("warnings", []), "scaling": plan.get("scaling"), "tokenizer": data.get("tokenizer")}


def plan_section(mixture: dict[str, Any] | None, model_params: float | None, mfu: float,
                 peak_tflops: float) -> dict[str, Any] | None:
    """The token-budget planner, when a model size is known (given, or in mixture.json's plan)."""
    scaling = (mixture or {}).get("scaling") or {}
    params = model_params or scaling.get("model_params")
    if not params:
        return None
    sources = [s for s in (mixture or {}).get("sources", []) if s.get("used", True)]
    return plan(params, (mixture or {}).get("token_budget"), sources, max_epochs=(mixture or {}).get("max_epochs"),
                mfu=mfu, peak_tflops=peak_tflops)


def report(run_dirs: Sequence[str | Path], output_dir: str | Path, mixture: str | Path | None = None,
           *, samples: int = 2, price_per_core_hour: float = estimate.DEFAULT_PRICE_PER_CORE_HOUR,
           eval_path: str | Path | None = None, model_params: float | None = None, mfu: float = DEFAULT_MFU,
           peak_tflops: float = H100_BF16_DENSE_TFLOPS) -> Path:
    """Write report.json and report.html under ``output_dir``; returns the HTML's path.

    ``eval_path`` defaults to ``pretrain/eval.json`` beside the mixture when there is one."""
    runs = [load_run(d) for d in run_dirs]
    mixture_data = mixture_section(mixture) if mixture else None  # bad inputs fail before the long scan
    eval_file = eval_path or find_eval(mixture)
    found_eval = eval_section(eval_file) if eval_file else None
    try:
        planner = plan_section(mixture_data, model_params, mfu, peak_tflops)
    except PlanError as exc:
        raise RunStatsError(str(exc)) from None
    sections: list[dict[str, Any] | None] = [None] * len(runs)
    for group in group_runs([{"source": r.stats.get("run", {}).get("source"), "name": r.path.name,
                              "funnel": r.stats.get("funnel", [])} for r in runs]):
        members = [runs[i] for i in group["runs"]]
        tokenizer = tokenizer_of(members)  # a curated run's drops get the tokens of its tokenized twin
        for i in group["runs"]:
            sections[i] = run_section(runs[i], samples, price_per_core_hour, tokenizer)
    data = {"overview": overview(sections), "plan": planner, "eval": found_eval,
            "mixture": mixture_data, "runs": sections}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Portable(out).data(data)
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render(data), encoding="utf-8")
    return html_path


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery report RUN_DIR...`` or ``--compare RUN_A RUN_B``: 0 written, 2 bad input (one line)."""
    parser = argparse.ArgumentParser(
        prog="refinery report", description="Write report.html and report.json for runs.", allow_abbrev=False
    )
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR")
    parser.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), default=None,
                        help="compare two runs of the same input (writes compare.html and compare.json)")
    parser.add_argument("--mixture", default=None, help="mixture.json from `refinery mix`")
    parser.add_argument("--eval", default=None, dest="eval_path",
                        help="eval.json from `refinery eval` (default: pretrain/eval.json beside the mixture)")
    parser.add_argument("--model-params", type=float, default=None,
                        help="target model size (e.g. 7e9) for the token-budget planner (default: the mixture's)")
    parser.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                        help=f"model FLOPs utilization the planner assumes (default {DEFAULT_MFU:g})")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS,
                        help=f"per-GPU peak the planner assumes (default {H100_BF16_DENSE_TFLOPS:g}, H100 dense BF16)")
    parser.add_argument("--out", default=None, help="output directory (default: the first RUN_DIR)")
    parser.add_argument("--samples", type=int, default=2, help="sample documents per drop reason (default 2)")
    parser.add_argument("--price-per-core-hour", type=float, default=estimate.DEFAULT_PRICE_PER_CORE_HOUR,
                        help=f"{estimate.CURRENCY} per core-hour for the Cost table "
                             f"(default {estimate.DEFAULT_PRICE_PER_CORE_HOUR:g})")
    args = parser.parse_args(argv)
    if bool(args.runs) == bool(args.compare):
        parser.error("give RUN_DIR... or --compare RUN_A RUN_B (one of the two)")
    try:
        if args.compare:
            from pipeline.report_compare import compare

            path = compare(*args.compare, args.out or args.compare[1], samples=args.samples)
        else:
            path = report(args.runs, args.out or args.runs[0], args.mixture, samples=args.samples,
                          price_per_core_hour=args.price_per_core_hour, eval_path=args.eval_path,
                          model_params=args.model_params, mfu=args.mfu, peak_tflops=args.peak_tflops)
    except RunStatsError as exc:
        print(f"refinery report: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
