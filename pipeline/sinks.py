"""File sinks that give the same files on every runner: ``WriteParquet`` and ``WriteJsonLines``.

Beam's ``WriteToParquet``/``WriteToText`` hand their file names on from ``finish_bundle``, which
Beam 2.77's own DaskRunner drops (ours keeps them: ``pipeline/dask_runner.py``); they also leave
``beam-temp-*`` directories behind when a run is killed. These sinks work the same on every runner:

* Rows are written where they already are, without a shuffle: each bundle streams its rows into
  its own temporary file (a fresh uuid name, so a retried bundle never appends to a half-written
  file) and, from ``finish_bundle``, emits only a small :class:`WrittenFile` record (path, row
  count, a sort key). A file is closed and a new one begun every ``rows_per_shard`` rows.
* One finalize step receives those records (a few bytes per file, the only thing gathered),
  renames the files it was told about to ``{prefix}-NNNNN-of-MMMMM{suffix}`` in the order of
  their sort keys, and removes the temporary directory with whatever a failed attempt left there.

So a file under its final name is always whole, an empty input still leaves one (empty) file
with the schema, and a re-run writes the same rows: which rows share a file depends on the
runner's bundles, which the rows' order never mattered for (readers glob the directory).

``num_shards > 0`` asks for an exact file count, which bundles cannot promise; then, and only
then, rows are grouped by a deterministic shard of their id (a shuffle of the rows themselves) so
that each shard's rows reach one writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

import pipeline.beam_dofn_specs  # noqa: F401  (installs the memo of Beam's DoFn introspection)

log = logging.getLogger(__name__)

# Rows per file when num_shards is 0: a bundle starts a new file after this many rows.
ROWS_PER_SHARD = 50_000
# A Parquet row group is written once this many rows, or this many bytes of their text, are
# buffered. Both bound a writer's memory; the bytes bound is the one that binds on web pages: a
# run has a writer per stage's rejects, and 2,000 rejected pages held by each of them made a
# worker's memory grow with the input until the buffers filled (+150 MB from 1x to 4x the bench
# pages, benchmarks/pipeline_cost.py).
ROW_GROUP_ROWS = 2_000
ROW_GROUP_BYTES = 2_000_000


def row_key(element: Any) -> str:
    """A string that depends only on the element: its ``id`` if it has one, else its repr.

    repr is stable for the dicts, strings and numbers that reach a sink.
    """
    key = element["id"] if isinstance(element, dict) and "id" in element else element
    return key if isinstance(key, str) else repr(key)


def shard_of(element: Any, num_shards: int) -> int:
    """A shard that depends only on the element, so re-runs and retries agree."""
    digest = hashlib.blake2b(row_key(element).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def final_name(prefix: str, index: int, count: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}{suffix}"


def _temp_dir(prefix: str, token: str) -> str:
    directory, base = prefix.rsplit("/", 1) if "/" in prefix else ("", prefix)
    # A leading dot: readers of the final directory (pyarrow, our JSON-lines globs) skip it.
    return FileSystems.join(directory, f".temp-{base}-{token}") if directory else f".temp-{base}-{token}"


class RowWriter(Protocol):
    """An open output file of one format: rows go in one at a time, ``close`` finishes the file."""

    def write(self, row: Any) -> None: ...

    def close(self) -> None: ...


class FileFormat(Protocol):
    """Picklable description of a file format; ``open`` starts a file on a writable handle."""

    def open(self, handle: Any) -> RowWriter: ...


@dataclass(frozen=True, order=True)
class WrittenFile:
    """What a writer tells the finalize step about one temporary file (never its rows).

    ``first_key`` is the smallest :func:`row_key` in the file: sorting by it numbers the files the
    same way whichever worker or attempt wrote them, as far as the bundling allows.
    """

    first_key: str
    rows: int
    path: str


class OpenFile:
    """A temporary file being written: its handle, its format's writer, its rows so far."""

    def __init__(self, path: str, fmt: FileFormat) -> None:
        self.path = path
        self.rows = 0
        self.first_key: str | None = None
        self._handle = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._writer = fmt.open(self._handle)

    def write(self, row: Any) -> None:
        key = row_key(row)
        self.first_key = key if self.first_key is None else min(self.first_key, key)
        self._writer.write(row)
        self.rows += 1

    def close(self) -> WrittenFile:
        self._writer.close()
        self._handle.close()
        return WrittenFile(self.first_key or "", self.rows, self.path)


