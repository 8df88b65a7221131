"""``refinery report --compare RUN_A RUN_B``: what changed between two runs of the same input.

The question asked most of a curation run is "what did changing this threshold do?". Two runs of
the same input have the same document ids (ids come from the WARC record, see filters.document), so
the comparison can name the documents themselves: those kept only by A (and the reason B dropped
them, read from B's rejects) and those kept only by B, with samples of each, beside the counts per
stage and reason, the kept tokens and the score distributions on shared bins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.report_paths import Portable
from pipeline.report_scan import cut, domain
from pipeline.run_stats import DOCUMENTS_DIR, RunStats, RunStatsError, load_run

HISTOGRAM_BINS = 20
SCORES = ("lang_score", "quality_score")


def _counts(runs: Sequence[RunStats]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stages and (stage, reason) pairs in the order they first appear, with each run's numbers."""
    stages: dict[str, dict[str, Any]] = {}
    reasons: dict[tuple[str, str], dict[str, Any]] = {}
    for side, run in zip("ab", runs, strict=True):
        for s in run.stats.get("funnel", []):
            row = stages.setdefault(s["stage"], {"stage": s["stage"]})
            row.update({f"{side}_in": s["in"], f"{side}_dropped": s["dropped"], f"{side}_out": s["out"]})
            for reason, n in s["reasons"].items():
                reasons.setdefault((s["stage"], reason), {"stage": s["stage"], "reason": reason})[side] = n
    for row in reasons.values():
        row["delta"] = row.get("b", 0) - row.get("a", 0)
    return list(stages.values()), list(reasons.values())


def _scores(runs: Sequence[RunStats]) -> dict[str, Any]:
    """Kept documents' scores of both runs on the same bins, so the bars compare."""
    result: dict[str, Any] = {}
    for column in SCORES:
        values = {}
        for name, run in zip(("A", "B"), runs, strict=True):
            frame = run.documents([column])
            if column in frame:
                v = frame[column].to_numpy(dtype=float, na_value=np.nan)
                values[name] = v[~np.isnan(v)]
        present = {k: v for k, v in values.items() if v.size}
        if not present:
            result[column] = None
            continue
        both = np.concatenate(list(present.values()))
        low, high = float(both.min()), float(both.max())
        edges = np.linspace(low, high if high > low else low + 1.0, HISTOGRAM_BINS + 1)
        result[column] = {"edges": edges.tolist(), "series": {k: np.histogram(v, bins=edges)[0].tolist()
                                                              for k, v in present.items()}}
    return result


def _kept_ids(run: RunStats) -> set[str]:
    return set(run.documents(["id"]).get("id", []))


def _only(run: RunStats, ids: set[str], other: RunStats, samples: int) -> dict[str, Any]:
    """Documents of ``run`` whose ids are in ``ids``: how many, why ``other`` dropped them, samples."""
    why: dict[str, int] = {}
    if ids and other.has_rejects:
        dropped = other.rejects(["id", "stage", "reason"])
        dropped = dropped[dropped["id"].isin(ids)]
        why = {f"{s} / {r}": int(n) for (s, r), n in dropped.groupby(["stage", "reason"]).size().items()}
    shown = []
    for batch in run.batches(DOCUMENTS_DIR, ["id", "url", "text"]):
        for row in batch.to_pylist():
            if row["id"] in ids and len(shown) < samples:
                shown.append({**row, "domain": domain(row.get("url")), "text": cut(row.get("text"))})
        if len(shown) >= samples:
            break
    return {"documents": len(ids), "dropped_by_other": dict(sorted(why.items(), key=lambda kv: -kv[1])),
            "samples": shown}


def compare_data(run_a: str | Path, run_b: str | Path, samples: int = 5) -> dict[str, Any]:
    runs = [load_run(run_a), load_run(run_b)]
    stages, reasons = _counts(runs)
    ids = [_kept_ids(r) for r in runs]
    return {"a": {"name": runs[0].path.name, "path": str(runs[0].path), "totals": runs[0].totals,
                  "tokens": runs[0].tokens},
            "b": {"name": runs[1].path.name, "path": str(runs[1].path), "totals": runs[1].totals,
                  "tokens": runs[1].tokens},
            "stages": stages, "reasons": reasons, "scores": _scores(runs), "both": len(ids[0] & ids[1]),
            "only_a": _only(runs[0], ids[0] - ids[1], runs[1], samples),
            "only_b": _only(runs[1], ids[1] - ids[0], runs[0], samples)}


def compare(run_a: str | Path, run_b: str | Path, output_dir: str | Path, *, samples: int = 5) -> Path:
    """Write compare.json and compare.html under ``output_dir``; returns the HTML's path."""
    from pipeline.report_compare_html import render_compare

    if Path(run_a).resolve() == Path(run_b).resolve():
        raise RunStatsError(f"{run_a}: --compare needs two different runs")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Portable(out).data(compare_data(run_a, run_b, max(samples, 1)))
    (out / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    page = out / "compare.html"
    page.write_text(render_compare(data), encoding="utf-8")
    return page
