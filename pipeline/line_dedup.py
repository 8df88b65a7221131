"""LineDedup: CCNet-style removal of lines that recur across the corpus (Wenzek et al. 2020, 3.3).

Navigation, cookie banners and footers repeat verbatim on thousands of pages of a dump; no
single page shows it. Counting needs the whole corpus, so it is a Beam aggregation, never a
per-worker dict: each document emits its distinct line hashes, a GroupByKey per hash counts the
documents, and the hashes past the limit are routed back to their documents by a join on id.
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


def _distinct_line_hashes(doc: Document) -> Iterator[tuple[int, str]]:
    for line_hash in {h for _, h in lines_with_hashes(doc.text)}:
        yield line_hash, doc.id


class _FrequentLines(beam.DoFn):
    """(line hash, document ids) -> (document id, hash) for every document, if the line is frequent."""

    def __init__(self, max_documents: int) -> None:
        self._max = max_documents

    def setup(self) -> None:
        self._frequent = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.frequent_lines")

    def process(self, element: tuple[int, Iterable[str]]) -> Iterator[tuple[str, int]]:
        line_hash, doc_ids = element
        count = 0
        for _ in doc_ids:  # count without materializing a group that may hold millions of ids
            count += 1
            if count > self._max:
                break
        if count <= self._max:
            return
        self._frequent.inc()
        for doc_id in doc_ids:
            yield doc_id, line_hash


class _RemoveLines(beam.DoFn):
    def __init__(self, min_chars_after: int) -> None:
        self._min_chars = min_chars_after

    def setup(self) -> None:
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.in")
        self._kept = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.kept")
        self._lines = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.lines_removed")

    def process(self, element: tuple[str, dict[str, list[Any]]]):
        _, joined = element
        drop = frozenset(joined["drop"])
        for doc in joined["doc"]:
            self._in.inc()
            if not drop:
                self._kept.inc()
                yield doc
                continue
            text = remove_lines(doc.text, drop)
            removed = len(doc.text.splitlines()) - len(text.splitlines())
            self._lines.inc(removed)
            doc = doc.replace(text=text, meta={**doc.meta, "line_dedup_removed": str(removed)})
            if len(text.strip()) < self._min_chars:
                reason = "line_dedup.too_short_after_removal"
                Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.dropped.{reason}").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, STAGE, reason))
                continue
            self._kept.inc()
            yield doc


class LineDedup(beam.PTransform):
    """Documents -> ``{"kept": documents without boilerplate lines, "dropped": Dropped}``."""

    def __init__(self, config: LineDedupConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, docs):
        drop_lists = (
            docs
            | "DistinctLineHashes" >> beam.FlatMap(_distinct_line_hashes)
            | "GroupByLine" >> beam.GroupByKey()
            | "FrequentLines" >> beam.ParDo(_FrequentLines(self._config.max_documents))
        )
        # The one shuffle of text in this stage, and why it stays a join: each document needs the
        # frequent lines it contains, and a document can sit on any worker. The alternative, a
        # side input of every frequent line's hash, would be held whole by every worker and grows
        # with the corpus (every site brings its own navigation and footer lines), which would break
        # the memory floor (nothing that grows with the corpus in one worker). The other side of
        # this join is small: (document id, line hash), for frequent lines only.
        keyed = docs | "KeyById" >> beam.Map(lambda doc: (doc.id, doc))
        outputs = (
            {"doc": keyed, "drop": drop_lists}
            | "JoinDocuments" >> beam.CoGroupByKey()
            | "RemoveLines" >> beam.ParDo(_RemoveLines(self._config.min_chars_after)).with_outputs(DROPPED, main=KEPT)
        )
        return {KEPT: outputs[KEPT], DROPPED: outputs[DROPPED]}
