"""The demo's samples of the other mixture sources run through their own configs as planned.

Each sample (pipeline/demo_sources.py) is written in its source's real format and plants records
that the recipe must drop; here every source is run end to end with ``pipeline.run.run`` and its
config from configs/sources/, and the funnel must show the planted drops, account for every
record and keep real documents, cleaned the way the source's cleaner promises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import parse

import pyarrow.parquet as pq
import pytest

from filters.stackexchange import html_to_text
from pipeline.demo_corpus import demo_pages
from pipeline.demo_sources import SourceSample, wiki_cited_pages, write_source_samples
from pipeline.run import run
from pipeline.sources import SOURCE_READERS
from pipeline.wiki_references import wiki_references

pytestmark = pytest.mark.integration


@dataclass
class SourceRun:
    stats: dict[str, Any]
    documents: list[dict[str, Any]]
    rejects: list[dict[str, Any]]

    def reasons(self) -> dict[str, int]:
        """Drops by reason over the whole funnel."""
        return {r: n for stage in self.stats["funnel"] for r, n in stage["reasons"].items()}

    def doc(self, doc_id: str) -> dict[str, Any]:
        return next(d for d in self.documents if d["id"] == doc_id)

    def ids(self) -> set[str]:
        return {d["id"] for d in self.documents}


def _rows(directory: Path) -> list[dict[str, Any]]:
    """Parquet rows, with ``meta`` (an Arrow map, read as pairs) back as a dict."""
    rows = pq.read_table(directory).to_pylist() if directory.is_dir() else []
    return [{**row, "meta": dict(row["meta"] or [])} for row in rows]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SourceSample]:
    return write_source_samples(tmp_path_factory.mktemp("demo-sources"))


@pytest.fixture(scope="module")
def source_run(samples: dict[str, SourceSample], tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str], SourceRun]:
    """Runs a source's sample once per module, on first use, so one test can be run alone."""
    out_root = tmp_path_factory.mktemp("demo-source-runs")
    done: dict[str, SourceRun] = {}

    def get(name: str) -> SourceRun:
        if name not in done:
            sample = samples[name]
            out = out_root / name
            result = run(sample.inputs, str(out), config=sample.config, overwrite=True)
            done[name] = SourceRun(result.stats, _rows(out / "documents"), _rows(out / "rejects"))
        return done[name]

    return get


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_sample_per_registered_source_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = write_source_samples(tmp_path / "a", seed=5)
    write_source_samples(tmp_path / "b", seed=5)
    write_source_samples(tmp_path / "c", seed=6)
    assert set(first) == set(SOURCE_READERS)
    for name, sample in first.items():
        assert sample.config.is_file() and sample.config.stem == name
        assert sample.inputs and all(Path(p).exists() for p in sample.inputs)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


@pytest.mark.parametrize("name", sorted(SOURCE_READERS))
def test_source_runs_clean_with_the_planted_drops(name: str, samples: dict[str, SourceSample],
                                                 source_run: Callable[[str], SourceRun]) -> None:
    result = source_run(name)
    assert result.stats["accounting_ok"]
    assert result.stats["totals"]["failed_files"] == 0
    assert result.stats["totals"]["kept"] >= 1 and len(result.documents) == result.stats["totals"]["kept"]
    missing = set(samples[name].expected_drops) - set(result.reasons())
    assert not missing, f"{name}: planted drops did not happen: {missing}"


def test_wikipedia_keeps_articles_only_as_plain_text(source_run: Callable[[str], SourceRun]) -> None:
    wiki = source_run("wikipedia")
    assert wiki.ids() == {f"wikipedia:en:{i}" for i in range(100, 106)}
    reasons = wiki.reasons()
    assert reasons["wikipedia.redirect"] == 1 and reasons["wikipedia.not_article"] == 1
    for doc in wiki.documents:
        assert doc["lang"] == "en" and not doc["meta"]["title"].startswith("Talk:")
        for markup in ("{{", "[[", "<ref", "wikitable", "Category:", "<!--", "Reflist", "https://"):
            assert markup not in doc["text"], (doc["id"], markup)
    assert "Walled garden is a subject of gardening." in wiki.doc("wikipedia:en:100")["text"]


