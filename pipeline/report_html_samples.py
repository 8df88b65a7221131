"""Sample documents a person can browse in the page itself: kept and rejected per reason, filtered by
source, reason and domain with three drop-downs.

The filter is the page's one script, written here and inlined; it reads the ``data-*`` attributes of
each sample and hides the others, so nothing is fetched and no server is needed. Every value in a
sample (its text above all: a rejected page may carry ``<script>``) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from pipeline.report_html_base import note, num

SCRIPT = """
(function () {
  var selects = document.querySelectorAll('#sample-filters select');
  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.name] = s.value; });
    var shown = 0;
    document.querySelectorAll('#sample-list .sample').forEach(function (el) {
      var ok = Object.keys(want).every(function (k) { return !want[k] || el.dataset[k] === want[k]; });
      el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById('sample-count').textContent = shown + ' shown';
  }
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  apply();
})();
"""


def all_samples(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run's samples in one list: kept ones with reason "kept", then the rejected by reason."""
    found = []
    for run in runs:
        found += [{**d, "run": run["name"], "status": "kept"} for d in run["samples"]["kept"]]
        for docs in run["samples"]["rejected"].values():
            found += [{**d, "run": run["name"], "status": "dropped"} for d in docs]
    return found


def _select(name: str, label: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{escape(v, quote=True)}">{escape(v)}</option>' for v in sorted(set(values)))
    return f'<label>{escape(label)} <select name="{name}"><option value="">all</option>{options}</select></label>'


def _sample(doc: dict[str, Any]) -> str:
    attrs = " ".join(f'data-{k}="{escape(str(doc.get(k) or ""), quote=True)}"' for k in ("source", "reason", "domain"))
    meta = " · ".join(escape(str(doc[k])) for k in ("run", "reason", "url", "lang") if doc.get(k))
    tokens = f" · {num(doc['tokens'])} tokens" if doc.get("tokens") is not None else ""
    cls = "kept" if doc["status"] == "kept" else "dropped"
    return (f'<details class="sample" {attrs}><summary><span class="{cls}">{escape(doc["status"])}</span> '
            f'<span class="meta">{meta}{tokens}</span></summary><pre>{escape(doc.get("text") or "")}</pre></details>')


def samples(runs: Sequence[dict[str, Any]]) -> str:
    docs = all_samples(runs)
    if not docs:
        return f'<section id="samples"><h2>Samples</h2>{note("No documents to show.")}</section>'
    filters = ('<p class="filters" id="sample-filters">' + _select("source", "source", (d["source"] for d in docs))
               + _select("reason", "reason", (d["reason"] for d in docs))
               + _select("domain", "domain", (d["domain"] for d in docs)) + '<span id="sample-count"></span></p>')
    return ('<section id="samples"><h2>Samples</h2>'
            + note("Texts as they will be trained on (cut after 1,500 characters); kept documents have reason "
                   "\"kept\". Choose a source, reason or domain to narrow the list.")
            + filters + '<div id="sample-list">' + "".join(_sample(d) for d in docs) + "</div>"
            + f"<script>{SCRIPT}</script></section>")