class _WriteBundles(beam.DoFn):
    """Streams each bundle's rows into temporary files; emits a :class:`WrittenFile` per file.

    No row is held beyond the format's buffer (one Parquet row group), and a file never spans
    bundles: a bundle that fails leaves at most a stray temporary file, which the finalize step,
    taking only the files named in its input, deletes with the temporary directory.
    """

    def __init__(self, temp_dir: str, fmt: FileFormat, rows_per_file: int) -> None:
        self._temp_dir = temp_dir
        self._format = fmt
        self._rows_per_file = rows_per_file

    def start_bundle(self) -> None:
        self._open: OpenFile | None = None

    def process(self, row: Any) -> Iterator[WrittenFile]:
        if self._open is None:
            path = FileSystems.join(self._temp_dir, f"bundle-{uuid.uuid4().hex}")
            self._open = OpenFile(path, self._format)
        self._open.write(row)
        if self._open.rows >= self._rows_per_file:
            yield self._open.close()
            self._open = None

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._open is not None:
            written, self._open = self._open.close(), None
            yield WindowedValue(written, 0, [GlobalWindow()])


class _WriteShard(beam.DoFn):
    """``num_shards > 0`` only: writes one shard's grouped rows to a temporary file."""

    def __init__(self, temp_dir: str, fmt: FileFormat) -> None:
        self._temp_dir = temp_dir
        self._format = fmt

    def process(self, item: tuple[int, Iterable[Any]]) -> Iterator[WrittenFile]:
        shard, rows = item
        # A fresh name per attempt: a retried bundle never appends to a half-written file.
        path = FileSystems.join(self._temp_dir, f"shard-{shard:05d}-{uuid.uuid4().hex}")
        out = OpenFile(path, self._format)
        for row in rows:
            out.write(row)
        written = out.close()
        # The sort key is the shard number, so shard i becomes part i whatever its rows.
        yield WrittenFile(f"{shard:05d}", written.rows, written.path)


class _Finalize(beam.DoFn):
    """Renames every written file to its final name, in sort-key order, then drops the temp dir."""

    def __init__(self, prefix: str, suffix: str, temp_dir: str, fmt: FileFormat) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._temp_dir = temp_dir
        self._format = fmt

    def process(self, _: Any, written: list[WrittenFile]) -> Iterator[str]:
        # One entry per path: a runner that retried a step after its output was committed could
        # hand the same record twice.
        files = sorted(set(written))
        if not files:
            empty = OpenFile(FileSystems.join(self._temp_dir, "empty"), self._format)
            files = [empty.close()]
        count = len(files)
        targets = [final_name(self._prefix, i, count, self._suffix) for i in range(count)]
        # A retried finalize finds some files already renamed; it renames the rest.
        pending = [(f.path, t) for f, t in zip(files, targets, strict=True) if FileSystems.exists(f.path)]
        if pending:
            FileSystems.rename([s for s, _ in pending], [t for _, t in pending])
        remove_dir(self._temp_dir)
        log.debug("%s: %d file(s) written", self._prefix, count)
        yield from targets


def remove_dir(directory: str) -> None:
    """Object stores have no directories: delete what is under it, then the local directory if any."""
    leftovers = [m.path for r in FileSystems.match([FileSystems.join(directory, "*")]) for m in r.metadata_list]
    if leftovers:
        FileSystems.delete(leftovers)
    if FileSystems.exists(directory):
        FileSystems.delete([directory])