def test_wikipedia_cites_the_crawl_pages_the_demo_trains_on(samples: dict[str, SourceSample],
                                                            tmp_path: Path) -> None:
    """wiki-references on the sample lists exactly the crawl's cited pages: the demo's positives."""
    stats = wiki_references(samples["wikipedia"].inputs, str(tmp_path / "refs"))
    urls = {line for f in (tmp_path / "refs").glob("urls-*.txt") for line in f.read_text().splitlines()}
    cited = {p.url for p in wiki_cited_pages()}
    assert urls == cited and len(cited) == 30
    assert stats["counts"]["citations.cite_url"] == 24 and stats["counts"]["citations.ref_link"] == 6
    assert cited <= {p.url for p in demo_pages()}


def test_github_keeps_permissive_code_without_headers(source_run: Callable[[str], SourceRun]) -> None:
    github = source_run("github")
    assert all(d["meta"]["repo"] == "tally" and d["meta"]["license"] == "MIT" for d in github.documents)
    assert github.reasons()["github.license_not_permissive"] == 2  # the GPL archive's two .py files
    rejected = {d["id"]: d["reason"] for d in github.rejects}
    assert rejected["github:tally:web/tally.min.js"] == "code_files.max_line_length"
    cli = github.doc("github:tally:tally/cli.py")["text"]
    assert cli.startswith("#!/usr/bin/env python3\n") and "SPDX" not in cli and "def main(" in cli
    copies = {"github:tally:tally/counting.py", "github:tally:vendor/counting.py"}
    assert len(copies & github.ids()) == 1, "exact dedup keeps one of the two identical files"


def test_gutenberg_drops_a_second_edition_decodes_latin1(source_run: Callable[[str], SourceRun]) -> None:
    books = source_run("gutenberg")
    assert books.ids() == {"gutenberg:10101", "gutenberg:20202-8"}
    rejected = {(d["id"], d["reason"]) for d in books.rejects}
    assert rejected == {("gutenberg:10101-0", "minhash_dedup.near_duplicate")}
    cafe = books.doc("gutenberg:20202-8")
    assert cafe["meta"]["encoding"] == "latin-1" and cafe["meta"]["author"] == "Tomás Oyarzún"
    assert "crème brûlée" in cafe["text"] and "\r" not in cafe["text"]
    for doc in books.documents:
        assert doc["text"].startswith("CHAPTER 1") and "PROJECT GUTENBERG" not in doc["text"].upper()


def test_arxiv_bodies_have_macros_expanded(source_run: Callable[[str], SourceRun]) -> None:
    papers = source_run("arxiv")
    assert papers.ids() == {"arxiv:2405.01234", "arxiv:2405.05678"}
    for doc in papers.documents:
        text = doc["text"]
        assert text.startswith("\\section{Introduction}")
        for gone in ("\\newcommand", "\\def", "thebibliography", "\\bibliography", "\\maketitle",
                     "TODO", "% ZHR", "checked by hand", "sections/appendix"):  # the last four: comments
            assert gone not in text, (doc["id"], gone)
    single = papers.doc("arxiv:2405.01234")["text"]
    assert "\\lambda_{z}(t)" in single and "\\mathbb{R}" in single and "\\rate" not in single
    multi = papers.doc("arxiv:2405.05678")
    assert multi["meta"]["main_file"] == "main.tex"
    assert "\\section{Results}" in multi["text"] and "w_{t}" in multi["text"] and "\\hw" not in multi["text"]


def test_stackexchange_orders_answers_by_score(samples: dict[str, SourceSample],
                                               source_run: Callable[[str], SourceRun]) -> None:
    site = source_run("stackexchange")
    assert len(site.documents) == 5
    assert all("<p>" not in d["text"] and "&lt;" not in d["text"] for d in site.documents)
    rows = [r.attrib for r in parse(samples["stackexchange"].inputs[0]).getroot()]
    answers = sorted((r for r in rows if r.get("ParentId") == "1"), key=lambda r: -int(r["Score"]))
    text = site.doc("stackexchange:homestead.stackexchange.example:1")["text"]
    positions = [text.index(html_to_text(a["Body"]).splitlines()[0]) for a in answers]
    assert positions == sorted(positions), "answers must follow the question highest score first"


def test_c4_rules_fire_once_each(source_run: Callable[[str], SourceRun]) -> None:
    c4 = source_run("c4")
    reasons = c4.reasons()
    for reason in ("langid.wrong_language", "c4.lorem_ipsum", "c4.curly_bracket", "c4.too_few_sentences",
                   "exact_dedup.duplicate", "minhash_dedup.near_duplicate"):
        assert reasons.get(reason) == 1, (reason, reasons)
    assert len(c4.documents) >= 15
    assert not any("javascript" in d["text"].lower() for d in c4.documents), "the notice line must go"
    assert all(d["timestamp"].startswith("2019-04-") for d in c4.documents)
