"""Documents wait on disk while line dedup and dedup decide (pipeline/spill.py): the decisions are
those of a join of documents, text crosses no shuffle, and nothing is left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from filters.document import Document
from filters.minhash import DedupConfig
from pipeline.dedup import EXACT_DUPLICATE, NEAR_DUPLICATE, MinHashDedup
from pipeline.line_dedup import LineDedup, LineDedupConfig
from pipeline.spill import ApplyVerdicts, SpillDocuments
from pipeline.stage import Dropped
from tests.pipeline.test_dedup import WIKITEXT, edited

BOILERPLATE = "Accept all cookies to continue browsing this website today"


def _corpus(words: list[str], index: int) -> Document:
    """Documents 0-11 share a footer line; 0-3 are one article, 1 exactly and 2-3 lightly edited;
    12 is almost nothing but the footer."""
    if index == 12:
        return Document(id="d12", text=f"Short note.\n{BOILERPLATE}")
    start = 0 if index < 4 else 1000 * index
    body = " ".join(words[start:start + 400])
    if index in (2, 3):
        body = edited(body, 60, offset=index)
    return Document(id=f"d{index:02d}", text=f"{body}\n{BOILERPLATE}", timestamp=f"2020-01-{index + 1:02d}T00:00:00Z")


@pytest.fixture(scope="module")
def words() -> list[str]:
    return WIKITEXT.read_text(encoding="utf-8").split()


def _contains_document(value: Any) -> bool:
    if isinstance(value, (Document, Dropped)):
        return True
    if isinstance(value, (tuple, list)):
        return any(_contains_document(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_document(v) for v in value.values())
    return False


def _line_dedup_then_dedup(p: beam.Pipeline, words: list[str], spill: Path) -> None:
    docs = p | beam.Create(range(13)) | "Make" >> beam.Map(lambda i, w: _corpus(w, i), words)
    lines = docs | LineDedup(LineDedupConfig(max_documents=10, min_chars_after=50), spill_dir=str(spill / "lines"))
    dedup = lines["kept"] | MinHashDedup(DedupConfig(), exact=True, spill_dir=str(spill / "dedup"))
    kept = dedup["kept"] | "Kept" >> beam.Map(lambda d: (d.id, BOILERPLATE in d.text, d.meta.get("line_dedup_removed")))
    dropped = ((lines["dropped"], dedup["dropped"]) | beam.Flatten()
               | "Reasons" >> beam.Map(lambda d: (d.doc.id, d.reason)))
    assert_that(kept, equal_to([("d00", False, "1")] + [(f"d{i:02d}", False, "1") for i in range(4, 12)]), label="K")
    assert_that(dropped, equal_to([
        ("d12", "line_dedup.too_short_after_removal"), ("d01", EXACT_DUPLICATE),
        ("d02", NEAR_DUPLICATE), ("d03", NEAR_DUPLICATE)]), label="D")


def test_line_dedup_and_dedup_decide_on_spilled_documents(words: list[str], tmp_path: Path) -> None:
    with beam.Pipeline(runner="DirectRunner") as p:
        _line_dedup_then_dedup(p, words, tmp_path)
    assert not list(tmp_path.rglob("*.parquet")), "spill files outlived the run"


def test_text_crosses_no_shuffle(words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On our Dask runner every shuffled element passes through ``_write_pieces``: none may hold a
    document (workers are threads of this process here, so they see the patched function)."""
    pytest.importorskip("dask", reason="install the dask extra: pip install -e '.[dask]'")
    distributed = pytest.importorskip("dask.distributed")
    from pipeline import dask_shuffle

    shuffled: list[Any] = []
    write = dask_shuffle._write_pieces

    def recording(routed, path, n_out):
        routed = list(routed)
        shuffled.extend(element for _, element in routed)
        return write(routed, path, n_out)

    monkeypatch.setattr(dask_shuffle, "_write_pieces", recording)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as local:
        args = ["--runner", "pipeline.dask_runner.DaskRunner", "--dask_client_address", local.scheduler_address,
                "--dask_npartitions", "2"]
        with beam.Pipeline(options=PipelineOptions(args)) as p:
            _line_dedup_then_dedup(p, words, tmp_path)
    assert len(shuffled) > 100  # line hashes, digests, bucket members, places, verdicts
    assert not [e for e in shuffled if _contains_document(e)]


def test_a_verdict_for_a_row_the_file_lacks_fails_the_bundle(tmp_path: Path) -> None:
    class Keep:
        def setup(self) -> None: ...

        def apply(self, doc, verdicts):
            yield doc

    with pytest.raises(Exception, match="verdicts name rows"):
        with beam.Pipeline(runner="DirectRunner") as p:
            spilled = p | beam.Create([Document(id="a", text="a")]) | SpillDocuments(str(tmp_path))
            bogus = spilled["kept"] | beam.Map(lambda s: (s.place.file, (s.place.row + 5, "drop")))
            _ = (spilled["spill_files"], bogus) | ApplyVerdicts(str(tmp_path), Keep())
