"""Extract: HTML records to documents (trafilatura or resiliparse), under a size and a wall-time cap per page.

Decoding and extraction run in a child process (see ``time_limit``) so that a runaway page is
killed and counted as ``extract.timeout`` instead of hanging the worker. Both engines need it:
each has pages that run for minutes (resiliparse's main-content pass is quadratic in nesting
depth; see ``filters.html.ExtractOptions.timeout_seconds``). The child starts in
``setup`` (once per DoFn instance), which is also what makes the DoFn safe to pickle to any runner.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters import Document
from filters.html import ExtractOptions
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped
from pipeline.time_limit import CallTimeout, ChildError, TimeLimitedFunction
from pipeline.warc_reader import RawRecord

log = logging.getLogger(__name__)

STAGE = "Extract"


class _ExtractText(beam.DoFn):
    def __init__(self, options: ExtractOptions, source: str) -> None:
        self._options = options
        self._source = source
        self._worker: TimeLimitedFunction | None = None

    def setup(self) -> None:
        self._worker = TimeLimitedFunction("filters.html:page_text", self._options.timeout_seconds,
                                           bound=(self._options,))
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.in")
        self._kept = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.kept")

    def teardown(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def process(self, record: RawRecord):
        self._in.inc()
        assert self._worker is not None and record.payload is not None
        content_type = (record.http_headers or {}).get("content-type")
        try:
            text, reason = self._worker.call(record.payload, content_type, record.url)
        except CallTimeout:
            log.warning("extraction timed out: %s (%s at offset %d)", record.url, record.warc_file, record.offset)
            text, reason = "", "extract.timeout"
        except ChildError as exc:
            log.warning("extraction failed: %s (%s at offset %d): %s", record.url, record.warc_file,
                        record.offset, exc)
            text, reason = "", "extract.error"
        doc = Document(
            id=record.record_id,
            text=text,
            source=self._source,
            url=record.url,
            timestamp=record.date,
            warc_file=record.warc_file,
            meta={"warc_offset": str(record.offset), **record.meta},
        )
        if reason:
            Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.dropped.{reason}").inc()
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, STAGE, reason))
            return
        self._kept.inc()
        yield doc


class Extract(beam.PTransform):
    """RawRecord -> ``{"kept": Document, "dropped": Dropped}``."""

    def __init__(self, options: ExtractOptions, source: str = "commoncrawl") -> None:
        super().__init__()
        self._options = options
        self._source = source

    def expand(self, records):
        outputs = records | "ExtractText" >> beam.ParDo(_ExtractText(self._options, self._source)).with_outputs(
            DROPPED, main=KEPT
        )
        return {KEPT: outputs[KEPT], DROPPED: outputs[DROPPED]}
