"""report.html from the report's data: one self-contained page (inline CSS, SVG and one small script).

Order: the overview (pipeline.report_html_overview), then one collapsed section per source, its runs
(curated, then tokenized) shown as one funnel (pipeline.report_html_run), then the sample browser
(pipeline.report_html_samples). Element ids are stable, so tests and people can link into the page.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from pipeline import report_html_run as part
from pipeline.report_html_base import CSS, big, num
from pipeline.report_html_overview import render_overview
from pipeline.report_html_samples import samples
from pipeline.report_overview import chained_funnel


def slug(name: str) -> str:
    """An id-safe form of a source name (``commoncrawl/CC-MAIN-2024-22`` -> ``commoncrawl-CC-MAIN-2024-22``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "source"


def _source(key: str, overview_row: dict[str, Any], indices: list[int], runs: list[dict[str, Any]]) -> str:
    members = [runs[i] for i in indices]
    summary = (f"{escape(overview_row['source'])}: {num(overview_row['records'])} records → "
               f"{num(overview_row['kept'])} documents → {big(overview_row['tokens_kept'])} tokens "
               f"<small>({escape(' → '.join(overview_row['runs']))})</small>")
    body = [part.funnel(key, chained_funnel(members))]
    for i, run in zip(indices, members, strict=True):
        body += [part.scores(str(i), run), part.dedup(str(i), run), part.shards(str(i), run)]
    last = len(indices) - 1
    body += [part.lengths(str(indices[last]), members[last]), part.domains(str(indices[0]), members[0]),
             part.languages(str(indices[last]), members[last])]
    body += [part.cost(str(i), run) for i, run in zip(indices, members, strict=True)]
    body.append(part.missing(members))
    return f'<details class="source" id="source-{key}"><summary>{summary}</summary>{"".join(body)}</details>'


def render(data: dict[str, Any]) -> str:
    runs = data["runs"]
    overview = data["overview"]
    names = ", ".join(escape(r["name"]) for r in runs)
    body = ["<h1>refinery report</h1>", f"<p>{len(runs)} run(s) of {len(overview['groups'])} source(s): {names}</p>",
            render_overview(data), '<section id="sources"><h2>Sources</h2>']
    keys: set[str] = set()
    for j, (row, group) in enumerate(zip(overview["sources"], overview["groups"], strict=True)):
        key = slug(group["label"])
        key = key if key not in keys else f"{key}-{j}"
        keys.add(key)
        body.append(_source(key, row, group["runs"], runs))
    body.append("</section>" + samples(runs))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>refinery report</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
