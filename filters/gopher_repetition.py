"""Gopher's repetition rules: drop pages that say the same thing over and over.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
App. A and Table A1. Repetitive pages (spam, link farms, templated listings, scraped
navigation) are both low quality and a memorisation risk, and exact/near-dup removal across
documents does not see repetition *inside* one document.

Every rule is a ``max_*`` fraction field; ``None`` switches that rule off. A document is dropped
when a fraction is strictly above its threshold. Cheap line/paragraph rules run first, word
n-grams last.

Measures:

* duplicate line/paragraph fraction: copies of an earlier line (paragraph) over all lines,
  and the characters in those copies over all line (paragraph) characters.
* top n-gram fraction (n = 2, 3, 4): characters of the most frequent word n-gram times its count,
  over all word characters; 0 unless that n-gram occurs at least twice.
* duplicate n-gram fraction (n = 5..10): characters of words covered by any n-gram that occurs
  more than once, overlaps counted once, over all word characters.

Words, lines and paragraphs come from :mod:`filters.text_stats`. For text without spaces
(Chinese, Japanese) each sentence run is one "word", so the n-gram rules see almost nothing;
the line and paragraph rules still work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from filters.document import Document
from filters.text_stats import WordNgrams, duplicate_counts, fraction, lines, paragraphs, words
from filters.verdict import Verdict

_TOP_NGRAM_SIZES = (2, 3, 4)
_DUP_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)


@dataclass(frozen=True)
class GopherRepetition:
    """Drops a document whose lines, paragraphs or word n-grams repeat too much (Gopher Table A1)."""

    name: ClassVar[str] = "gopher_repetition"

    # All defaults: Rae et al. 2021, Table A1.
    max_duplicate_line_fraction: float | None = 0.30
    max_duplicate_line_char_fraction: float | None = 0.20
    max_duplicate_paragraph_fraction: float | None = 0.30
    max_duplicate_paragraph_char_fraction: float | None = 0.20
    max_top_2gram_char_fraction: float | None = 0.20
    max_top_3gram_char_fraction: float | None = 0.18
    max_top_4gram_char_fraction: float | None = 0.16
    max_duplicate_5gram_char_fraction: float | None = 0.15
    max_duplicate_6gram_char_fraction: float | None = 0.14
    max_duplicate_7gram_char_fraction: float | None = 0.13
    max_duplicate_8gram_char_fraction: float | None = 0.12
    max_duplicate_9gram_char_fraction: float | None = 0.11
    max_duplicate_10gram_char_fraction: float | None = 0.10

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}.{f.name} must be a fraction in [0, 1] or null, got {value}")

    def __call__(self, doc: Document) -> Verdict:
        text = doc.text
        reason = self._block_rules("line", lines(text)) or self._block_rules("paragraph", paragraphs(text))
        if reason:
            return Verdict.drop(reason)
        reason = self._ngram_rules(text)
        return Verdict.drop(reason) if reason else Verdict.KEEP

    def _block_rules(self, kind: str, blocks: list[str]) -> str:
        """The duplicate-count and duplicate-character rules for lines or paragraphs."""
        max_count: float | None = getattr(self, f"max_duplicate_{kind}_fraction")
        max_chars: float | None = getattr(self, f"max_duplicate_{kind}_char_fraction")
        if max_count is None and max_chars is None:
            return ""
        repeats, repeated_chars = duplicate_counts(blocks)
        if max_count is not None and fraction(repeats, len(blocks)) > max_count:
            return f"{self.name}.too_many_duplicate_{kind}s"
        total_chars = sum(map(len, blocks))
        if max_chars is not None and fraction(repeated_chars, total_chars) > max_chars:
            return f"{self.name}.too_many_duplicate_{kind}_chars"
        return ""

    def _ngram_rules(self, text: str) -> str:
        top_limits = [(n, getattr(self, f"max_top_{n}gram_char_fraction")) for n in _TOP_NGRAM_SIZES]
        dup_limits = [(n, getattr(self, f"max_duplicate_{n}gram_char_fraction")) for n in _DUP_NGRAM_SIZES]
        top_limits = [(n, limit) for n, limit in top_limits if limit is not None]
        dup_limits = [(n, limit) for n, limit in dup_limits if limit is not None]
        if not top_limits and not dup_limits:
            return ""
        grams = WordNgrams(words(text))
        for n, limit in top_limits:
            if grams.top_char_fraction(n) > limit:
                return f"{self.name}.top_{n}gram_too_frequent"
        for i, (n, limit) in enumerate(dup_limits):
            share = grams.duplicate_char_fraction(n)
            if share > limit:
                return f"{self.name}.too_many_duplicate_{n}gram_chars"
            # Words covered by duplicate (n+1)-grams are a subset of those covered by duplicate
            # n-grams, so the share only falls with n: once it is under every remaining limit,
            # no larger n can fail and the remaining (costly) sizes are skipped.
            if all(share <= later for _, later in dup_limits[i + 1 :]):
                break
        return ""
