"""WriteParquet and WriteJsonLines on the DirectRunner: files without a shuffle of the rows."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.sinks import ParquetFormat, WriteJsonLines, WriteParquet, _Finalize, OpenFile

SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("n", pa.int64())])
ROWS = [{"id": f"r{i:04d}", "n": i} for i in range(1000)]


def _sink_groups(p: beam.Pipeline) -> bool:
    """Whether any GroupByKey sits inside a sink (beam.Create has its own Reshuffle)."""
    found: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node) -> None:
            if isinstance(node.transform, beam.GroupByKey) and node.full_label.startswith("Write"):
                found.append(node.full_label)

    p.visit(Visitor())
    return bool(found)


def test_rows_are_written_where_they_are_in_files_of_at_most_rows_per_shard(tmp_path: Path) -> None:
    p = beam.Pipeline(runner="DirectRunner")
    rows = p | beam.Create(ROWS)
    _ = rows | "WriteParquet" >> WriteParquet(str(tmp_path / "pq" / "part"), SCHEMA, rows_per_shard=300)
    _ = rows | "WriteJson" >> WriteJsonLines(str(tmp_path / "js" / "part"), rows_per_shard=300)
    assert not _sink_groups(p)  # no shuffle of the rows when num_shards is 0
    p.run().wait_until_finish()

    names = sorted(f.name for f in (tmp_path / "pq").iterdir())
    assert len(names) >= 4
    assert names == [f"part-{i:05d}-of-{len(names):05d}.parquet" for i in range(len(names))]
    assert all(pq.read_metadata(tmp_path / "pq" / n).num_rows <= 300 for n in names)
    assert sorted(pq.read_table(tmp_path / "pq").to_pylist(), key=lambda r: r["n"]) == ROWS
    lines = [json.loads(x) for f in (tmp_path / "js").iterdir() for x in f.read_text().splitlines()]
    assert sorted(lines, key=lambda r: r["n"]) == ROWS
    assert sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob(".temp*")) == []


def test_num_shards_gives_exactly_that_many_files(tmp_path: Path) -> None:
    p = beam.Pipeline(runner="DirectRunner")
    _ = p | beam.Create(ROWS) | "WriteSharded" >> WriteParquet(str(tmp_path / "part"), SCHEMA, num_shards=3)
    assert _sink_groups(p)
    p.run().wait_until_finish()
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"part-{i:05d}-of-00003.parquet" for i in range(3)]
    assert pq.read_table(tmp_path).num_rows == len(ROWS)


def test_finalize_takes_only_the_files_it_is_told_about(tmp_path: Path) -> None:
    """A failed, retried bundle leaves a stray temporary file; it must not become output."""
    temp = str(tmp_path / ".temp-part-x")
    fmt = ParquetFormat(SCHEMA)
    written = []
    for name, rows in (("b", ROWS[500:]), ("a", ROWS[:500]), ("stray", ROWS[:10])):
        out = OpenFile(FileSystems.join(temp, name), fmt)
        for row in rows:
            out.write(row)
        written.append(out.close())
    finalize = _Finalize(str(tmp_path / "part"), ".parquet", temp, fmt)
    targets = list(finalize.process(None, written[:2]))
    assert [Path(t).name for t in targets] == ["part-00000-of-00002.parquet", "part-00001-of-00002.parquet"]
    # Numbered by each file's smallest row key, not by which bundle finished first.
    assert pq.read_table(targets[0]).column("id")[0].as_py() == "r0000"
    # The stray file and the temporary directory are gone.
    assert sorted(f.name for f in tmp_path.iterdir()) == [Path(t).name for t in targets]
