"""LineDedup's sketch: only lines it cannot rule out reach the exact per-line count."""

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from filters.document import Document
from pipeline.line_dedup import LineDedup, LineDedupConfig

FOOTER = "Accept all cookies to continue browsing this website today"


def _doc(i: int) -> Document:
    body = "\n".join(f"Line {chr(97 + i)} number {chr(97 + j)} of a page about topic {chr(97 + i)}." for j in range(20))
    return Document(id=f"d{i:02d}", text=f"{body}\n{FOOTER}")


def _counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(f"LineDedup.{name}"))["counters"]
    return sum(c.committed for c in found)


def test_only_candidate_lines_are_grouped(tmp_path):
    p = beam.Pipeline(runner="DirectRunner")
    docs = p | beam.Create([_doc(i) for i in range(12)])
    out = docs | LineDedup(LineDedupConfig(max_documents=10, min_chars_after=50), spill_dir=str(tmp_path / "s"))
    assert_that(out["kept"] | beam.Map(lambda d: (d.id, FOOTER in d.text, d.meta["line_dedup_removed"])),
                equal_to([(f"d{i:02d}", False, "1") for i in range(12)]))
    result = p.run()
    result.wait_until_finish()
    # 12 x 21 distinct lines were sketched; the footer (in 12 pages > 10) is the only candidate.
    assert _counter(result, "candidate_lines") == 12
    assert _counter(result, "frequent_lines") == 1


def test_a_crowded_sketch_costs_shuffle_not_correctness(tmp_path):
    p = beam.Pipeline(runner="DirectRunner")
    docs = p | beam.Create([_doc(i) for i in range(12)])
    config = LineDedupConfig(max_documents=10, min_chars_after=50, sketch_cells=2)
    out = docs | LineDedup(config, spill_dir=str(tmp_path / "s"))
    assert_that(out["kept"] | beam.Map(lambda d: FOOTER in d.text), equal_to([False] * 12))
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, "candidate_lines") == 12 * 21  # every line was counted exactly
    assert _counter(result, "frequent_lines") == 1
