"""build-quality-set: URL matching by join, balanced deterministic negatives; train-quality on the result."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.document import ARROW_SCHEMA, Document
from pipeline.cli import main
from pipeline.quality_set import normalize_url
from tests.conftest import SHARED_DATA


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://WWW.Example.org/Page/", "http://example.org/Page"),
        ("http://example.org:80/a#section", "http://example.org/a"),
        ("https://example.org/a?x=1", "https://example.org/a?x=1"),
    ],
)
def test_urls_that_name_the_same_page_match(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)


def test_paths_stay_case_sensitive() -> None:
    assert normalize_url("http://example.org/Page") != normalize_url("http://example.org/page")


def _documents(tmp_path: Path) -> Path:
    """Real paragraphs from the shared WikiText file, as a documents Parquet of 200 pages."""
    raw = (SHARED_DATA / "quality" / "positive" / "wikipedia" / "wikitext-2-raw-v1_wiki.test.raw").read_text()
    paragraphs = [p.strip() for p in raw.split("\n") if len(p.strip()) > 200][:200]
    docs = [Document(id=f"doc-{i:03d}", text=p, url=f"https://site{i % 7}.example/page/{i}")
            for i, p in enumerate(paragraphs)]
    path = tmp_path / "run" / "documents" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([d.to_row() for d in docs], schema=ARROW_SCHEMA), path)
    return tmp_path / "run"


def test_positives_by_reference_and_as_many_negatives(tmp_path: Path, capsys) -> None:
    run = _documents(tmp_path)
    refs = tmp_path / "refs.txt"
    # 30 references in another spelling of the same URLs, plus one that is not in the corpus.
    refs.write_text("".join(f"http://WWW.SITE{i % 7}.EXAMPLE/page/{i}/\n" for i in range(0, 60, 2))
                    + "https://elsewhere.example/x\n")
    out = tmp_path / "set"
    assert main(["build-quality-set", "--references", str(refs), "--input", str(run), "--output", str(out)]) == 1
    assert "only 30 of 200 documents matched the 31 distinct references" in capsys.readouterr().err
    assert not (out / "_SUCCESS").exists()
    assert main(["build-quality-set", "--references", str(refs), "--input", str(run), "--output", str(out),
                 "--min-positives", "30"]) == 0
    report = json.loads((out / "stats.json").read_text())
    assert (report["references"], report["references_matched"], report["documents"]) == (31, 30, 200)
    assert report["matches_by_domain"] == Counter(f"site{i % 7}.example" for i in range(0, 60, 2))
    assert (out / "matches_by_domain.tsv").read_text().startswith("site0.example\t5\n")
    positives = [json.loads(line) for f in sorted(out.glob("positive*.jsonl")) for line in f.read_text().splitlines()]
    negatives = [json.loads(line) for f in sorted(out.glob("negative*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(d["id"] for d in positives) == [f"doc-{i:03d}" for i in range(0, 60, 2)]
    assert not {d["id"] for d in positives} & {d["id"] for d in negatives}
    assert 15 <= len(negatives) <= 45  # a hash sample at rate 30/170: about as many as the positives
    # Deterministic: a second build picks the same negatives.
    again = tmp_path / "again"
    assert main(["build-quality-set", "--references", str(refs), "--input", str(run), "--output", str(again),
                 "--min-positives", "1"]) == 0
    assert sorted(f.read_text() for f in again.glob("negative*.jsonl")) == sorted(
        f.read_text() for f in out.glob("negative*.jsonl"))


def test_train_quality_from_files_reports_held_out_figures(tmp_path: Path) -> None:
    positive = SHARED_DATA / "quality" / "positive" / "gutenberg"
    negative = tmp_path / "negative.jsonl"
    spam = ["buy cheap watches now best price free shipping click here " * 8,
            "casino bonus win big jackpot slots free spins register today " * 8,
            "hot singles in your area click to chat now free registration " * 8]
    negative.write_text("".join(json.dumps({"text": f"{s} offer {i}"}) + "\n" for i in range(60) for s in spam))
    model = tmp_path / "quality.bin"
    assert main(["train-quality", "--positive", str(positive), "--negative", str(negative), "--output", str(model),
                 "--dim", "16", "--epoch", "5"]) == 0
    report = json.loads(model.with_suffix(".report.json").read_text())
    assert model.exists() and report["auc"] > 0.9
