"""The ablation's held-out reference, and the checks that it is independent of what the arms saw.

Why it is required. A reference cut from the same texts a classifier arm learns as "good" measures
how well that arm copies its own positives, not whether its data makes a better model. So
``refinery ablate`` ships no default reference: ``--heldout`` names it, and the tool checks it.

The check is word n-gram overlap (13-grams, the contamination unit of GPT-3, Brown et al. 2020,
App. C): the share of the reference's distinct 13-grams that also occur in another text set. It is
measured against every classifier's positives and every arm's kept documents; above
``max_overlap`` the study stops with an error naming the set, because a reference an arm trained
on rewards that arm for memorising it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filters.text_sources import SUPPORTED_SUFFIXES, chunk_plain_text, read_texts

log = logging.getLogger(__name__)

RAW_TEXT_SUFFIXES = (".raw",)  # WikiText's plain-text dumps (wiki.test.raw): paragraphs, blank lines
NGRAM = 13
DEFAULT_MAX_OVERLAP = 0.01
_WORD = re.compile(r"\w+")


class ReferenceLeakError(ValueError):
    """The reference shares too much text with a set an arm learned from; the message names it."""


def iter_chunks(path: Path) -> Iterator[tuple[str, str]]:
    """(chunk id, text) for every text under ``path``: what read_texts reads, plus WikiText ``.raw``.

    Chunk ids are ``<path relative to the given root>#<index>`` and do not depend on where the data
    is mounted. Parquet parts of a run's ``documents/`` are read like any other file.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        rel = file.relative_to(path).as_posix() if path.is_dir() else file.name
        name = file.name.lower()
        if name.endswith(RAW_TEXT_SUFFIXES):
            texts: Iterator[str] = chunk_plain_text(file.read_text(encoding="utf-8", errors="replace"))
        elif name.endswith(SUPPORTED_SUFFIXES):
            texts = read_texts(file)
        else:
            log.info("ablate: skipping %s (not one of %s)", file, ", ".join(SUPPORTED_SUFFIXES + RAW_TEXT_SUFFIXES))
            continue
        for index, text in enumerate(texts):
            yield f"{rel}#{index}", text


def text_digest(text: str) -> str:
    return hashlib.sha1(text.strip().encode("utf-8")).hexdigest()


@dataclass
class Reference:
    """The held-out reference texts, their content key, and an account of where they came from."""

    texts: list[str]
    digests: set[str]
    description: dict[str, Any]

    @property
    def key(self) -> str:
        """sha256 over the texts in order: two studies with the same key scored the same text."""
        digest = hashlib.sha256()
        for text in self.texts:
            digest.update(text_digest(text).encode())
        return digest.hexdigest()


def build_reference(heldout: Sequence[str | Path], *, max_chunks: int | None = None) -> Reference:
    """Every chunk of the ``heldout`` paths, in path order; ``max_chunks`` keeps the first N."""
    if not heldout:
        raise ValueError("--heldout is required: name reference texts that no arm and no classifier learns from")
    texts: list[str] = []
    files: dict[str, int] = {}
    for root in map(Path, heldout):
        if not root.exists():
            raise FileNotFoundError(f"--heldout: {root} not found")
        for chunk_id, text in iter_chunks(root):
            if text.strip():
                texts.append(text)
                name = f"{root.name}/{chunk_id.split('#')[0]}"
                files[name] = files.get(name, 0) + 1
    texts = texts[:max_chunks] if max_chunks else texts
    if not texts:
        raise ValueError(f"--heldout: no text found in {', '.join(map(str, heldout))}")
    description = {"roots": [str(p) for p in heldout], "files": files, "max_chunks": max_chunks,
                   "documents": len(texts), "bytes": sum(len(t.encode("utf-8")) for t in texts)}
    return Reference(texts, {text_digest(t) for t in texts}, description)


def write_jsonl(path: Path, texts: Sequence[str], source: str) -> Path:
    """Texts as our documents JSONL (id, source, text), which ``input.format: documents`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"id": f"{source}-{i:06d}", "source": source, "text": text}) + "\n")
    return path


def classifier_texts(paths: Sequence[Path], exclude: set[str], limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` texts from ``paths``, none of them a reference text, in a seeded random sample."""
    texts = [t for p in paths for _, t in iter_chunks(p) if text_digest(t) not in exclude]
    rng = random.Random(seed)
    return rng.sample(texts, limit) if len(texts) > limit else texts


# -- n-gram overlap ----------------------------------------------------------------------------------


def ngrams(text: str, n: int = NGRAM) -> set[int]:
    """Hashes of the lower-cased word n-grams of ``text`` (Python's hash: stable within one process)."""
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1)}


class OverlapIndex:
    """The reference's n-grams, to measure how much of it another text set contains."""

    def __init__(self, texts: Sequence[str], n: int = NGRAM) -> None:
        self.n = n
        self.per_doc = [ngrams(t, n) for t in texts]
        self.all: set[int] = set().union(*self.per_doc) if self.per_doc else set()

    def measure(self, others: Iterable[str]) -> dict[str, Any]:
        """Share of the reference's distinct n-grams found in ``others``, and the reference documents
        of which at least half the n-grams are there (near-copies)."""
        found: set[int] = set()
        for text in others:
            found |= ngrams(text, self.n) & self.all
        copies = sum(1 for grams in self.per_doc if grams and len(grams & found) * 2 >= len(grams))
        return {"ngram": self.n, "reference_ngrams": len(self.all), "shared": len(found),
                "fraction": len(found) / len(self.all) if self.all else 0.0, "near_copies": copies}


def check_overlap(what: str, overlap: dict[str, Any], max_overlap: float) -> None:
    """Raise :class:`ReferenceLeakError` when ``overlap`` is above ``max_overlap``."""
    if overlap["fraction"] > max_overlap:
        raise ReferenceLeakError(
            f"reference leak: {overlap['fraction']:.1%} of the reference's {overlap['ngram']}-grams occur in "
            f"{what} ({overlap['near_copies']} reference document(s) nearly copied; --max-overlap "
            f"{max_overlap:g}): pass a --heldout that this set does not contain")
