"""ReadGutenberg: Project Gutenberg text files -> one Document per book, license stripped.

A book is one document (LLaMA deduplicates and trains on whole books), so each file is read
whole, up to ``max_book_bytes``: the largest Gutenberg books are a few MB. Decoding and
boilerplate removal are :mod:`filters.gutenberg`. Near-duplicate editions (the same book in
ASCII and Latin-1, a 1997 and a 2015 release) are removed later by the ``minhash_dedup`` stage at
threshold 0.9, LLaMA's "more than 90% content overlap" (Touvron et al. 2023, section 2.1).

Ids are ``gutenberg:<file name without extension>``, not the ebook number: editions of one
ebook share the number, and each must stay a document of its own until dedup picks one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from filters.document import Document
from filters.gutenberg import decode_book, strip_gutenberg
from pipeline.sources.source_reader import Reject, Skip, SourceReader, open_decompressed

STAGE = "ReadGutenberg"
EMPTY = "gutenberg.empty"
NO_MARKERS = "gutenberg.no_markers"
TOO_LARGE = "gutenberg.too_large"

_SUFFIXES = re.compile(r"(\.txt)?(\.gz|\.bz2|\.xz)?$", re.I)
_LANGUAGE = re.compile(r"^Language:[ \t]*([A-Za-z]+)", re.M)
# The languages with most Gutenberg books, by the name the header uses -> ISO 639-1.
_LANGUAGE_CODES = {
    "english": "en", "french": "fr", "german": "de", "finnish": "fi", "dutch": "nl", "italian": "it",
    "spanish": "es", "portuguese": "pt", "chinese": "zh", "swedish": "sv", "latin": "la",
    "danish": "da", "hungarian": "hu", "esperanto": "eo", "greek": "el", "japanese": "ja",
    "russian": "ru", "polish": "pl", "norwegian": "no", "czech": "cs", "catalan": "ca", "welsh": "cy",
}


@dataclass(frozen=True, kw_only=True)
class GutenbergOptions:
    """``input.options`` of ``format: gutenberg``."""

    # ISO code for the lang column; None reads the header's "Language:" line (else leaves it empty).
    language: str | None = None
    # Reject files in which no Gutenberg marker was found (they may carry the license whole).
    require_markers: bool = False
    max_book_bytes: int = 50_000_000

    def __post_init__(self) -> None:
        if self.max_book_bytes <= 0:
            raise ValueError("max_book_bytes must be positive")


def book_id(path: str) -> str:
    """The file name without directories and without .txt/.gz: stable across re-runs."""
    return _SUFFIXES.sub("", path.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class ParseBook:
    """One text file -> its book as a Document (or a Reject/Skip with the reason)."""

    source: str
    options: GutenbergOptions

    def __call__(self, path: str) -> Iterator[Any]:
        with open_decompressed(path) as stream:
            data = stream.read(self.options.max_book_bytes + 1)
        if len(data) > self.options.max_book_bytes:
            yield Skip(TOO_LARGE)
            return
        text, codec = decode_book(data)
        book = strip_gutenberg(text)
        language = self.options.language
        if language is None:
            found = _LANGUAGE.search(text[:20_000])
            language = _LANGUAGE_CODES.get(found.group(1).lower(), "") if found else ""
        meta = {"title": book.title, "author": book.author, "ebook_number": book.ebook_number,
                "encoding": codec, "markers": book.markers}
        url = f"https://www.gutenberg.org/ebooks/{book.ebook_number}" if book.ebook_number else ""
        doc = Document(id=f"gutenberg:{book_id(path)}", text=book.text, source=self.source, url=url,
                       lang=language, warc_file=path, meta=meta)
        if not book.text.strip():
            yield Reject(doc, EMPTY)
        elif self.options.require_markers and book.markers == "none":
            yield Reject(doc, NO_MARKERS)
        else:
            yield doc


def read_gutenberg(options: GutenbergOptions, source: str = "books") -> SourceReader:
    """The reader PTransform for Project Gutenberg books."""
    return SourceReader(STAGE, ParseBook(source, options), reshuffle=False)
