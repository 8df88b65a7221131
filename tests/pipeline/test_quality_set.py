"""build-quality-set: URL matching by join, a deterministic per-domain cap, balanced deterministic negatives;
train-quality on the result."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.document import ARROW_SCHEMA, Document
from pipeline.cli import main
from pipeline.quality_set import domain_cap, normalize_url, parse_max_per_domain
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


def _capped_corpus(tmp_path: Path, order: list[int] | None = None) -> tuple[Path, Path]:
    """20 cited pages (big.example 12, mid.example 5, small.example 3) and 40 uncited others.

    ``order`` permutes the documents and splits them over two Parquet files, to show the cap does
    not depend on the order or the sharding of its input.
    """
    cited = ([f"https://big.example/p/{i}" for i in range(12)] + [f"https://mid.example/p/{i}" for i in range(5)]
             + [f"https://small.example/p/{i}" for i in range(3)])
    urls = cited + [f"https://other{i % 4}.example/x/{i}" for i in range(40)]
    docs = [Document(id=f"d{i:02d}", text=f"page {i} at {url}, a few words of text", url=url)
            for i, url in enumerate(urls)]
    docs = [docs[i] for i in order] if order else docs
    run = tmp_path / "run" / "documents"
    run.mkdir(parents=True)
    for part, chunk in enumerate((docs[:25], docs[25:])):
        pq.write_table(pa.Table.from_pylist([d.to_row() for d in chunk], schema=ARROW_SCHEMA),
                       run / f"part-{part}.parquet")
    refs = tmp_path / "refs.txt"
    refs.write_text("".join(f"{u}\n" for u in cited))
    return run.parent, refs


def _ids(out: Path, name: str) -> list[str]:
    return sorted(json.loads(line)["id"] for f in out.glob(f"{name}*.jsonl") for line in f.read_text().splitlines())


def _build(tmp_path: Path, name: str, cap: str, order: list[int] | None = None) -> tuple[Path, dict]:
    run, refs = _capped_corpus(tmp_path / f"in-{name}", order)
    out = tmp_path / name
    assert main(["build-quality-set", "--references", str(refs), "--input", str(run), "--output", str(out),
                 "--min-positives", "1", "--max-per-domain", cap]) == 0
    return out, json.loads((out / "stats.json").read_text())


def test_max_per_domain_keeps_the_pages_with_the_smallest_url_hash(tmp_path: Path, capsys) -> None:
    out, report = _build(tmp_path, "cap4", "4")
    # The rule, computed independently: per domain, the 4 URLs whose SHA-1 is smallest.
    by_domain: dict[str, list[tuple[bytes, str]]] = {}
    for i in range(20):
        url = (f"https://big.example/p/{i}" if i < 12 else f"https://mid.example/p/{i - 12}" if i < 17
               else f"https://small.example/p/{i - 17}")
        by_domain.setdefault(url.split("/")[2], []).append((hashlib.sha1(url.encode()).digest(), f"d{i:02d}"))
    expected = sorted(doc_id for pages in by_domain.values() for _, doc_id in sorted(pages)[:4])
    assert _ids(out, "positive") == expected and len(expected) == 11
    assert report["documents_matched"] == 20 and report["positive"] == 11
    assert report["max_per_domain"] == {"spec": "4", "cap": 4}
    assert (report["capped"], report["capped_by_domain"]) == (9, {"big.example": 8, "mid.example": 1})
    assert report["matches_by_domain"] == {"big.example": 12, "mid.example": 5, "small.example": 3}
    printed = capsys.readouterr().out
    assert "--max-per-domain 4 (at most 4 per domain) dropped 9 of 20 matched documents" in printed
    assert "(8 dropped by the cap)" in printed
    # Capped-out pages are cited pages: neither positives nor negatives.
    negatives = _ids(out, "negative")
    assert negatives and all(int(d[1:]) >= 20 for d in negatives)

    # Deterministic: another order and sharding of the same documents keeps the same pages.
    shuffled = list(range(60))
    random.Random(7).shuffle(shuffled)
    again, _ = _build(tmp_path, "cap4-shuffled", "4", shuffled)
    assert (_ids(again, "positive"), _ids(again, "negative")) == (_ids(out, "positive"), negatives)

    # No cap keeps all 20; the negatives follow the positives after the cap (a nested hash sample).
    uncapped, report0 = _build(tmp_path, "nocap", "0")
    assert (report0["positive"], report0["capped"], report0["max_per_domain"]["cap"]) == (20, 0, None)
    assert set(negatives) < set(_ids(uncapped, "negative"))


def test_max_per_domain_percentage_and_bad_values(tmp_path: Path, capsys) -> None:
    assert (domain_cap("20%", 154), domain_cap("20%", 3), domain_cap("0", 10), domain_cap("7", 10)) == (30, 1, None, 7)
    assert parse_max_per_domain(" 25% ") == "25%" and parse_max_per_domain(0) == "0"
    for bad in ("-1", "150%", "many"):
        with pytest.raises(ValueError, match="max-per-domain"):
            parse_max_per_domain(bad)
    _, report = _build(tmp_path, "pct", "25%")  # 25% of 20 matched: 5 per domain
    assert (report["positive"], report["capped_by_domain"]) == (13, {"big.example": 7})
    run, refs = _capped_corpus(tmp_path / "bad")
    with pytest.raises(SystemExit):
        main(["build-quality-set", "--references", str(refs), "--input", str(run), "--output",
              str(tmp_path / "x"), "--max-per-domain", "lots"])
    assert "expected a count" in capsys.readouterr().err
