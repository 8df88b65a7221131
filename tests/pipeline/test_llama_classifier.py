"""The quality classifier trained the LLaMA way on the shared data, end to end, with its figures.

References come from the shared enwiki dump sample (wiki-references), pages from the shared
WARCs (curated by `refinery run`, resiliparse, no filter stages) and the 181 pages of the
ScrapingHub article-extraction benchmark (their gold article text and URL). What the sample
allows is asserted exactly: not one crawled page is itself cited, so URL matching refuses to
train; matching cited domains (the named alternative) gives 154 matches, 91 of them archive.org,
which the default --max-per-domain (20% of the matches: 30) cuts to 93 positives; the held-out AUC
is reported with its 95% interval on that many pages: on this sample, not distinguishable from chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.auc_confidence import auc_interval
from filters.document import ARROW_SCHEMA, Document
from filters.quality_classifier import train_quality_classifier
from filters.text_sources import read_texts
from pipeline.cli import main
from tests.conftest import SHARED_DATA, WARC_DIR

DUMP = (SHARED_DATA / "quality" / "positive" / "wikipedia"
        / "gensim_enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
AEB = SHARED_DATA / "html_extraction" / "scrapinghub_article_extraction_benchmark" / "ground-truth.json"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llama")
    assert main(["wiki-references", "--input", str(DUMP), "--output", str(root / "refs")]) == 0
    assert main(["run", "--input", str(WARC_DIR), "--output", str(root / "crawl"),
                 "--set", "extract.engine=resiliparse", "--set", "stages=[]"]) == 0
    gold = json.loads(AEB.read_text())
    docs = [Document(id=f"aeb:{key}", text=page["articleBody"], url=page["url"], source="aeb")
            for key, page in sorted(gold.items())]
    (root / "aeb").mkdir()
    pq.write_table(pa.Table.from_pylist([d.to_row() for d in docs], schema=ARROW_SCHEMA), root / "aeb" / "p.parquet")
    return {"root": root, "refs": root / "refs", "pages": [str(root / "crawl"), str(root / "aeb")]}


def test_no_crawled_page_is_itself_cited_so_url_matching_refuses(shared: dict, capsys) -> None:
    out = shared["root"] / "by-url"
    assert main(["build-quality-set", "--references", str(shared["refs"]), "--input", *shared["pages"],
                 "--output", str(out)]) == 1
    assert "only 0 of 679 documents matched the 3943 distinct references" in capsys.readouterr().err
    report = json.loads((out / "stats.json").read_text())
    assert (report["references"], report["references_matched"], report["positive"]) == (3943, 0, 0)


def test_cited_domains_train_a_classifier_and_its_auc_is_reported(shared: dict) -> None:
    out = shared["root"] / "by-domain"
    assert main(["build-quality-set", "--references", str(shared["refs"]), "--input", *shared["pages"],
                 "--output", str(out), "--match", "domain", "--min-positives", "90"]) == 0
    report = json.loads((out / "stats.json").read_text())
    assert (report["documents"], report["references"], report["references_matched"]) == (679, 1963, 33)
    # The sample's weakness, asserted so it is not forgotten: a 2008 crawl of archive.org is most of the
    # matches; the default cap keeps 30 of its 91 pages, which leaves 93 positives, under the default
    # --min-positives of 100 (hence 90 here: the sample is that small).
    assert list(report["matches_by_domain"].items())[:2] == [("archive.org", 91), ("iana.org", 16)]
    assert (report["documents_matched"], report["max_per_domain"]) == (154, {"spec": "20%", "cap": 30})
    assert (report["capped"], report["capped_by_domain"]) == (61, {"archive.org": 61})
    assert (report["positive"], report["negative"]) == (93, 91)

    def texts(name: str):
        # In Beam's (unfixed) order: train_quality_classifier sorts them itself.
        return [t for f in out.glob(f"{name}*.jsonl") for t in read_texts(f)]

    quality = train_quality_classifier(texts("positive"), texts("negative"), shared["root"] / "q.bin",
                                       dim=16, epoch=10, holdout_fraction=0.3)
    low, high = auc_interval(quality.auc, quality.n_holdout_positive, quality.n_holdout_negative)
    print(f"\nheld-out AUC {quality.auc:.3f}, 95% CI [{low:.3f}, {high:.3f}] on "
          f"{quality.n_holdout_positive}+{quality.n_holdout_negative} pages")
    assert (quality.n_holdout_positive, quality.n_holdout_negative) == (28, 28)
    # Measured, not wished for: once archive.org is capped, 28+28 held-out pages cannot tell this classifier
    # from chance (AUC 0.61, 95% interval 0.46-0.75, README). Deterministic whatever the line order, so
    # the figure is pinned: a change of sample, recipe or trainer makes README's figures be revisited.
    assert 0.0 <= low <= quality.auc <= high <= 1.0
    assert round(quality.auc, 2) == 0.61 and round(low, 2) == 0.46