class _ShardedWrite(beam.PTransform):
    """Write to temporary files, then finalize; outputs the final file paths."""

    def __init__(self, prefix: str, suffix: str, num_shards: int, rows_per_shard: int,
                 fmt: FileFormat) -> None:
        super().__init__()
        if num_shards < 0 or rows_per_shard < 1:
            raise ValueError("num_shards must be >= 0 and rows_per_shard >= 1")
        self._prefix = prefix
        self._suffix = suffix
        self._num_shards = num_shards
        self._rows_per_shard = rows_per_shard
        self._format = fmt

    def expand(self, pcoll):
        # One token per pipeline construction keeps concurrent writers to one prefix apart.
        temp_dir = _temp_dir(self._prefix, uuid.uuid4().hex[:12])
        if self._num_shards:
            # An exact number of files needs every row of a shard in one writer, and only a
            # shuffle brings them there: this is the one case in which a sink moves its rows.
            written = (
                pcoll
                | "Shard" >> beam.Map(lambda row, n: (shard_of(row, n), row), self._num_shards)
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(_WriteShard(temp_dir, self._format))
            )
        else:
            written = pcoll | "WriteBundles" >> beam.ParDo(
                _WriteBundles(temp_dir, self._format, self._rows_per_shard))
        return (
            pcoll.pipeline
            | "Once" >> beam.Create([None])
            | "Finalize" >> beam.ParDo(
                _Finalize(self._prefix, self._suffix, temp_dir, self._format), beam.pvalue.AsList(written)
            )
        )


class _ParquetFile:
    """Rows -> Parquet row groups of ``row_group_rows`` rows on an open handle."""

    def __init__(self, handle: Any, schema: pa.Schema, row_group_rows: int) -> None:
        self._schema = schema
        self._row_group_rows = row_group_rows
        self._writer = pq.ParquetWriter(handle, schema)
        self._batch: list[dict[str, Any]] = []
        self._bytes = 0

    def write(self, row: dict[str, Any]) -> None:
        self._batch.append(row)
        # Characters of the string values: the text dominates, and len() costs nothing.
        self._bytes += sum(len(v) for v in row.values() if isinstance(v, str))
        if len(self._batch) >= self._row_group_rows or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._writer.write_table(pa.Table.from_pylist(self._batch, schema=self._schema))
            self._batch = []
            self._bytes = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


@dataclass(frozen=True)
class ParquetFormat:
    """Parquet with ``schema``, written in row groups; picklable, so it can ride in a DoFn."""

    schema: pa.Schema
    row_group_rows: int = ROW_GROUP_ROWS

    def open(self, handle: Any) -> RowWriter:
        return _ParquetFile(handle, self.schema, self.row_group_rows)


class _JsonLinesFile:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, line: Any) -> None:
        text = line if isinstance(line, str) else json.dumps(line, sort_keys=True)
        self._handle.write(text.encode("utf-8") + b"\n")

    def close(self) -> None:
        pass  # the handle is closed by its owner


@dataclass(frozen=True)
class JsonLinesFormat:
    """One JSON document per line, UTF-8; strings are taken as already-encoded JSON."""

    def open(self, handle: Any) -> RowWriter:
        return _JsonLinesFile(handle)


class WriteParquet(_ShardedWrite):
    """Dict rows -> ``{prefix}-NNNNN-of-MMMMM.parquet`` files with ``schema``.

    ``num_shards=0`` writes where the rows are, at most ``rows_per_shard`` rows per file; a
    positive ``num_shards`` gives exactly that many files, at the cost of a shuffle of the rows.
    """

    def __init__(self, prefix: str, schema: pa.Schema, *, file_name_suffix: str = ".parquet",
                 num_shards: int = 0, rows_per_shard: int = ROWS_PER_SHARD) -> None:
        super().__init__(prefix, file_name_suffix, num_shards, rows_per_shard, ParquetFormat(schema))


class WriteJsonLines(_ShardedWrite):
    """Strings (already JSON) or JSON-able values -> one JSON document per line, UTF-8."""

    def __init__(self, prefix: str, *, file_name_suffix: str = ".jsonl", num_shards: int = 0,
                 rows_per_shard: int = ROWS_PER_SHARD * 4) -> None:
        super().__init__(prefix, file_name_suffix, num_shards, rows_per_shard, JsonLinesFormat())
