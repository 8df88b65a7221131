"""The held-out eval of a trained checkpoint, for the report: what ``refinery eval`` wrote (eval.json).

The mixture DAG and the demo write it beside the checkpoint (``<pretrain>/eval.json``); the report
takes it with ``--eval`` or finds it there, next to the mixture (``<mixture dir>/pretrain/eval.json``).
A source the run held nothing out of has no windows, and its loss is NaN in eval.json: the table
shows it as "–" with a note, rather than a number that is not one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pipeline.run_stats import RunStatsError

EVAL_NAME = "eval.json"
_METRICS = ("windows", "tokens", "bytes", "loss", "perplexity", "bits_per_byte")


def find_eval(mixture: str | Path | None) -> Path | None:
    """``pretrain/eval.json`` beside a mixture.json, where the DAG and the demo put it; None if absent."""
    if mixture is None:
        return None
    candidate = Path(mixture).parent / "pretrain" / EVAL_NAME
    return candidate if candidate.is_file() else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if isinstance(value, float) and not math.isfinite(value) else value


def eval_section(path: str | Path) -> dict[str, Any]:
    """Rows per source and overall; a file that is not an eval.json is a one-line RunStatsError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunStatsError(f"{path}: cannot read eval: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict) or not isinstance(data.get("all"), dict):
        raise RunStatsError(f"{path}: not an eval.json from `refinery eval` (needs 'sources' and 'all')")
    rows = []
    for name, scores in [*data["sources"].items(), ("all", data["all"])]:
        if not isinstance(scores, dict):
            raise RunStatsError(f"{path}: source '{name}' has no scores")
        rows.append({"source": name, **{m: _number(scores.get(m)) for m in _METRICS}})
    return {"path": str(path), "checkpoint": data.get("checkpoint"), "step": data.get("step"),
            "seq_len": data.get("seq_len"), "max_windows": data.get("max_windows"), "rows": rows,
            "unscored": [r["source"] for r in rows if not r["windows"]]}
