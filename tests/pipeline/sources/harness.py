"""Run a reader PTransform under a Beam TestPipeline and read back everything it produced.

The outputs are written as JSON lines and read back after the run, so that tests can assert on
them with plain Python; :meth:`ReaderOutput.check_accounting` is the funnel's per-file contract:
records == kept + dropped + skipped.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from filters.document import Document
from pipeline.funnel import COUNTS, ERRORS, RECORDS, error_to_json
from pipeline.stage import DROPPED, KEPT

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "sources"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@dataclass
class ReaderOutput:
    kept: list[Document]
    dropped: list[tuple[Document, str, str]]  # (document, stage, reason)
    counts: dict[tuple[str, str, str], int]
    errors: list[dict[str, Any]]

    def by_id(self) -> dict[str, Document]:
        return {d.id: d for d in self.kept}

    def drop_reasons(self) -> dict[str, str]:
        return {d.id: reason for d, _, reason in self.dropped}

    def skipped(self) -> Counter[str]:
        """Skips by reason, summed over files."""
        total: Counter[str] = Counter()
        for (_, _, reason), n in self.counts.items():
            if reason != RECORDS:
                total[reason] += n
        return total

    def records(self, file: str | None = None) -> int:
        return sum(n for (f, _, reason), n in self.counts.items() if reason == RECORDS and file in (None, f))

    def check_accounting(self) -> None:
        """Per file: the records the reader counted are exactly its kept + dropped + skipped."""
        seen: dict[str, int] = defaultdict(int)
        for doc in self.kept:
            seen[doc.warc_file] += 1
        for doc, _, _ in self.dropped:
            seen[doc.warc_file] += 1
        for (file, _, reason), n in self.counts.items():
            if reason != RECORDS:
                seen[file] += n
        records = {f: n for (f, _, reason), n in self.counts.items() if reason == RECORDS}
        assert set(seen) <= set(records), f"outputs for files without a records count: {set(seen) - set(records)}"
        for file, n in records.items():
            assert seen[file] == n, f"{file}: {n} records but {seen[file]} kept + dropped + skipped"


def _read_lines(directory: Path, prefix: str) -> list[Any]:
    rows = []
    for path in sorted(directory.glob(f"{prefix}*")):
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return rows


def run_reader(reader: beam.PTransform, paths: list[str], workdir: Path) -> ReaderOutput:
    """Run ``reader`` on ``paths`` with the DirectRunner; every output comes back as Python values."""
    workdir.mkdir(parents=True, exist_ok=True)
    with BeamTestPipeline(runner="DirectRunner") as p:
        out = p | "Paths" >> beam.Create(paths) | "Reader" >> reader
        _ = (out[KEPT] | "KeptJson" >> beam.Map(lambda d: json.dumps(d.to_row()))
             | "WriteKept" >> beam.io.WriteToText(str(workdir / "kept")))
        _ = (out[DROPPED]
             | "DroppedJson" >> beam.Map(lambda d: json.dumps([d.doc.to_row(), d.stage, d.reason]))
             | "WriteDropped" >> beam.io.WriteToText(str(workdir / "dropped")))
        _ = (out[COUNTS] | "Sum" >> beam.CombinePerKey(sum)
             | "CountsJson" >> beam.Map(lambda kv: json.dumps([list(kv[0]), kv[1]]))
             | "WriteCounts" >> beam.io.WriteToText(str(workdir / "counts")))
        _ = (out[ERRORS] | "ErrorsJson" >> beam.Map(error_to_json)
             | "WriteErrors" >> beam.io.WriteToText(str(workdir / "errors")))
    kept = [Document.from_row(row) for row in _read_lines(workdir, "kept")]
    dropped = [(Document.from_row(row), stage, reason) for row, stage, reason in _read_lines(workdir, "dropped")]
    counts = {tuple(key): n for key, n in _read_lines(workdir, "counts")}
    errors = _read_lines(workdir, "errors")
    return ReaderOutput(kept, dropped, counts, errors)
