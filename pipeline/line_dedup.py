"""LineDedup: CCNet-style removal of lines that recur across the corpus (Wenzek et al. 2020, 3.3).

Navigation, cookie banners and footers repeat verbatim on thousands of pages of a dump; no
single page shows it. Counting needs the whole corpus, so it is a Beam aggregation, never a
per-worker dict. Each document's distinct line hashes are summed into a fixed-size sketch (an
upper bound of each line's document count); only the lines that bound lets through ("candidates")
are grouped per hash with the places of their documents, counted exactly, and the frequent ones
routed back to the documents that hold them, which wait on disk meanwhile (``pipeline/spill.py``).
The pure parts (normalizing, hashing, removing) are in ``filters/line_dedup.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from filters import Document
from filters.count_sketch import SATURATED, CountSketch, check_cells
from filters.line_dedup import distinct_line_hashes, remove_lines
from pipeline.count_sketch import SketchCounts
from pipeline.spill import FILES, ApplyVerdicts, Place, SpillDocuments, Spilled, spill_directory
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
    # Cells per row of the count sketch that spares unique lines the exact count (a power of two;
    # 2 rows of 1 byte per cell: 8 MB at 2^22, held by every worker). The sketch is loose once the
    # run's (document, distinct line) pairs, about 60 per page, outnumber the cells several times
    # over: more lines become candidates, which costs shuffle and memory, never correctness.
    # 2^22 stays tight up to about 200k pages per run; raise it for bigger runs.
    sketch_cells: int = 1 << 22

    def __post_init__(self) -> None:
        if self.max_documents < 1:
            raise ValueError("line_dedup.max_documents must be at least 1")
        if self.max_documents >= SATURATED:
            raise ValueError(f"line_dedup.max_documents must be below {SATURATED} (the sketch counts to it)")
        check_cells(self.sketch_cells, "line_dedup.sketch_cells")
        if self.min_chars_after < 0:
            raise ValueError("line_dedup.min_chars_after must not be negative")


def _line_set(spilled: Spilled) -> tuple[Place, np.ndarray]:
    return spilled.place, distinct_line_hashes(spilled.doc.text)


def _hashes_of(line_set: tuple[Place, np.ndarray]) -> np.ndarray:
    return line_set[1]


class _CandidateLines(beam.DoFn):
    """(place, line set) -> (line hash, place) for the lines the sketch cannot rule out."""

    def __init__(self, max_documents: int) -> None:
        self._max = max_documents

    def setup(self) -> None:
        self._candidates = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.candidate_lines")

    def process(self, element: tuple[Place, np.ndarray], sketch: CountSketch) -> Iterator[tuple[int, Place]]:
        place, hashes = element
        if not hashes.size:
            return
        candidates = hashes[sketch.upper_bounds(hashes) > self._max]
        self._candidates.inc(int(candidates.size))
        for line_hash in candidates.tolist():
            yield line_hash, place


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
    location) while the lines are counted; only partial sketches, (line hash, place) records of
    candidate lines and, for frequent lines, (file, row, hash) records are shuffled. Text crosses
    no shuffle. The alternative to
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
        line_sets = spilled[KEPT] | "LineSets" >> beam.Map(_line_set)
        sketch = line_sets | "SketchLines" >> SketchCounts(self._config.sketch_cells, _hashes_of)
        frequent = (
            line_sets
            | "CandidateLines" >> beam.ParDo(_CandidateLines(self._config.max_documents),
                                             beam.pvalue.AsSingleton(sketch))
            | "GroupByLine" >> beam.GroupByKey()
            | "FrequentLines" >> beam.ParDo(_FrequentLines(self._config.max_documents))
        )
        outputs = (spilled[FILES], frequent) | "RemoveLines" >> ApplyVerdicts(
            directory, _RemoveLines(self._config.min_chars_after), (DROPPED,))
        return {KEPT: outputs[KEPT], DROPPED: outputs[DROPPED]}
