"""ReadWikipedia on the real shortened enwiki dump (206 pages: 106 articles, 99 redirects, 1 project page)."""

from __future__ import annotations

import pytest

from pipeline.sources.wikipedia import (
    NOT_ARTICLE,
    REDIRECT,
    WikipediaOptions,
    language_from_dump_name,
    read_wikipedia,
)
from tests.pipeline.sources.harness import SHARED_DATA, run_reader

DUMP = (SHARED_DATA / "quality" / "positive" / "wikipedia"
        / "gensim_enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    return run_reader(read_wikipedia(WikipediaOptions()), [str(DUMP)], tmp_path_factory.mktemp("wiki"))


def test_every_page_is_accounted_for(output):
    output.check_accounting()
    assert output.records() == 206
    assert output.skipped() == {REDIRECT: 99, NOT_ARTICLE: 1}
    assert len(output.kept) == 106 and output.dropped == [] and output.errors == []


def test_articles_are_plain_text_with_stable_ids(output):
    anarchism = output.by_id()["wikipedia:en:12"]
    assert anarchism.url == "https://en.wikipedia.org/wiki/Anarchism"
    assert (anarchism.lang, anarchism.source, anarchism.meta["title"]) == ("en", "wikipedia", "Anarchism")
    assert anarchism.timestamp.endswith("Z")
    assert anarchism.text.startswith("Anarchism is a political philosophy")
    for doc in output.kept:
        for markup in ("{{", "}}", "[[", "]]", "<ref", "{|", "[http", "Category:", "thumb|", "'''"):
            assert markup not in doc.text, (doc.id, markup)
        assert "\nReferences\n" not in doc.text


def test_language_from_dump_names():
    assert language_from_dump_name("dumps/enwiki-20240101-pages-articles1.xml-p1p41242.bz2") == "en"
    assert language_from_dump_name("gensim_enwiki-latest-pages-articles1.xml.bz2") == "en"
    assert language_from_dump_name("zh_min_nanwiki-20240101-pages-articles.xml.bz2") == "zh_min_nan"
    assert language_from_dump_name("simplewiki-latest-pages-articles.xml.bz2") == "en"
    assert language_from_dump_name("articles.xml.bz2") is None


def test_language_option_wins_and_a_truncated_dump_keeps_what_it_read(tmp_path):
    truncated = tmp_path / "dewiki-20240101-pages-articles.xml.bz2"
    truncated.write_bytes(DUMP.read_bytes()[:300_000])
    output = run_reader(read_wikipedia(WikipediaOptions(language="fr")), [str(truncated)], tmp_path / "out")
    output.check_accounting()
    assert len(output.errors) == 1 and output.errors[0]["warc_file"] == str(truncated)
    assert 0 < output.records() < 206
    assert output.kept and all(d.id.startswith("wikipedia:fr:") and d.lang == "fr" for d in output.kept)
