"""Documents set aside on disk while a corpus-wide decision is made about them.

Line dedup and dedup decide from small records (line hashes, digests, signatures), but their
verdicts must reach the documents. Joining documents with verdicts by id would move every
document's text through a shuffle, and a runner that shuffles in memory (the DirectRunner)
would then hold every document of the run at once, so a worker's memory would grow with the
corpus. Instead (the pattern of datatrove's dedup, which writes documents once and filters them
by index later):

1. :class:`SpillDocuments` streams each bundle's documents into a Parquet file where they are
   (a fresh uuid name per file) and hands each document on with its :class:`Place` (file, row),
   so the decision's small records can name it. It announces a file once the file is whole.
2. The caller's decision produces verdicts keyed by file: ``(file, (row, verdict))``.
3. :class:`ApplyVerdicts` groups the verdicts by file (a few bytes each; text never enters the
   shuffle), reads each announced file once, in order, and lets a :class:`Judge` turn each
   document and its verdicts into outputs. Rows without verdicts are judged too (usually kept).
   Once every file has been read, the spill directory is removed.

A bundle that fails leaves at most a file nobody announced: its documents' places were
discarded with the bundle's other outputs, so no verdict names it, and the removal of the
directory takes it away.

Memory per worker is one file's verdicts (at most ``rows_per_file`` rows' worth) and one Parquet
row group of documents.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from filters.document import ARROW_SCHEMA, Document
from pipeline.inputs import open_archive
from pipeline.sinks import OpenFile, ParquetFormat, remove_dir
from pipeline.stage import KEPT

# Documents per spill file; bounds what one ApplyVerdicts task holds (that file's verdicts).
ROWS_PER_FILE = 20_000
FILES = "spill_files"
# Documents read back and turned into Python objects at a time: a slice of a row group.
_READ_BATCH_ROWS = 256
_READ = "spill_read"


class Place(NamedTuple):
    """Where a spilled document is: its file's name in the spill directory, and its row there."""

    file: str
    row: int


class Spilled(NamedTuple):
    """A document on its way to a decision, with the place it can be found again."""

    doc: Document
    place: Place


def spill_directory(pipeline: beam.Pipeline, directory: str | None) -> str:
    """``directory``, else a fresh directory under the pipeline's ``--temp_location``, else under
    the system temp directory (right for local runners only: every worker must see it)."""
    if directory:
        return directory
    base = pipeline.options.view_as(GoogleCloudOptions).temp_location or tempfile.gettempdir()
    return FileSystems.join(base, f"refinery-spill-{uuid.uuid4().hex[:12]}")


class _SpillBundles(beam.DoFn):
    """Streams documents into Parquet files; main output :class:`Spilled`, and each finished
    file's name on the ``FILES`` output."""

    def __init__(self, directory: str, rows_per_file: int) -> None:
        self._directory = directory
        self._rows_per_file = rows_per_file
        self._format = ParquetFormat(ARROW_SCHEMA)

    def start_bundle(self) -> None:
        self._open: OpenFile | None = None
        self._name = ""

    def process(self, doc: Document) -> Iterator[Any]:
        if self._open is None:
            self._name = f"{uuid.uuid4().hex}.parquet"
            self._open = OpenFile(FileSystems.join(self._directory, self._name), self._format)
        place = Place(self._name, self._open.rows)
        self._open.write(doc.to_row())
        yield Spilled(doc, place)
        if self._open.rows >= self._rows_per_file:
            self._open.close()
            self._open = None
            yield beam.pvalue.TaggedOutput(FILES, self._name)

    def finish_bundle(self) -> Iterator[Any]:
        if self._open is not None:
            self._open.close()
            self._open = None
            yield beam.pvalue.TaggedOutput(FILES, WindowedValue(self._name, 0, [GlobalWindow()]))


class SpillDocuments(beam.PTransform):
    """Documents -> ``{"kept": Spilled, "spill_files": file names}``, written under ``directory``."""

    def __init__(self, directory: str, rows_per_file: int = ROWS_PER_FILE) -> None:
        super().__init__()
        self._directory = directory
        self._rows_per_file = rows_per_file

    def expand(self, docs):
        out = docs | "SpillBundles" >> beam.ParDo(
            _SpillBundles(self._directory, self._rows_per_file)).with_outputs(FILES, main=KEPT)
        return {KEPT: out[KEPT], FILES: out[FILES]}


class Judge(Protocol):
    """A stage's rule for one document read back and the verdicts that name it.

    ``apply`` yields what the stage outputs for it: the document (kept, perhaps changed) and/or
    ``TaggedOutput``s. Picklable; ``setup`` runs once per worker before the first document.
    """

    def setup(self) -> None: ...

    def apply(self, doc: Document, verdicts: list[Any]) -> Iterator[Any]: ...


class _ReadBack(beam.DoFn):
    """(file, {announced, verdicts}) -> the judge's outputs for every row of the file, in order."""

    def __init__(self, directory: str, judge: Judge) -> None:
        self._directory = directory
        self._judge = judge

    def setup(self) -> None:
        self._judge.setup()

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        name, grouped = element
        if not grouped["file"]:
            # Verdicts travel only with places from committed bundles, whose files were announced.
            raise RuntimeError(f"verdicts name spill file {name}, which no finished bundle wrote")
        verdicts: dict[int, list[Any]] = defaultdict(list)
        for row, verdict in grouped["verdict"]:
            verdicts[row].append(verdict)
        row = 0
        with open_archive(FileSystems.join(self._directory, name)) as raw:
            for batch in pq.ParquetFile(raw).iter_batches(batch_size=_READ_BATCH_ROWS):
                for values in batch.to_pylist():
                    yield from self._judge.apply(Document.from_row(values), verdicts.pop(row, []))
                    row += 1
        if verdicts:
            raise RuntimeError(f"spill file {name} has {row} rows; verdicts name rows {sorted(verdicts)[:5]}")
        yield beam.pvalue.TaggedOutput(_READ, name)


class _RemoveDirectory(beam.DoFn):
    """Runs once, after every file was read (its side input is the list of files read)."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def process(self, _: Any, read: list[str]) -> Iterator[int]:
        remove_dir(self._directory)
        yield len(read)


class ApplyVerdicts(beam.PTransform):
    """``(files, verdicts)`` -> the judge's outputs: ``kept`` plus each tag in ``tags``.

    ``files`` is :class:`SpillDocuments`' ``spill_files`` output; ``verdicts`` holds
    ``(file, (row, verdict))`` pairs, any number per row.
    """

    def __init__(self, directory: str, judge: Judge, tags: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._directory = directory
        self._judge = judge
        self._tags = tags

    def expand(self, pcolls):
        files, verdicts = pcolls
        out = (
            {"file": files | "AnnouncedFiles" >> beam.Map(lambda name: (name, None)), "verdict": verdicts}
            | "VerdictsByFile" >> beam.CoGroupByKey()
            | "ReadBack" >> beam.ParDo(_ReadBack(self._directory, self._judge)).with_outputs(
                _READ, *self._tags, main=KEPT)
        )
        _ = (
            files.pipeline
            | "Once" >> beam.Create([None])
            | "RemoveSpill" >> beam.ParDo(_RemoveDirectory(self._directory), beam.pvalue.AsList(out[_READ]))
        )
        return {tag: out[tag] for tag in (KEPT, *self._tags)}
