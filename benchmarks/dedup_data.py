"""Near-duplicate benchmark corpus: real texts, mutated into families with a known ground truth.

No public web-scale near-dup set with texts is on disk (see ../shared/data/dedup/SOURCES.md), so,
as that file recommends, real human-written texts are mutated the ways web copies differ: word
edits, boilerplate swaps, truncation and paragraph shuffles. Each source text starts a family:
its original plus 0-5 mutants. Exact Jaccard over word 5-grams, computed for every pair inside
a family, is the ground truth; different families share no source text.

Sources: the gold article bodies of the ScrapingHub benchmark pages, WikiText-2 test articles,
Mona Lisa, and six English Project Gutenberg books (license header and footer cut off, since they
would make every book's first chunk a near-duplicate of every other's), cut into ~180-word
chunks. Past those ~3,000 real chunks, sources are drawn as random runs of real sentences from the
same pool, so the 40k and 160k scale sets are still real prose.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
_AEB = DATA / "html_extraction" / "scrapinghub_article_extraction_benchmark" / "ground-truth.json"
_WIKI = DATA / "quality" / "positive" / "wikipedia"
_BOOKS = DATA / "quality" / "positive" / "gutenberg"
_CHUNK_WORDS = 180
_PG_BODY = re.compile(r"\*\*\* ?START OF[^\n]*\n(.*?)\n[^\n]*\*\*\* ?END OF", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")

# Site chrome written for this benchmark: swapping it is the "same article, other template" copy.
BOILERPLATE = [
    "Skip to main content. Home | News | Sport | Weather | Contact us",
    "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
    "Subscribe to our newsletter and get the best stories in your inbox every morning.",
    "Share this article on Facebook, Twitter, LinkedIn or by email.",
    "All rights reserved. Reproduction without written permission is prohibited.",
    "Advertisement. Continue reading the main story below.",
    "Related articles: more from this section, most read, editor's picks.",
    "Posted in Uncategorized. Leave a comment. Permalink.",
    "Sign in or create an account to save articles and follow topics.",
    "Terms of use | Privacy notice | Accessibility | Sitemap | Careers",
]


@dataclass(frozen=True)
class BenchDoc:
    id: str
    family: int
    text: str
    mutation: str  # "original" or the mutations applied, joined by "+"
    timestamp: str


def _chunks(text: str, words: int = _CHUNK_WORDS) -> list[str]:
    """Paragraph-aligned chunks of about ``words`` words (paragraphs kept for the shuffle mutation)."""
    out, current, size = [], [], 0
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        current.append(" ".join(para.split()))
        size += len(para.split())
        if size >= words:
            out.append("\n\n".join(current))
            current, size = [], 0
    if size >= words // 2:
        out.append("\n\n".join(current))
    return out


def _wikitext_articles(raw: str) -> list[str]:
    """WikiText-2 marks article titles as ' = Title = ' lines; section headings have more '='."""
    parts = re.split(r"\n \= [^=\n]+ \= \n", raw)
    return [p.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".") for p in parts]


@lru_cache(maxsize=1)
def real_chunks() -> tuple[str, ...]:
    """Every real source chunk, in a fixed order."""
    texts = [v["articleBody"] for v in json.loads(_AEB.read_text(encoding="utf-8")).values()]
    texts += _wikitext_articles((_WIKI / "wikitext-2-raw-v1_wiki.test.raw").read_text(encoding="utf-8"))
    texts.append((_WIKI / "Mona_Lisa.txt").read_text(encoding="utf-8"))
    for book in sorted(_BOOKS.glob("*.txt")):
        if book.name.endswith("_ja.txt"):
            continue  # word n-grams need space-separated words
        raw = book.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        match = _PG_BODY.search(raw)
        texts.append(match.group(1) if match else raw)
    return tuple(chunk for text in texts for chunk in _chunks(text))


@lru_cache(maxsize=1)
def sentence_pool() -> tuple[str, ...]:
    return tuple(
        s for chunk in real_chunks() for s in _SENTENCE_END.split(chunk.replace("\n\n", " ")) if len(s.split()) >= 6
    )


def source_text(family: int, seed: int = 0) -> str:
    """Family ``family``'s original: a real chunk, or past them a run of random real sentences."""
    chunks = real_chunks()
    if family < len(chunks):
        return chunks[family]
    rng = random.Random(f"source-{seed}-{family}")
    pool = sentence_pool()
    sentences = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(10, 18))]
    return "\n\n".join(" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3))


def _edit_words(text: str, rate: float, rng: random.Random, vocab: tuple[str, ...]) -> str:
    words = text.split(" ")
    out = []
    for word in words:
        if rng.random() >= rate:
            out.append(word)
            continue
        op = rng.randrange(3)
        if op == 0:
            out.append(vocab[rng.randrange(len(vocab))])  # substitute
        elif op == 1:
            out += [word, vocab[rng.randrange(len(vocab))]]  # insert
        # op == 2: delete
    return " ".join(out)


def _with_boilerplate(body: str, chrome: tuple[str, str]) -> str:
    return f"{chrome[0]}\n\n{body}\n\n{chrome[1]}"


def mutate(body: str, chrome: tuple[str, str], rng: random.Random) -> tuple[str, str]:
    """One or two mutations of a page (body + site chrome); returns (text, mutation label)."""
    vocab = tuple(body.split()) or ("x",)
    labels = []
    for kind in rng.sample(["light_edit", "heavy_edit", "boilerplate", "truncate", "shuffle"], rng.choice((1, 1, 2))):
        if kind == "light_edit":
            body = _edit_words(body, rng.uniform(0.002, 0.03), rng, vocab)
        elif kind == "heavy_edit":
            body = _edit_words(body, rng.uniform(0.05, 0.30), rng, vocab)
        elif kind == "truncate":
            words = body.split(" ")
            body = " ".join(words[: max(1, int(len(words) * rng.uniform(0.7, 0.98)))])
        elif kind == "shuffle":
            paras = body.split("\n\n")
            rng.shuffle(paras)
            body = "\n\n".join(paras)
        elif kind == "boilerplate":  # same article in another site template
            chrome = tuple(rng.sample(BOILERPLATE, 2))
        labels.append(kind)
    return _with_boilerplate(body, chrome), "+".join(labels)


def family_docs(family: int, seed: int = 0) -> list[BenchDoc]:
    """The original of ``family`` and its 0-5 mutants, deterministic in (family, seed)."""
    rng = random.Random(f"family-{seed}-{family}")
    body = source_text(family, seed)
    chrome = tuple(rng.sample(BOILERPLATE, 2))
    docs = [BenchDoc(f"f{family:06d}-0", family, _with_boilerplate(body, chrome), "original", "2019-01-01T00:00:00Z")]
    for k in range(1, 1 + rng.choice((0, 1, 2, 2, 3, 3, 4, 5))):
        text, label = mutate(body, chrome, rng)
        docs.append(BenchDoc(f"f{family:06d}-{k}", family, text, label, f"2020-{k:02d}-01T00:00:00Z"))
    return docs


def corpus(n_docs: int, seed: int = 0) -> list[BenchDoc]:
    """Whole families, in order, until at least ``n_docs`` documents."""
    docs: list[BenchDoc] = []
    family = 0
    while len(docs) < n_docs:
        docs += family_docs(family, seed)
        family += 1
    return docs


def families_for(n_docs: int, seed: int = 0) -> int:
    """How many families ``corpus(n_docs)`` uses (for sharding generation inside a pipeline)."""
    count = total = 0
    while total < n_docs:
        total += len(family_docs(count, seed))
        count += 1
    return count
