"""ReadDocuments: documents that are already text (our Parquet, or JSONL) enter the pipeline here.

This is how a run's output is re-processed with another recipe (score it with a classifier,
tokenize it) and how sources that arrive as text join the shared stages. Parquet is read in
record batches and JSONL line by line, so a file never sits whole in memory. A row without text
is counted as ``read_documents.no_text``; a line that is not JSON as ``read_documents.bad_row``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from filters import Document
from pipeline.funnel import COUNTS, ERRORS, INPUT_FILE_META, RECORDS, FileError, count_key
from pipeline.inputs import open_archive
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped

log = logging.getLogger(__name__)

STAGE = "ReadDocuments"
SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json.gz")


@dataclass(frozen=True, kw_only=True)
class DocumentsOptions:
    """How rows map to documents."""

    text_field: str = "text"
    # Used when a row has no `source` column; None keeps the pipeline config's `source`.
    source: str | None = None
    batch_rows: int = 1024


class _ReadFile(beam.DoFn):
    def __init__(self, options: DocumentsOptions, source: str) -> None:
        self._options = options
        self._source = options.source or source

    def setup(self) -> None:
        self._rows = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.records")

    def process(self, path: str):
        reasons: Counter[str] = Counter()
        total = 0
        try:
            for index, row in enumerate(self._rows_of(path)):
                total += 1
                doc = self._document(row, path, index) if row is not None else None
                if row is None:
                    reasons["read_documents.bad_row"] += 1
                elif doc is None or not doc.text.strip():
                    empty = doc or Document(id=_row_id(path, index), text="", source=self._source, warc_file=path,
                                            meta={INPUT_FILE_META: path})
                    yield beam.pvalue.TaggedOutput(DROPPED, Dropped(empty, STAGE, "read_documents.no_text"))
                else:
                    yield doc
        except (OSError, ValueError, EOFError) as exc:
            log.warning("cannot read %s past row %d: %s", path, total, exc)
            yield beam.pvalue.TaggedOutput(ERRORS, FileError(path, total, f"{type(exc).__name__}: {exc}"))
        self._rows.inc(total)
        yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, STAGE, RECORDS), total))
        for reason, n in reasons.items():
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, STAGE, reason), n))

    def _rows_of(self, path: str) -> Iterator[dict[str, Any] | None]:
        with open_archive(path) as raw:
            if path.endswith(".parquet"):
                for batch in pq.ParquetFile(raw).iter_batches(batch_size=self._options.batch_rows):
                    yield from batch.to_pylist()
                return
            stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                yield row if isinstance(row, dict) else None

    def _document(self, row: dict[str, Any], path: str, index: int) -> Document | None:
        text = row.get(self._options.text_field)
        if not isinstance(text, str):
            return None
        meta = row.get("meta") or {}
        return Document(
            id=str(row.get("id") or _row_id(path, index)),
            text=text,
            source=row.get("source") or self._source,
            url=row.get("url") or "",
            lang=row.get("lang") or "",
            lang_score=row.get("lang_score"),
            quality_score=row.get("quality_score"),
            timestamp=str(row.get("timestamp") or ""),
            warc_file=row.get("warc_file") or path,
            meta={**{str(k): str(v) for k, v in (meta.items() if isinstance(meta, dict) else meta)},
                  INPUT_FILE_META: path},
        )


def _row_id(path: str, index: int) -> str:
    return "doc:" + hashlib.sha1(f"{path}:{index}".encode()).hexdigest()


class ReadDocuments(beam.PTransform):
    """Paths of Parquet/JSONL documents -> the reader contract of pipeline.readers."""

    def __init__(self, options: DocumentsOptions, source: str) -> None:
        super().__init__()
        self._options = options
        self._source = source

    def expand(self, paths):
        out = (
            paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFile" >> beam.ParDo(_ReadFile(self._options, self._source)).with_outputs(DROPPED, COUNTS, ERRORS,
                                                                                             main=KEPT)
        )
        return {KEPT: out[KEPT], DROPPED: out[DROPPED], COUNTS: out[COUNTS], ERRORS: out[ERRORS]}
