"""The report's first screen: what is in the mixture, how much, and what was thrown away.

Runs are grouped by their source (``stats.json``'s ``run.source``): a source curated in one run and
tokenized (and perhaps scored by the classifier) in a second is one source, its funnel the first run's
stages followed by the second's. Per source and in total the overview gives the whole funnel from
records to kept tokens, and across every run the drop reasons ranked by the tokens they removed,
because a reason that drops many short pages matters less than one that drops a few long ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TOP_REASONS = 12
PASS_THROUGH = "ReadDocuments"  # a second run's reader: its input is the first run's output


def group_runs(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs grouped into sources, in the order given: a run that reads documents (its first stage
    is ``ReadDocuments``, a tokenizing run) joins the last group of its source; any other run starts
    a group. A source with several groups (two curations of one crawl) labels each by its first run."""
    groups: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        source = run.get("source") or run["name"]
        first = run["funnel"][0]["stage"] if run.get("funnel") else None
        joined = [g for g in groups if g["source"] == source] if first == PASS_THROUGH else []
        if joined:
            joined[-1]["runs"].append(i)
        else:
            groups.append({"source": source, "label": source, "runs": [i]})
    for g in groups:
        if sum(other["source"] == g["source"] for other in groups) > 1:
            g["label"] = f"{g['source']} ({runs[g['runs'][0]]['name']})"
    return groups


def chained_funnel(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stages of a source's runs as one funnel, each row named by its run; a second run's
    pass-through reader (nothing dropped) is left out, its numbers being the previous run's output."""
    rows = []
    for run in runs:
        for stage in run["funnel"]:
            if rows and stage["stage"] == PASS_THROUGH and not stage["dropped"]:
                continue
            rows.append({**stage, "run": run["name"]})
    return rows


def source_funnel(source: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Records -> kept documents -> kept tokens for one source, with the tokens its drops removed."""
    first, last = runs[0], runs[-1]
    dropped_tokens = [_dropped_tokens(run) for run in runs]
    known = all(t is not None for t in dropped_tokens)
    kept_tokens = last["funnel"][-1].get("tokens_out") if last["funnel"] else None
    dropped = sum(dropped_tokens) if known else None
    return {"source": source, "runs": [r["name"] for r in runs],
            "records": first["totals"].get("records"), "kept": last["totals"].get("kept"),
            "tokens_kept": kept_tokens, "tokens_dropped": dropped,
            "tokens_in": kept_tokens + dropped if kept_tokens is not None and dropped is not None else None}


def _dropped_tokens(run: dict[str, Any]) -> int | None:
    """Tokens a run's drops removed: counted from its rejects, 0 when it dropped nothing, else unknown."""
    if run["tokens_per_reason"]:
        return sum(sum(s.get("reason_tokens", {}).values()) for s in run["funnel"])
    return 0 if all(not s["dropped"] for s in run["funnel"]) else None


def top_reasons(runs: Sequence[dict[str, Any]], n: int = TOP_REASONS) -> list[dict[str, Any]]:
    """Drop reasons over every run, most tokens first (documents break ties and rank untokenized runs)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        for stage in run["funnel"]:
            for reason, docs in stage["reasons"].items():
                row = merged.setdefault((stage["stage"], reason), {"stage": stage["stage"], "reason": reason,
                                                                  "documents": 0, "tokens": 0, "sources": []})
                row["documents"] += docs
                tokens = stage.get("reason_tokens", {}).get(reason) if run["tokens_per_reason"] else None
                row["tokens"] = None if tokens is None or row["tokens"] is None else row["tokens"] + tokens
                if run["source"] not in row["sources"]:
                    row["sources"].append(run["source"])
    rows = sorted(merged.values(), key=lambda r: (-(r["tokens"] or 0), -r["documents"]))
    return rows[:n]


def overview(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-source funnels, their total, and the top drop reasons; see the module docstring."""
    groups = group_runs(runs)
    sources = [source_funnel(g["label"], [runs[i] for i in g["runs"]]) for g in groups]
    total: dict[str, Any] = {"source": "all sources", "runs": [r["name"] for r in runs]}
    for key in ("records", "kept", "tokens_kept", "tokens_dropped", "tokens_in"):
        values = [s[key] for s in sources]
        total[key] = sum(values) if values and all(v is not None for v in values) else None
    return {"groups": groups, "sources": sources, "total": total, "top_reasons": top_reasons(runs)}
