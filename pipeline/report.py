"""``refinery report``: what a run kept and why it dropped the rest, as report.json and one HTML page.

The numbers come from pipeline.run_stats (the same frames a notebook gets), so the page and a
notebook never disagree. Each part appears only when the run has what it needs: the funnel and
the samples need stats.json / documents, rejected samples and rejected-score histograms need
``rejects/``, the dedup section needs ``clusters/``, token counts need ``shards/``. A missing part
is said so on the page rather than failing the report.

Tokens in the funnel: the kept tokens are the manifest's. When the run also wrote rejects and its
shard directory holds the tokenizer, the dropped documents are encoded too (streamed, the same
separators counted as the shards have), so every stage and reason gets exact tokens in and out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm
from tqdm import tqdm

from pipeline import estimate
from pipeline.report_html import render
from pipeline.run_stats import DOCUMENTS_DIR, REJECTS_DIR, RunStats, RunStatsError, load_run

SAMPLE_CHARS = 600
HISTOGRAM_BINS = 20
TOKENIZER_COPY = "tokenizer.model"


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + " …"


def funnel_section(run: RunStats, reject_tokens: dict[tuple[str, str], int] | None) -> list[dict[str, Any]]:
    """Per stage: documents in/out/dropped per reason, and tokens where the run has shards."""
    rows = [dict(s) for s in run.stats.get("funnel", [])]
    kept_tokens = run.tokens
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


def count_reject_tokens(run: RunStats) -> dict[tuple[str, str], int] | None:
    """Tokens of every dropped document, by (stage, reason), as the shards would have counted them."""
    manifests = list(run.manifests.values())
    if not manifests or not run.has_rejects:
        return None
    tokenizer = manifests[0].dir / TOKENIZER_COPY
    if not tokenizer.is_file():
        return None
    processor = spm.SentencePieceProcessor(model_file=str(tokenizer))
    separators = 1 + (manifests[0].bos_id is not None)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    batches = run.batches(REJECTS_DIR, ["stage", "reason", "text"])
    for batch in tqdm(batches, desc="tokens of rejects", unit="batch", leave=False):
        stages, reasons, texts = (batch.column(i).to_pylist() for i in range(3))
        for stage, reason, ids in zip(stages, reasons, processor.encode([t or "" for t in texts]), strict=True):
            counts[(stage, reason)] += len(ids) + separators if ids else 0
    return dict(counts)


def _histogram(values: dict[str, np.ndarray], low: float | None = None, high: float | None = None) -> dict[str, Any] | None:
    present = {k: v[~np.isnan(v)] for k, v in values.items()}
    present = {k: v for k, v in present.items() if v.size}
    if not present:
        return None
    everything = np.concatenate(list(present.values()))
    low = float(everything.min()) if low is None else low
    high = float(everything.max()) if high is None else high
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {"edges": edges.tolist(),
            "series": {k: np.histogram(v, bins=edges)[0].tolist() for k, v in present.items()},
            "documents": {k: int(v.size) for k, v in present.items()}}


def scores_section(run: RunStats) -> dict[str, Any]:
    """Histograms of lang_score and quality_score, kept vs dropped (when rejects exist)."""
    columns = ["lang_score", "quality_score"]
    frames = {"kept": run.documents(columns), "dropped": run.rejects(columns)}
    result = {}
    for column, bounds in (("lang_score", (0.0, 1.0)), ("quality_score", (None, None))):
        values = {k: f[column].to_numpy(dtype=float, na_value=np.nan) for k, f in frames.items() if column in f}
        result[column] = _histogram(values, *bounds)
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
        "clusters": int(len(per_cluster)),
        "documents_in_clusters": int(len(clusters)),
        "removed": removed,
        "minhash_in": minhash_in,
        "removed_fraction": removed / minhash_in if minhash_in else None,
        "exact_removed": funnel.get("ExactDedup", {}).get("dropped"),
        "size_distribution": {str(int(k)): int(v) for k, v in sizes.items()},
        "largest": [{"cluster_id": cid, "size": int(size)} for cid, size in per_cluster.nlargest(5).items()],
    }


def samples_section(run: RunStats, per_reason: int) -> dict[str, Any]:
    fields = ["id", "url", "lang", "quality_score", "text"]
    kept: list[dict[str, Any]] = []
    for batch in run.batches(DOCUMENTS_DIR, fields, batch_size=max(per_reason * 2, 1)):
        kept = [{**row, "text": _cut(row.get("text"))} for row in batch.to_pylist()]
        break
    rejected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for batch in run.batches(REJECTS_DIR, ["stage", "reason", *fields]):
        for row in batch.to_pylist():
            key = f"{row['stage']} / {row['reason']}"
            if len(rejected[key]) < per_reason:
                rejected[key].append({**row, "text": _cut(row.get("text"))})
    return {"kept": kept, "rejected": dict(sorted(rejected.items())), "have_rejects": run.has_rejects}


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


def run_section(run: RunStats, samples: int = 2,
                price_per_core_hour: float = estimate.DEFAULT_PRICE_PER_CORE_HOUR) -> dict[str, Any]:
    manifests = run.manifests
    reject_tokens = count_reject_tokens(run)
    return {
        "path": str(run.path),
        "source": run.stats.get("run", {}).get("source"),
        "totals": run.totals,
        "funnel": funnel_section(run, reject_tokens),
        "tokens_per_reason": reject_tokens is not None,
        "files": run.files.to_dict(orient="records"),
        "languages": {str(k): int(v) for k, v in run.languages().items()},
        "scores": scores_section(run),
        "dedup": dedup_section(run),
        "shards": [{"source": name, "tokens": m.tokens, "documents": m.documents, "shards": len(m.shards),
                    "disk_bytes": m.disk_bytes, "dtype": m.dtype, "vocab_size": m.vocab_size,
                    "tokenizer_sha256": m.tokenizer_sha256} for name, m in manifests.items()],
        "samples": samples_section(run, samples),
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


def report(run_dirs: Sequence[str | Path], output_dir: str | Path, mixture: str | Path | None = None,
           *, samples: int = 2, price_per_core_hour: float = estimate.DEFAULT_PRICE_PER_CORE_HOUR) -> Path:
    """Write report.json and report.html under ``output_dir``; returns the HTML's path."""
    runs = [load_run(d) for d in run_dirs]
    data = {"runs": [run_section(r, samples, price_per_core_hour) for r in runs],
            "mixture": mixture_section(mixture) if mixture else None}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render(data), encoding="utf-8")
    return html_path


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery report RUN_DIR...``: 0 written, 2 not a run / unreadable input (one line)."""
    parser = argparse.ArgumentParser(
        prog="refinery report", description="Write report.html and report.json for runs.", allow_abbrev=False
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--mixture", default=None, help="mixture.json from `refinery mix`")
    parser.add_argument("--out", default=None, help="output directory (default: the first RUN_DIR)")
    parser.add_argument("--samples", type=int, default=2, help="sample documents per drop reason (default 2)")
    parser.add_argument("--price-per-core-hour", type=float, default=estimate.DEFAULT_PRICE_PER_CORE_HOUR,
                        help=f"{estimate.CURRENCY} per core-hour for the Cost table "
                             f"(default {estimate.DEFAULT_PRICE_PER_CORE_HOUR:g})")
    args = parser.parse_args(argv)
    try:
        path = report(args.runs, args.out or args.runs[0], args.mixture, samples=args.samples,
                      price_per_core_hour=args.price_per_core_hour)
    except RunStatsError as exc:
        print(f"refinery report: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_name('report.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
