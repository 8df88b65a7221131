"""Sample inputs for the LLaMA mixture's other sources, each in the format its real dump has.

The demo crawl (demo.py) only feeds the WARC path. The readers in pipeline/sources/ need their
own inputs: a MediaWiki XML export, repositories, Gutenberg books, arXiv LaTeX, a StackExchange
Posts.xml and C4 JSON lines. Writing them in the real formats (bz2 XML, tar.gz archives, Latin-1
with CRLF, HTML inside XML attributes) is what makes the demo show that the readers work on
what the dumps actually contain, not on a simplified stand-in.

Every sample also plants the records its source's recipe must drop (a redirect and a talk page,
a GPL repository and a minified bundle, a near-duplicate book edition, C4's lorem-ipsum and
curly-bracket pages, ...); ``SourceSample.expected_drops`` names the drop reasons they should
produce, so the demo and the tests can check the funnel against the plan.

The prose is the demo grammar's (demo_corpus) or written here for the demo; code, LaTeX and
license stubs are ours too. Output is byte-identical for a seed: archives get fixed mtimes and
owners, and each source draws from its own random stream, so changing one writer does not
reshuffle the others.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.demo_corpus import FOREIGN, TOPICS, Page, article, demo_pages, sentence

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "sources"

# Fixed archive mtime (the demo crawl's date, 2024-05-20T10:00:00Z): real mtimes would make two
# runs with the same seed write different bytes.
_EPOCH = 1_716_199_200


@dataclass(frozen=True)
class SourceSample:
    """What to run for one source: its config in configs/sources/ and the inputs written for it."""

    config: Path
    inputs: list[str]
    # Drop reasons (funnel labels) the sample was built to trigger; each should show in the stats.
    expected_drops: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _edit_words(rng: random.Random, paragraphs: list[str], n: int) -> list[str]:
    """A copy with ``n`` words replaced across all paragraphs: a corrected edition or a light
    syndication, close enough (word 5-gram Jaccard well above 0.9) for MinHash to catch."""
    out = [p.split(" ") for p in paragraphs]
    positions = [(i, j) for i, words in enumerate(out) for j in range(len(words))]
    for i, j in rng.sample(positions, k=min(n, len(positions))):
        out[i][j] = rng.choice(["truly", "also", "still", "indeed", "perhaps"])
    return [" ".join(words) for words in out]


def _gzip(data: bytes) -> bytes:
    """gzip without a file name and with mtime 0, so equal input gives equal bytes."""
    return gzip.compress(data, mtime=0)


def _tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of ``files`` in the given order, with fixed owners and times."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), _EPOCH, 0o644
            info.uname = info.gname = "demo"
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _link_nouns(text: str, topic: str, limit: int = 2) -> str:
    """Wikitext links on the first few topic nouns a paragraph mentions."""
    for noun in TOPICS[topic]["nouns"]:
        if limit == 0:
            break
        pattern = re.compile(rf"\b{re.escape(noun)}\b")
        if pattern.search(text):
            target = noun[0].upper() + noun[1:]
            text = pattern.sub(f"[[{target}|{noun}]]", text, count=1)
            limit -= 1
    return text


# ---------------------------------------------------------------------------------------------
# Wikipedia: a MediaWiki XML export, bz2-compressed as the dumps are


_WIKI_ARTICLES = [  # (title, topic)
    ("Walled garden", "gardening"),
    ("Meteor shower", "astronomy"),
    ("Sourdough loaf", "cooking"),
    ("Narrow-gauge railway", "railways"),
    ("Rooftop apiary", "beekeeping"),
    ("Raised bed", "gardening"),
]
_WIKI_BASE = "https://en.demo-wiki.example/wiki/Main_Page"
_EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"


def wiki_cited_pages() -> list[Page]:
    """The demo crawl's pages that the Wikipedia sample cites: the even-numbered journal articles.

    They are LLaMA's positives in the demo (``wiki-references`` on the sample's dump lists exactly
    these URLs, ``build-quality-set`` finds them in the curated crawl). Half of each journal, not
    whole journals, so both classes hold pages of every topic and site.
    """
    return [p for p in demo_pages() if "-journal.example/" in p.url and int(p.url[-3:]) % 2 == 0]


def _wiki_citations(title: str, topic: str, cited: Sequence[Page]) -> list[str]:
    """The ``<ref>`` tags of one article: its share of the cited pages of its topic's journal.

    Articles on one topic take turns, so each page is cited once. Most are ``{{cite web}}``
    templates; the last is a bare bracketed link in a ``<ref>``, as older articles cite.
    """
    same_topic = [t for t, tp in _WIKI_ARTICLES if tp == topic]
    journal = [p for p in cited if p.url.startswith(f"https://{topic}-journal.example/")]
    mine = journal[same_topic.index(title)::len(same_topic)]
    website = f"{topic.title()} Journal"
    refs = [f"<ref>{{{{cite web |url={p.url} |title={p.title} |website={website} "
            f"|access-date=2024-05-01}}}}</ref>" for p in mine[:-1]]
    refs += [f"<ref>[{p.url} {p.title}], ''{website}''.</ref>" for p in mine[-1:]]
    return refs


def _wiki_article(rng: random.Random, title: str, topic: str, see_also: str,
                  cited: Sequence[Page] = ()) -> str:
    """An article's wikitext with what the cleaner must remove: templates, refs, a table,
    an image, back-matter sections, a category and an interlanguage link. The ``cited`` crawl
    pages of its topic are cited in ``<ref>`` tags spread over its paragraphs."""
    paragraphs = [_link_nouns(p, topic) for p in article(rng, topic, 4)]
    for i, ref in enumerate(_wiki_citations(title, topic, cited)):
        paragraphs[i % len(paragraphs)] += ref
    rows = "\n".join(f"|-\n| {year} || {rng.randint(3, 90)}"
                     for year in sorted(rng.sample(range(1950, 2020), 3)))
    return "\n".join([
        f"{{{{Short description|Notes on a {topic} subject}}}}",
        f"{{{{Infobox {topic}\n| name = {title}\n| image = {title.replace(' ', '_')}.jpg\n}}}}",
        f"'''{title}''' is a subject of {topic}. {paragraphs[0]}"
        f"<ref>{{{{cite book |title=Field notes on {topic} |year={rng.randint(1950, 2020)}}}}}</ref>",
        "",
        "== History ==",
        f"[[File:{title.replace(' ', '_')}_1900.jpg|thumb|An early photograph]]",
        paragraphs[1] + "<ref name=\"survey\">Demo survey of the grounds.</ref>",
        "",
        "=== Later years ===",
        paragraphs[2] + f" More is kept at [https://{topic}-journal.example/archive the journal].",
        "",
        '{| class="wikitable"\n|+ Recorded visits\n! Year !! Visits\n' + rows + "\n|}",
        "",
        "== Practice ==",
        paragraphs[3] + " <!-- editors: expand this section -->",
        "",
        "== See also ==",
        f"* [[{see_also}]]",
        "",
        "== References ==",
        "{{Reflist}}",
        "",
        f"[[Category:{topic.title()}]]",
        f"[[de:{title}]]",
    ])


def _sha1_base36(text: str) -> str:
    """The dumps' <sha1>: the revision text's SHA-1 in base 36."""
    value, digits = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16), ""
    while value:
        value, rest = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return digits.rjust(31, "0")


def _wiki_page(page_id: int, title: str, ns: int, text: str, redirect: str | None = None) -> str:
    redirect_tag = f'    <redirect title="{escape(redirect)}" />\n' if redirect else ""
    return (
        f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n"
        f"{redirect_tag}    <revision>\n      <id>{page_id * 1000 + 7}</id>\n"
        f"      <timestamp>2024-05-01T12:00:00Z</timestamp>\n"
        "      <contributor>\n        <username>DemoEditor</username>\n        <id>42</id>\n"
        "      </contributor>\n"
        f"      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{escape(text)}</text>\n'
        f"      <sha1>{_sha1_base36(text)}</sha1>\n    </revision>\n  </page>\n"
    )


def write_wikipedia(directory: Path, rng: random.Random) -> SourceSample:
    """Six articles citing the crawl's :func:`wiki_cited_pages`, a stub that cleans to nothing,
    a redirect and a talk page."""
    cited = wiki_cited_pages()
    namespaces = {-2: "Media", 0: "", 1: "Talk", 6: "File", 14: "Category"}
    ns_xml = "\n".join(f'      <namespace key="{k}" case="first-letter">{v}</namespace>' if v else
                       f'      <namespace key="{k}" case="first-letter" />' for k, v in namespaces.items())
    pages = []
    for i, (title, topic) in enumerate(_WIKI_ARTICLES):
        see_also = _WIKI_ARTICLES[(i + 1) % len(_WIKI_ARTICLES)][0]
        pages.append(_wiki_page(100 + i, title, 0, _wiki_article(rng, title, topic, see_also, cited)))
    first = _WIKI_ARTICLES[0][0]
    pages.append(_wiki_page(200, "Walled gardens", 0, f"#REDIRECT [[{first}]]\n\n{{{{R from plural}}}}",
                            redirect=first))
    pages.append(_wiki_page(201, f"Talk:{first}", 1,
                            f"== Sources ==\nCould someone add a source for the history section? "
                            f"{sentence(rng, 'gardening')} ~~~~"))
    pages.append(_wiki_page(202, "Hive (disambiguation)", 0,
                            "{{Disambiguation}}\n[[Category:Disambiguation pages]]"))
    xml = (
        f'<mediawiki xmlns="{_EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'version="0.11" xml:lang="en">\n  <siteinfo>\n    <sitename>Demo Wiki</sitename>\n'
        f"    <dbname>enwiki</dbname>\n    <base>{_WIKI_BASE}</base>\n"
        f"    <generator>MediaWiki 1.42.0</generator>\n    <case>first-letter</case>\n"
        f"    <namespaces>\n{ns_xml}\n    </namespaces>\n  </siteinfo>\n" + "".join(pages) + "</mediawiki>\n"
    )
    dump = _write(directory / "enwiki-demo-pages-articles.xml.bz2", bz2.compress(xml.encode("utf-8")))
    return SourceSample(CONFIG_DIR / "wikipedia.yaml", [str(dump)],
                        ("wikipedia.redirect", "wikipedia.not_article", "wikipedia.too_short"))


# ---------------------------------------------------------------------------------------------
# GitHub: a checked-out MIT repository and a GPL one as a GitHub archive tarball

_MIT_LICENSE = """MIT License

