"""ReadWarc: archive paths in, HTML response records out, every other record counted by reason.

Each file becomes one or more byte ranges (see warc_split); a worker streams a range and emits
its HTML records, then one count per (file, reason) for what it skipped, and the range's total. Those counts, summed with the
drops of later stages, must add up to the total: that is the per-file accounting in stats.json.
A file that stops parsing midway keeps the records read so far and reports where it broke.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.html import html_skip_reason
from pipeline.funnel import COUNTS, ERRORS, READ_STAGE, RECORDS, FileError, count_key
from pipeline.inputs import file_size, open_archive
from pipeline.stage import METRICS_NAMESPACE
from pipeline.warc_reader import CorruptArchive, RawRecord
from pipeline.warc_split import byte_ranges, iter_range

log = logging.getLogger(__name__)

RECORDS_TAG = "records"


@dataclass(frozen=True, kw_only=True)
class ReadConfig:
    """How archives are read."""

    # Bodies above this are drained and counted as read.too_large, never held in memory.
    # CommonCrawl itself truncates payloads at 1 MiB (CC-MAIN since 2013), so 5 MB loses nothing there.
    max_payload_bytes: int = 5_000_000
    # If more than this fraction of input files could not be read to their end, the run fails
    # after writing its outputs, naming the files.
    max_error_fraction: float = 0.05
    # Gzip-per-record WARCs larger than this are read as several byte ranges by different workers
    # (a CommonCrawl WARC is ~1 GB). 0 reads every file in one piece.
    split_bytes: int = 64_000_000

    def __post_init__(self) -> None:
        if self.max_payload_bytes <= 0:
            raise ValueError("read.max_payload_bytes must be positive")
        if self.split_bytes < 0:
            raise ValueError("read.split_bytes must not be negative")
        if not 0.0 <= self.max_error_fraction <= 1.0:
            raise ValueError("read.max_error_fraction must be within [0, 1]")


class _ReadArchive(beam.DoFn):
    def __init__(self, config: ReadConfig) -> None:
        self._config = config

    def setup(self) -> None:
        self._records = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.records")
        self._html = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.html")
        self._failed_files = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.failed_files")

    def process(self, piece: tuple[str, int, int | None]):
        path, start, end = piece
        name = path
        skipped: Counter[str] = Counter()
        total = 0
        try:
            opener = functools.partial(open_archive, path)
            for record in iter_range(opener, name, start, end, self._config.max_payload_bytes):
                total += 1
                reason = _skip_reason(record)
                if reason:
                    skipped[reason] += 1
                    continue
                self._html.inc()
                yield beam.pvalue.TaggedOutput(RECORDS_TAG, record)
        except CorruptArchive as exc:
            log.warning("skipping the rest of %s", exc)
            self._failed_files.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, FileError(name, exc.offset, str(exc)))
        except (OSError, ValueError, EOFError) as exc:
            # Unreadable from the start (permissions, network, not an archive at all).
            log.warning("cannot read %s: %s: %s", name, type(exc).__name__, exc)
            self._failed_files.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, FileError(name, 0, f"{type(exc).__name__}: {exc}"))
        self._records.inc(total)
        yield beam.pvalue.TaggedOutput(COUNTS, (count_key(name, READ_STAGE, RECORDS), total))
        for reason, n in sorted(skipped.items()):
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(name, READ_STAGE, reason), n))


def _skip_reason(record: RawRecord) -> str | None:
    if record.record_type == "corrupt":
        return "read.corrupt_record"
    if record.oversized:
        return "read.too_large"
    headers = record.http_headers or {}
    return html_skip_reason(record.record_type, record.http_status, headers.get("content-type"), record.payload)


class _SplitFile(beam.DoFn):
    """path -> (path, start, end) pieces; files that cannot be split stay whole."""

    def __init__(self, split_bytes: int) -> None:
        self._split_bytes = split_bytes

    def process(self, path: str):
        size = file_size(path) if self._split_bytes else None
        try:
            ranges = byte_ranges(functools.partial(open_archive, path), size, self._split_bytes)
        except (OSError, ValueError, EOFError):
            ranges = [(0, None)]  # the reader reports what is wrong with the file
        for start, end in ranges:
            yield path, start, end


class ReadWarc(beam.PTransform):
    """Paths -> ``{"records": RawRecord, "counts": ((file, stage, reason), n), "errors": FileError}``."""

    def __init__(self, config: ReadConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, paths):
        outputs = (
            paths
            | "SplitFiles" >> beam.ParDo(_SplitFile(self._config.split_bytes))
            | "SpreadPieces" >> beam.Reshuffle()
            | "ReadArchive" >> beam.ParDo(_ReadArchive(self._config)).with_outputs(RECORDS_TAG, COUNTS, ERRORS)
        )
        return {RECORDS_TAG: outputs[RECORDS_TAG], COUNTS: outputs[COUNTS], ERRORS: outputs[ERRORS]}
