"""File sinks that give the same files on every runner: ``WriteParquet`` and ``WriteJsonLines``.

Beam's ``WriteToParquet``/``WriteToText`` close their files in ``finish_bundle`` and hand the
names on from there; a runner that drops what ``finish_bundle`` emits (Beam 2.77's DaskRunner)
then writes empty output and leaves temp dirs behind. These sinks use only what every runner
does the same way: elements get a deterministic shard from a digest of their content, a
GroupByKey brings each shard to one worker, which writes it under a temporary name from
``process`` and emits that name, and one finalize step renames all of them to their final names
and removes the temporary directory. So a file under its final name is always whole, the same
input gives the same files, and an empty input still leaves one (empty) file with the schema.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

log = logging.getLogger(__name__)

# Without num_shards, the shard count follows the data: about this many rows per file.
ROWS_PER_SHARD = 50_000
# Rows buffered before a Parquet row group is written; bounds a writer's memory.
ROW_GROUP_ROWS = 2_000


def shard_of(element: Any, num_shards: int) -> int:
    """A shard that depends only on the element, so re-runs and retries agree.

    Rows with an ``id`` (documents, rejects) are sharded by it; anything else by its repr, which
    is stable for the dicts, strings and numbers that reach a sink.
    """
    key = element["id"] if isinstance(element, dict) and "id" in element else element
    raw = key if isinstance(key, str) else repr(key)
    digest = hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def final_name(prefix: str, index: int, count: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}{suffix}"


def _temp_dir(prefix: str, token: str) -> str:
    directory, base = prefix.rsplit("/", 1) if "/" in prefix else ("", prefix)
    # A leading dot: readers of the final directory (pyarrow, our JSON-lines globs) skip it.
    return FileSystems.join(directory, f".temp-{base}-{token}") if directory else f".temp-{base}-{token}"


class _WriteShard(beam.DoFn):
    """Writes one shard's rows to a fresh temporary file and emits ``(shard, temp path)``."""

    def __init__(self, temp_dir: str, write: Callable[[Any, Iterable[Any]], None]) -> None:
        self._temp_dir = temp_dir
        self._write = write

    def process(self, item: tuple[int, Iterable[Any]]):
        shard, rows = item
        # A fresh name per attempt: a retried bundle never appends to a half-written file.
        path = FileSystems.join(self._temp_dir, f"shard-{shard:05d}-{uuid.uuid4().hex}")
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            self._write(handle, rows)
        yield shard, path


class _Finalize(beam.DoFn):
    """Renames every written shard to its final name, in shard order, then drops the temp dir."""

    def __init__(self, prefix: str, suffix: str, temp_dir: str, write: Callable[[Any, Iterable[Any]], None]) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._temp_dir = temp_dir
        self._write = write

    def process(self, _: Any, written: list[tuple[int, str]]):
        by_shard = dict(sorted(written))  # one path per shard, even if a runner retried one
        if not by_shard:
            empty = FileSystems.join(self._temp_dir, "shard-empty")
            with FileSystems.create(empty, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                self._write(handle, [])
            by_shard = {0: empty}
        count = len(by_shard)
        sources = list(by_shard.values())
        targets = [final_name(self._prefix, i, count, self._suffix) for i in range(count)]
        pending = [(s, t) for s, t in zip(sources, targets, strict=True) if FileSystems.exists(s)]
        if pending:
            FileSystems.rename([s for s, _ in pending], [t for _, t in pending])
        _remove_dir(self._temp_dir)
        log.debug("%s: %d file(s) written", self._prefix, count)
        yield from targets


def _remove_dir(directory: str) -> None:
    """Object stores have no directories: delete what is under it, then the local directory if any."""
    leftovers = [m.path for r in FileSystems.match([FileSystems.join(directory, "*")]) for m in r.metadata_list]
    if leftovers:
        FileSystems.delete(leftovers)
    if FileSystems.exists(directory):
        FileSystems.delete([directory])


class _ShardedWrite(beam.PTransform):
    """Shard, group, write to temp files, then finalize; outputs the final file paths."""

    def __init__(self, prefix: str, suffix: str, num_shards: int, rows_per_shard: int,
                 write: Callable[[Any, Iterable[Any]], None]) -> None:
        super().__init__()
        if num_shards < 0 or rows_per_shard < 1:
            raise ValueError("num_shards must be >= 0 and rows_per_shard >= 1")
        self._prefix = prefix
        self._suffix = suffix
        self._num_shards = num_shards
        self._rows_per_shard = rows_per_shard
        self._write = write

    def expand(self, pcoll):
        # One token per pipeline construction keeps concurrent writers to one prefix apart.
        temp_dir = _temp_dir(self._prefix, uuid.uuid4().hex[:12])
        if self._num_shards:
            keyed = pcoll | "Shard" >> beam.Map(_keyed, self._num_shards, 1)
        else:
            count = pcoll | "Count" >> beam.combiners.Count.Globally()
            keyed = pcoll | "Shard" >> beam.Map(_keyed, beam.pvalue.AsSingleton(count), self._rows_per_shard)
        written = (
            keyed
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteShard(temp_dir, self._write))
        )
        return (
            pcoll.pipeline
            | "Once" >> beam.Create([None])
            | "Finalize" >> beam.ParDo(
                _Finalize(self._prefix, self._suffix, temp_dir, self._write), beam.pvalue.AsList(written)
            )
        )


def _keyed(row: Any, rows: int, rows_per_shard: int) -> tuple[int, Any]:
    return shard_of(row, max(1, math.ceil(rows / rows_per_shard))), row


class _ParquetWriter:
    """Streams rows into a Parquet file in row groups; picklable, so it can ride in a DoFn."""

    def __init__(self, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.schema = schema
        self.row_group_rows = row_group_rows

    def __call__(self, handle: Any, rows: Iterable[dict[str, Any]]) -> None:
        with pq.ParquetWriter(handle, self.schema) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= self.row_group_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema=self.schema))
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=self.schema))


def _write_json_lines(handle: Any, lines: Iterable[Any]) -> None:
    for line in lines:
        text = line if isinstance(line, str) else json.dumps(line, sort_keys=True)
        handle.write(text.encode("utf-8") + b"\n")


class WriteParquet(_ShardedWrite):
    """Dict rows -> ``{prefix}-NNNNN-of-MMMMM.parquet`` files with ``schema``.

    ``num_shards=0`` picks the count from the data (about ``rows_per_shard`` rows per file).
    """

    def __init__(self, prefix: str, schema: pa.Schema, *, file_name_suffix: str = ".parquet",
                 num_shards: int = 0, rows_per_shard: int = ROWS_PER_SHARD) -> None:
        super().__init__(prefix, file_name_suffix, num_shards, rows_per_shard, _ParquetWriter(schema))


class WriteJsonLines(_ShardedWrite):
    """Strings (already JSON) or JSON-able values -> one JSON document per line, UTF-8."""

    def __init__(self, prefix: str, *, file_name_suffix: str = ".jsonl", num_shards: int = 0,
                 rows_per_shard: int = ROWS_PER_SHARD * 4) -> None:
        super().__init__(prefix, file_name_suffix, num_shards, rows_per_shard, _write_json_lines)
