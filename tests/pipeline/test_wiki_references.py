"""refinery wiki-references on the shared enwiki dump sample: counts, dedup, formats, bad input."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.urls import match_key
from pipeline.cli import main
from tests.conftest import SHARED_DATA

DUMP = (SHARED_DATA / "quality" / "positive" / "wikipedia"
        / "gensim_enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refs") / "text"
    assert main(["wiki-references", "--input", str(DUMP), "--output", str(out)]) == 0
    return out


def test_the_dump_sample_cites_3943_pages_and_every_page_is_accounted_for(text_run: Path) -> None:
    stats = json.loads((text_run / "stats.json").read_text())
    counts = stats["counts"]
    # 206 pages: 106 articles, 99 redirects, 1 outside namespace 0 (the shared data's SOURCES.md).
    assert (counts["pages.articles"], counts["pages.wikipedia.redirect"], counts["pages.wikipedia.not_article"]) \
        == (106, 99, 1)
    assert (counts["citations.cite_url"], counts["citations.archive_url"], counts["citations.ref_link"]) \
        == (3053, 618, 811)
    assert counts["skipped.url.not_http"] == 21  # {{Google books}} in url= and the like
    assert counts["urls.distinct"] == 3943 and counts["domains.distinct"] == 1963
    urls = [line for f in text_run.glob("urls-*.txt") for line in f.read_text().splitlines()]
    assert len(urls) == 3943 and len({match_key(u) for u in urls}) == 3943
    assert "http://www.marxists.org/archive/malatesta/1930s/xx/toanarchy.htm" in urls  # Anarchism's {{cite journal}}
    domains = {line.split("\t")[0]: line.split("\t")[1:]
               for f in text_run.glob("domains-*.tsv") for line in f.read_text().splitlines()}
    assert len(domains) == 1963 and domains["nytimes.com"][0] == "47"
    assert stats["top_domains"][0] == {"domain": "books.google.com", "urls": 382, "articles": 382}
    assert (text_run / "_SUCCESS").exists()


def test_parquet_output_and_all_links(tmp_path: Path, text_run: Path) -> None:
    out = tmp_path / "all"
    assert main(["wiki-references", "--input", str(DUMP), "--output", str(out), "--all-links",
                 "--format", "parquet"]) == 0
    table = pq.read_table(list(out.glob("urls-*.parquet")))
    assert table.column_names == ["url", "key", "domain", "articles", "kinds"]
    cited = {match_key(line) for f in text_run.glob("urls-*.txt") for line in f.read_text().splitlines()}
    keys = set(table.column("key").to_pylist())
    assert cited < keys and len(keys) == table.num_rows  # every reference, plus the other external links
    assert "external_link" in {k for kinds in table.column("kinds").to_pylist() for k in kinds.split(",")}


def test_a_truncated_dump_keeps_what_was_read_and_exits_1(tmp_path: Path, capsys) -> None:
    whole = bz2.decompress(DUMP.read_bytes())
    broken = tmp_path / "enwiki-truncated.xml.bz2"
    broken.write_bytes(bz2.compress(whole[: len(whole) // 2]))
    out = tmp_path / "out"
    assert main(["wiki-references", "--input", str(broken), "--output", str(out)]) == 1
    assert "1 of 1 dump(s) broke midway" in capsys.readouterr().err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["counts"]["dump.broken"] == 1 and 0 < stats["counts"]["pages.articles"] < 106
    assert not (out / "_SUCCESS").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["wiki-references", "--input", str(tmp_path / "nope.xml.bz2"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("refinery wiki-references: error:") and "\n" not in err
