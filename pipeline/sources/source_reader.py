"""The reader shape every non-web source shares: parse a file into records, clean each record.

A source reader is two functions. ``parse(path)`` streams one input file and yields one item per
raw record (a page of a dump, a file of a repository, a book): a :class:`Skip` for a record that
is not a document at all (a redirect, a binary file), a :class:`Reject` for a document that the
reader refuses, or a record for ``clean``. ``clean(record)`` turns a record into a Document or a
Reject; it runs after a Reshuffle, so that the expensive part (wikitext parsing, LaTeX macro
expansion) is spread over workers instead of staying on the one that read a large dump.

Every parsed item is one raw record of its file: the per-file ``records`` count equals kept plus
rejected plus skipped, which is the contract the funnel checks. A file that breaks midway keeps
what it yielded before the break and is reported as a FileError at that record index.
"""

from __future__ import annotations

import bz2
import json
import gzip
import logging
import lzma
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.document import Document
from pipeline.funnel import COUNTS, ERRORS, RECORDS, FileError, count_key
from pipeline.inputs import open_archive
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped

log = logging.getLogger(__name__)

PARTS = "parts"

# What a broken input raises while being streamed: I/O and decompression failures, bad XML,
# bad tar headers. Anything else is a bug in our code and should fail loudly.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, ValueError, ParseError, tarfile.TarError, zlib.error, lzma.LZMAError,
)


@dataclass(frozen=True, slots=True)
class Skip:
    """A raw record that is not a document (a redirect, a binary file): counted, not kept."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A document the reader refuses; it goes to the rejects output with ``reason``."""

    doc: Document
    reason: str


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a document that is assembled after a GroupByKey (an answer of a question).

    ``record`` says whether the piece is a raw record of its own for the per-file accounting
    (a question is, its answers are not: they become part of the question's document).
    """

    key: Any
    value: Any
    record: bool = True


Parse = Callable[[str], Iterator[Any]]
Clean = Callable[[Any], "Document | Reject"]


def json_lines(path: str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed row)`` for each non-blank line of a (compressed) JSON-lines file.

    A line that is not JSON is logged with its position and comes back as ``None``, so each
    reader can count it under its own reason.
    """
    with open_decompressed(path) as stream:
        for line_no, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                log.warning("%s:%d: not JSON (%s); skipped", path, line_no, exc)
                yield line_no, None


def open_decompressed(path: str) -> BinaryIO:
    """A streaming binary reader over ``path``, decompressing .gz/.bz2/.xz by suffix.

    bz2 here handles the multistream files Wikipedia publishes; nothing is read ahead beyond
    the decompressors' own buffers.
    """
    raw = open_archive(path)
    lowered = path.lower()
    if lowered.endswith((".gz", ".tgz")):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if lowered.endswith((".bz2", ".tbz2")):
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if lowered.endswith((".xz", ".txz")):
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    return raw


class _ParseFiles(beam.DoFn):
    def __init__(self, stage: str, parse: Parse) -> None:
        self._stage = stage
        self._parse = parse

    def setup(self) -> None:
        self._records = Metrics.counter(METRICS_NAMESPACE, f"{self._stage}.records")
        self._failed = Metrics.counter(METRICS_NAMESPACE, f"{self._stage}.failed_files")

    def process(self, path: str):
        skipped: Counter[str] = Counter()
        total = 0
        try:
            for item in self._parse(path):
                if isinstance(item, Part):
                    total += item.record
                    yield beam.pvalue.TaggedOutput(PARTS, (item.key, item.value))
                    continue
                total += 1
                if isinstance(item, Skip):
                    skipped[item.reason] += 1
                elif isinstance(item, Reject):
                    yield beam.pvalue.TaggedOutput(DROPPED, Dropped(item.doc, self._stage, item.reason))
                else:
                    yield item
        except READ_ERRORS as exc:
            log.warning("%s: %s: stopped reading at record %d: %s: %s",
                        self._stage, path, total, type(exc).__name__, exc)
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, FileError(path, total, f"{type(exc).__name__}: {exc}"))
        self._records.inc(total)
        yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, self._stage, RECORDS), total))
        for reason, n in sorted(skipped.items()):
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, self._stage, reason), n))


class _Clean(beam.DoFn):
    """Applies the source's cleaner; a cleaner that raises drops that one document, logged."""

    def __init__(self, stage: str, clean: Clean, failure_reason: str) -> None:
        self._stage = stage
        self._clean = clean
        self._failure_reason = failure_reason

    def process(self, record: Any):
        try:
            result = self._clean(record)
        except (ValueError, RecursionError, IndexError, KeyError) as exc:
            # Third-party parsers (mwparserfromhell, HTML) on adversarial markup: one bad page
            # must not stop a dump. The record is dropped with what we know of it.
            doc = record_document(record)
            log.warning("%s: cleaning %s failed: %s: %s", self._stage, doc.id, type(exc).__name__, exc)
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, self._stage, self._failure_reason))
            return
        if isinstance(result, Reject):
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(result.doc, self._stage, result.reason))
        else:
            yield result


def record_document(record: Any) -> Document:
    """The Document a raw record carries: the record itself, or the first field of a tuple."""
    if isinstance(record, Document):
        return record
    if isinstance(record, tuple) and record and isinstance(record[0], Document):
        return record[0]
    raise TypeError(f"a raw record must be a Document or start with one, got {type(record).__name__}")


class SourceReader(beam.PTransform):
    """Paths -> ``{"kept", "dropped", "counts", "errors"}`` (plus ``"parts"`` if parse yields Parts).

    ``stage`` is the funnel label of the reader and of every reason it gives; ``clean`` (if any)
    runs on each parsed record after a Reshuffle. ``failure_reason`` is the drop reason of a
    record whose cleaner raised.
    """

    def __init__(self, stage: str, parse: Parse, clean: Clean | None = None,
                 failure_reason: str = "read.clean_failed", reshuffle: bool = True) -> None:
        super().__init__(label=stage)
        self._stage = stage
        self._parse = parse
        self._clean = clean
        self._failure_reason = failure_reason
        self._reshuffle = reshuffle

    def expand(self, paths):
        parsed = (
            paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "Parse" >> beam.ParDo(_ParseFiles(self._stage, self._parse)).with_outputs(
                DROPPED, COUNTS, ERRORS, PARTS, main=KEPT
            )
        )
        records = parsed[KEPT]
        dropped = [parsed[DROPPED]]
        if self._reshuffle:
            records = records | "SpreadRecords" >> beam.Reshuffle()
        if self._clean is not None:
            cleaned = records | "Clean" >> beam.ParDo(
                _Clean(self._stage, self._clean, self._failure_reason)
            ).with_outputs(DROPPED, main=KEPT)
            records = cleaned[KEPT]
            dropped.append(cleaned[DROPPED])
        all_dropped = dropped[0] if len(dropped) == 1 else dropped | "AllDropped" >> beam.Flatten()
        return {KEPT: records, DROPPED: all_dropped, COUNTS: parsed[COUNTS], ERRORS: parsed[ERRORS],
                PARTS: parsed[PARTS]}
