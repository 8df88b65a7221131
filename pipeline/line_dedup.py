"""LineDedup: CCNet-style removal of lines that recur across the corpus (Wenzek et al. 2020, 3.3).

Navigation, cookie banners and footers repeat verbatim on thousands of pages of a dump; no
single page shows it. Counting needs the whole corpus, so it is a Beam aggregation, never a
per-worker dict: each document emits its distinct line hashes, a GroupByKey per hash counts the
documents, and the hashes past the limit are routed back to the documents that hold them, which
wait on disk meanwhile (``pipeline/spill.py``).
The pure parts (normalizing, hashing, removing) are in ``filters/line_dedup.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters import Document
from filters.line_dedup import lines_with_hashes, remove_lines
from pipeline.spill import FILES, ApplyVerdicts, Place, Spilled, SpillDocuments, spill_directory
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped

STAGE = "LineDedup"


@dataclass(frozen=True, kw_only=True)
class LineDedupConfig:
    """When a line counts as boilerplate, and what must be left of a page afterwards."""

    # A line found in more than this many documents of the run is removed from all of them.
    # CCNet drops any paragraph seen twice within a 5 GB shard (~1/1,600 of a dump); across a
    # whole run a small multiple of that keeps quotations and headings that legitimately recur.
    max_documents: int = 10
    # Pages left shorter than this (in characters) after removal are dropped, as the minimum
    # length check would have dropped them had the boilerplate not padded them.
    min_chars_after: int = 200

    def __post_init__(self) -> None:
        if self.max_documents < 1:
            raise ValueError("line_dedup.max_documents must be at least 1")
        if self.min_chars_after < 0:
            raise ValueError("line_dedup.min_chars_after must not be negative")


def _distinct_line_hashes(spilled: Spilled) -> Iterator[tuple[int, Place]]:
    for line_hash in {h for _, h in lines_with_hashes(spilled.doc.text)}:
        yield line_hash, spilled.place


class _FrequentLines(beam.DoFn):
    """(line hash, places) -> (file, (row, hash)) for every document it is in, if the line is frequent."""

    def __init__(self, max_documents: int) -> None:
        self._max = max_documents

    def setup(self) -> None:
        self._frequent = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.frequent_lines")

    def process(self, element: tuple[int, Iterable[Place]]) -> Iterator[tuple[str, tuple[int, int]]]:
        line_hash, places = element
        count = 0
        for _ in places:  # count without materializing a group that may hold millions of places
            count += 1
            if count > self._max:
                break
        if count <= self._max:
            return
        self._frequent.inc()
        for place in places:
            yield place.file, (place.row, line_hash)


class _RemoveLines:
    """The :class:`~pipeline.spill.Judge` of this stage: a document and its frequent lines'
    hashes -> the document without them, or dropped if too little is left."""

    def __init__(self, min_chars_after: int) -> None:
        self._min_chars = min_chars_after

    def setup(self) -> None:
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.in")
        self._kept = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.kept")
        self._lines = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.lines_removed")

    def apply(self, doc: Document, frequent: list[int]) -> Iterator[Any]:
        self._in.inc()
        if not frequent:
            self._kept.inc()
            yield doc
            return
        text = remove_lines(doc.text, frozenset(frequent))
        removed = len(doc.text.splitlines()) - len(text.splitlines())
        self._lines.inc(removed)
        doc = doc.replace(text=text, meta={**doc.meta, "line_dedup_removed": str(removed)})
        if len(text.strip()) < self._min_chars:
            reason = "line_dedup.too_short_after_removal"
            Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.dropped.{reason}").inc()
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, STAGE, reason))
            return
        self._kept.inc()
        yield doc


class LineDedup(beam.PTransform):
    """Documents -> ``{"kept": documents without boilerplate lines, "dropped": Dropped}``.

    The documents wait on disk (``pipeline/spill.py``, under ``spill_dir`` or the pipeline's temp
    location) while the lines are counted; only (line hash, place) records and, for frequent
    lines, (file, row, hash) records are shuffled. Text crosses no shuffle. The alternative to
    routing hashes to places, a side input of every frequent line's hash, would be held whole by
    every worker and grows with the corpus (every site brings its own navigation and footer lines).
    """

    def __init__(self, config: LineDedupConfig, *, spill_dir: str | None = None) -> None:
        super().__init__()
        self._config = config
        self._spill_dir = spill_dir

    def expand(self, docs):
        directory = spill_directory(docs.pipeline, self._spill_dir)
        spilled = docs | "Spill" >> SpillDocuments(directory)
        frequent = (
            spilled[KEPT]
            | "DistinctLineHashes" >> beam.FlatMap(_distinct_line_hashes)
            | "GroupByLine" >> beam.GroupByKey()
            | "FrequentLines" >> beam.ParDo(_FrequentLines(self._config.max_documents))
        )
        outputs = (spilled[FILES], frequent) | "RemoveLines" >> ApplyVerdicts(
            directory, _RemoveLines(self._config.min_chars_after), (DROPPED,))
        return {KEPT: outputs[KEPT], DROPPED: outputs[DROPPED]}