Copyright (c) 2024 The Tally Authors

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
under the terms of the MIT License; this demo file names the license, the full text applies.
"""

_TALLY_INIT = '''"""tally: count lines, words and characters of text files."""

__version__ = "0.1.0"
'''

_TALLY_COUNTING = '''"""Counting, kept apart from the CLI so that it can be tested on strings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    """Line, word and character counts of one text."""

    lines: int = 0
    words: int = 0
    chars: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.lines + other.lines, self.words + other.words, self.chars + other.chars)

    def format(self, label: str) -> str:
        return f"{self.lines:>8} {self.words:>8} {self.chars:>8} {label}"


def count_text(text: str) -> Counts:
    """Counts like wc: a line is a newline, a word a run of non-space characters."""
    return Counts(text.count("\\n"), len(text.split()), len(text))
'''

_TALLY_CLI = '''#!/usr/bin/env python3
# Copyright (c) 2024 The Tally Authors
# SPDX-License-Identifier: MIT
# Licensed under the MIT License; see LICENSE in the project root.
"""The tally command: counts for each file named, then a total when there are several."""

from __future__ import annotations

import argparse
import sys

from tally.counting import Counts, count_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally", description="Count lines, words and characters.")
    parser.add_argument("files", nargs="*", help="files to count; none reads standard input")
    parser.add_argument("--words", action="store_true", help="print the word count only")
    args = parser.parse_args(argv)
    total = Counts()
    for name in args.files or ["-"]:
        if name == "-":
            text = sys.stdin.read()
        else:
            with open(name, encoding="utf-8") as handle:
                text = handle.read()
        counts = count_text(text)
        total = total + counts
        print(counts.words if args.words else counts.format(name))
    if len(args.files) > 1:
        print(total.words if args.words else total.format("total"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

_TALLY_TEST = '''from tally.counting import Counts, count_text


def test_counts_lines_words_and_chars():
    assert count_text("two words\\nthree more words\\n") == Counts(2, 5, 26)


def test_counts_add_up():
    assert Counts(1, 2, 3) + Counts(4, 5, 6) == Counts(5, 7, 9)
'''

_LEDGER = '''"""A household ledger: income and spending per month, summed from a CSV file."""

import csv
from collections import defaultdict


def monthly_totals(path):
    totals = defaultdict(float)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            totals[row["date"][:7]] += float(row["amount"])
    return dict(sorted(totals.items()))
'''


def _minified_bundle() -> str:
    """One line of generated JavaScript far past the 1,000-character line rule, as bundlers emit."""
    functions = ";".join(f"function c{i}(t){{return t.split(/\\s+/).length*{i}+{i % 7}}}" for i in range(40))
    return f"!function(w){{{functions};w.tally=c1}}(window);\n"


def write_github(directory: Path, rng: random.Random) -> SourceSample:
    """``tally`` (MIT, a folder) and ``demo-ledger-main.tar.gz`` (GPL, GitHub's archive layout)."""
    del rng  # the code is fixed text; the signature matches the other writers
    tally = directory / "tally"
    _write(tally / "LICENSE", _MIT_LICENSE)
    _write(tally / "README.md", "# tally\n\nCount lines, words and characters: `tally notes.txt`.\n")
    _write(tally / "docs" / "usage.md", "Run `tally --words *.txt` for word counts only.\n")
    _write(tally / "tally" / "__init__.py", _TALLY_INIT)
    _write(tally / "tally" / "counting.py", _TALLY_COUNTING)
    _write(tally / "tally" / "cli.py", _TALLY_CLI)
    _write(tally / "tests" / "test_counting.py", _TALLY_TEST)
    _write(tally / "vendor" / "counting.py", _TALLY_COUNTING)  # a vendored copy: exact dedup drops it
    _write(tally / "web" / "tally.min.js", _minified_bundle())
    copyleft = {
        "COPYING": b"GNU GENERAL PUBLIC LICENSE\nVersion 3\n\nThis demo project stands for a copyleft one.\n",
        "README.md": b"# demo-ledger\n\nSums a household ledger per month.\n",
        "ledger/__init__.py": b"",
        "ledger/totals.py": _LEDGER.encode(),
    }
    archive = _write(directory / "demo-ledger-main.tar.gz",
                     _gzip(_tar({f"demo-ledger-main/{k}": v for k, v in copyleft.items()})))
    return SourceSample(CONFIG_DIR / "github.yaml", [str(tally), str(archive)],
                        ("github.license_not_permissive", "github.not_code", "code_files.max_line_length",
                         "exact_dedup.duplicate"))


# ---------------------------------------------------------------------------------------------
# Gutenberg: plain-text books with START/END markers; two editions of one work


_END_NOTE = ("This closing note was written for the refinery demo. It stands where a real file carries "
             "the Project Gutenberg license, which the reader strips from both ends of a book.")


def _book_file(title: str, author: str, number: int, release: str, encoding: str, credit: str,
               body: list[str]) -> str:
    marker = title.upper()
    return "\n".join([
        f"The Project Gutenberg eBook of {title}, by {author}",
        "",
        "A sample book generated for the refinery demo.",
        "",
        f"Title: {title}",
        "",
        f"Author: {author}",
        "",
        f"Release Date: {release} [eBook #{number}]",
        "",
        "Language: English",
        "",
        f"Character set encoding: {encoding}",
        "",
        f"*** START OF THE PROJECT GUTENBERG EBOOK {marker} ***",
        "",
        credit,
        "",
        "\n\n".join(body),
        "",
        f"End of the Project Gutenberg EBook of {title}, by {author}",
        "",
        f"*** END OF THE PROJECT GUTENBERG EBOOK {marker} ***",
        "",
        _END_NOTE,
        "",
    ])


def _chapters(rng: random.Random, topic: str, n: int, extra: list[str] | None = None) -> list[str]:
    body: list[str] = []
    for i in range(1, n + 1):
        body.append(f"CHAPTER {i}")
        body.extend(article(rng, topic, 4))
        if extra and i == 1:
            body.extend(extra)
    return body


def write_gutenberg(directory: Path, rng: random.Random) -> SourceSample:
    """Book 10101 in a 2004 ASCII file and a 2021 UTF-8 re-release (near-duplicates), and an
    unrelated book 20202 in Latin-1 with CRLF line ends, as the old "-8.txt" files are."""
    title, author = "A Year in the Walled Garden", "Hester Marlowe"
    body = _chapters(rng, "gardening", 6)
    credit = "Produced by the Demo Volunteers."
    first = _book_file(title, author, 10101, "March 3, 2004", "ASCII", credit, body)
    # The re-release fixes a few words and changes the credits and header: LLaMA's ">90% overlap".
    second = _book_file(title, author, 10101, "June 12, 2021", "UTF-8",
                        "E-text prepared by a second team of demo volunteers.", _edit_words(rng, body, 4))
    cafe_title = "Letters from the Harbour Café"
    cafe_body = _chapters(rng, "cooking", 5, extra=[
        "At the café on the quay, Señora Ibáñez served crème brûlée to the fishermen, and the "
        "naïve new waiter learned to say déjà vu when the same order came twice."])
    cafe = _book_file(cafe_title, "Tomás Oyarzún", 20202, "July 9, 2003", "ISO-8859-1",
                      credit, cafe_body)
    paths = [
        _write(directory / "10101.txt", first.encode("ascii")),
        _write(directory / "10101-0.txt", second.encode("utf-8")),
        _write(directory / "20202-8.txt", cafe.replace("\n", "\r\n").encode("latin-1")),
    ]
    return SourceSample(CONFIG_DIR / "gutenberg.yaml", [str(p) for p in paths],
                        ("minhash_dedup.near_duplicate",))


# ---------------------------------------------------------------------------------------------
# arXiv: one paper as a bare .tex, one as the gzipped tarball arXiv serves for multi-file sources


def _tex_paragraphs(rng: random.Random, topic: str, n: int) -> str:
    return "\n\n".join(article(rng, topic, n))


def _single_file_paper(rng: random.Random) -> str:
    return rf"""\documentclass[11pt]{{article}}
\usepackage{{amsmath,amssymb}}
% Demo paper for refinery: the prose comes from the demo grammar.
\newcommand{{\R}}{{\mathbb{{R}}}}
\newcommand{{\norm}}[1]{{\left\lVert #1 \right\rVert}}
\newcommand{{\rate}}[2][h]{{\lambda_{{#1}}(#2)}}
\def\eps{{\varepsilon}}
\title{{Counting Faint Meteors from a Backyard Pier}}
\author{{A. Demo \and B. Sample}}
\begin{{document}}
\maketitle
\begin{{abstract}}
We count meteors with a small lens and estimate an hourly rate.
\end{{abstract}}

\section{{Introduction}}
{_tex_paragraphs(rng, "astronomy", 2)} Earlier counts exist~\cite{{demo2019}}.
% TODO: shorten the introduction before submission

\section{{Method}}
Let $\rate{{t}} \in \R$ be the hourly rate at time $t$ and $\rate[z]{{t}}$ the zenithal rate. % ZHR
We accept a fit when $\norm{{\rate{{t}} - \hat\lambda}} < \eps$.
\begin{{equation}}
  \rate[z]{{t}} = \frac{{N}}{{T}} \cdot r^{{6.5 - m}}
\end{{equation}}
{_tex_paragraphs(rng, "astronomy", 1)}

\section{{Results}}
{_tex_paragraphs(rng, "astronomy", 2)} The rate reached 40\% above the mean.

\bibliographystyle{{plain}}
\begin{{thebibliography}}{{9}}
\bibitem{{demo2019}} C. Example. Notes on meteor counts. Demo Journal, 2019.
\end{{thebibliography}}
\end{{document}}
"""


def _multi_file_paper(rng: random.Random) -> dict[str, bytes]:
    main = r"""\documentclass{article}
\usepackage{graphicx}
\usepackage{hivemacros}
% Main file of a two-section demo paper; sections live in their own files.
\newcommand{\colony}{\mathcal{C}}
\title{Hive Weight as a Signal of the Nectar Flow}
\author{C. Demo}
\begin{document}
\maketitle
\input{sections/intro}
\input{sections/results}
% \input{sections/appendix}
\bibliography{refs}
\end{document}
"""
    sty = "\\newcommand{\\hw}[1]{w_{#1}}\n\\newcommand{\\flow}{\\Phi}\n"
    intro = (f"\\section{{Introduction}}\n{_tex_paragraphs(rng, 'beekeeping', 2)}\n"
             "We write $\\hw{t}$ for the weight of colony $\\colony$ on day $t$~\\cite{apiary}.\n")
    results = (f"\\section{{Results}}\n{_tex_paragraphs(rng, 'beekeeping', 2)}\n"
               "The flow $\\flow$ peaks when $\\hw{t} - \\hw{t-1}$ is largest. % checked by hand\n")
    bib = "@book{apiary, title={Demo Apiary Records}, author={Example, D.}, year={2020}}\n"
    return {"main.tex": main.encode(), "hivemacros.sty": sty.encode(), "sections/intro.tex": intro.encode(),
            "sections/results.tex": results.encode(), "refs.bib": bib.encode()}


def write_arxiv(directory: Path, rng: random.Random) -> SourceSample:
    """``2405.01234.tex`` (one file) and ``2405.05678.tar.gz`` (main, sections, .sty, .bib)."""
    single = _write(directory / "2405.01234.tex", _single_file_paper(rng))
    multi = _write(directory / "2405.05678.tar.gz", _gzip(_tar(_multi_file_paper(rng))))
    return SourceSample(CONFIG_DIR / "arxiv.yaml", [str(single), str(multi)])


# ---------------------------------------------------------------------------------------------
# StackExchange: one site's Posts.xml, HTML bodies in attributes as the dumps have them

_SE_SITE = "homestead.stackexchange.example"
_SE_QUESTIONS = [  # (title, topic, answer scores)
    ("How warm does a compost heap need to get in winter?", "gardening", (7, 2, 12)),
    ("Why do my seedlings lean towards the kitchen window?", "gardening", (3, 5)),
    ("Is it safe to open a hive on a cold morning?", "beekeeping", (9, 1)),
    ("What does a smoker actually do to the bees?", "beekeeping", (4,)),
    ("How should I keep a herb bed going over a long holiday?", "gardening", ()),
]


def _se_attr(value: str) -> str:
    """An attribute value as the dumps write it: entities for markup, &#xA; for newlines."""
    return escape(value, {'"': "&quot;", "\n": "&#xA;"})


def _se_row(**attrs: str | int) -> str:
    return "  <row " + " ".join(f'{k}="{_se_attr(str(v))}"' for k, v in attrs.items()) + " />"


def _answer_html(rng: random.Random, topic: str, index: int) -> str:
    first, second = sentence(rng, topic), sentence(rng, topic)
    if index % 3 == 0:
        return f"<p>{first}</p>\n<ul><li>{second}</li><li>{sentence(rng, topic)}</li></ul>\n"
    if index % 3 == 1:
        return f"<p>{first} See <a href=\"https://{topic}-journal.example/faq\">the FAQ</a>.</p>\n" \
               f"<pre><code>check_every(days=3)\n</code></pre>\n<p>{second}</p>\n"
    return f"<p><strong>Short answer:</strong> {first}</p>\n<blockquote><p>{second}</p></blockquote>\n"


def write_stackexchange(directory: Path, rng: random.Random) -> SourceSample:
    """Five questions (one unanswered), answers with different scores, a tag wiki, an orphan."""
    rows: list[str] = []
    post_id = 1
    for q, (title, topic, scores) in enumerate(_SE_QUESTIONS):
        question_id = post_id
        body = f"<p>{sentence(rng, topic)}</p>\n<p>{sentence(rng, topic)} What am I missing?</p>\n"
        rows.append(_se_row(Id=question_id, PostTypeId=1, CreationDate=f"2021-0{q + 1}-14T09:30:12.417",
                            Score=sum(scores), ViewCount=100 + 37 * q, Body=body, Title=title,
                            Tags=f"|{topic}|", AnswerCount=len(scores)))
        post_id += 1
        for a, score in enumerate(scores):
            rows.append(_se_row(Id=post_id, PostTypeId=2, ParentId=question_id,
                                CreationDate=f"2021-0{q + 1}-15T1{a}:05:00.000", Score=score,
                                Body=_answer_html(rng, topic, post_id)))
            post_id += 1
    rows.append(_se_row(Id=post_id, PostTypeId=4, CreationDate="2021-07-01T00:00:00.000", Score=0,
                        Body="<p>Questions about composting garden waste.</p>"))
    rows.append(_se_row(Id=post_id + 1, PostTypeId=2, ParentId=9999, CreationDate="2021-07-02T00:00:00.000",
                        Score=1, Body="<p>An answer whose question was deleted.</p>"))
    xml = '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>\n"
    posts = _write(directory / _SE_SITE / "Posts.xml", xml)
    return SourceSample(CONFIG_DIR / "stackexchange.yaml", [str(posts)],
                        ("stackexchange.not_question", "stackexchange.orphan_answers"))


# ---------------------------------------------------------------------------------------------
# C4: JSON lines (text, url, timestamp), gzipped like the release files


def write_c4(directory: Path, rng: random.Random) -> SourceSample:
    """Twenty pages from the grammar plus the pages C4's rules, language ID and dedup remove."""
    topics = sorted(TOPICS)
    rows: list[dict[str, str]] = []

    def add(text: str, url: str) -> None:
        hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        stamp = f"2019-04-{rng.randint(10, 28)}T{hour:02d}:{minute:02d}:{second:02d}Z"
        rows.append({"text": text, "url": url, "timestamp": stamp})

    pages = [article(rng, topics[i % len(topics)], rng.randint(3, 5)) for i in range(20)]
    for i, paragraphs in enumerate(pages):
        lines = list(paragraphs)
        if i == 3:  # kept, minus the notice line
            lines.insert(1, "Please enable JavaScript in your browser to see the comments on this page.")
        add("\n".join(lines), f"https://{topics[i % len(topics)]}-journal.example/c4/{i:03d}")
    add("\n".join(pages[0]), "https://mirror.example/copied/000")  # exact copy
    add("\n".join(_edit_words(rng, pages[1], 2)), "https://aggregator.example/c4/001")  # near copy
    add("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
        + "\n".join(pages[2][:2]), "https://template.example/")
    config_line = 'Save the planner settings as { "shade": true, "water": "daily" } in the file.'
    add("\n".join([*pages[4][:2], config_line]), "https://planner.example/help")
    add("Please enable JavaScript to continue using this site.\nLoading the comments now.\nSign in.",
        "https://comments.example/thread/7")
    add("\n".join(FOREIGN["de"]), "https://news-de.example/c4/0")
    gz = _write(directory / "c4-demo.json.gz",
                _gzip("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")))
    return SourceSample(CONFIG_DIR / "c4.yaml", [str(gz)],
                        ("langid.wrong_language", "c4.lorem_ipsum", "c4.curly_bracket",
                         "c4.too_few_sentences", "exact_dedup.duplicate", "minhash_dedup.near_duplicate"))


# ---------------------------------------------------------------------------------------------

SOURCE_WRITERS: dict[str, Callable[[Path, random.Random], SourceSample]] = {
    "wikipedia": write_wikipedia,
    "github": write_github,
    "gutenberg": write_gutenberg,
    "arxiv": write_arxiv,
    "stackexchange": write_stackexchange,
    "c4": write_c4,
}


def write_source_samples(root: Path, seed: int = 1234) -> dict[str, SourceSample]:
    """Write every source's sample under ``root/<source>/``; deterministic for ``seed``."""
    root = Path(root)
    return {name: writer(root / name, random.Random(f"{seed}:{name}"))
            for name, writer in SOURCE_WRITERS.items()}
