"""Gopher's quality rules: cheap signs that a page is not natural prose.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
App. A.1.1 (the MassiveWeb quality filter). Each rule catches one kind of non-prose that the
language-ID and dedup stages let through: stubs (too few words), dumps and logs (too many),
tables of numbers (few alphabetic words), tag clouds (``#``), teaser lists (lines ending in
``...``), pure bullet lists, and text that is not English sentences at all (no stop words).

Convention: each rule's threshold field may be ``None`` to switch that rule off; ``min_*``
rules drop when the measure is strictly below, ``max_*`` rules when strictly above.

Words are :func:`filters.text_stats.words`. On Chinese or Japanese text (no spaces) a page is a
handful of very long "words": it is dropped as ``too_few_words`` or ``mean_word_length_too_long``.
That is intended; the rules are English rules and the pipeline should only apply them to
space-delimited languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from filters.document import Document
from filters.text_stats import PUNCTUATION, fraction, lines, words
from filters.verdict import Verdict

# Any letter in any script: "2008" and "$5" are words without one, "naïve" and "東京" have one.
_HAS_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class GopherQuality:
    """Drops documents that fail any of the Gopher MassiveWeb quality heuristics."""

    name: ClassVar[str] = "gopher_quality"

    # Rae et al. 2021, App. A.1.1: keep 50 to 100,000 words.
    min_words: int | None = 50
    max_words: int | None = 100_000
    # App. A.1.1: keep a mean word length of 3 to 10 characters.
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    # App. A.1.1: drop above 0.1 symbols per word, for "#" and for the ellipsis separately;
    # one field per symbol so either can be switched off alone.
    max_hash_to_word_ratio: float | None = 0.1
    max_ellipsis_to_word_ratio: float | None = 0.1
    # App. A.1.1: drop above 90% of lines starting with a bullet, above 30% ending in an ellipsis.
    max_bullet_line_fraction: float | None = 0.9
    max_ellipsis_line_fraction: float | None = 0.3
    # App. A.1.1: keep when at least 80% of words hold an alphabetic character.
    min_alphabetic_word_fraction: float | None = 0.8
    # App. A.1.1: keep when at least two of these eight English stop words occur. We count
    # distinct stop words, as the paper words it; datatrove counts occurrences, so a page whose
    # only stop word is "the", twice, passes there and not here.
    min_stop_words: int | None = 2
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
    # The paper does not list its bullet characters: these are the common Unicode bullets plus
    # the "-" and "*" that trafilatura and Markdown use for list items.
    bullets: tuple[str, ...] = ("•", "●", "○", "◦", "▪", "▫", "‣", "⁃", "-", "*")

    def __post_init__(self) -> None:
        for field_name in ("min_words", "max_words", "min_stop_words"):
            value = getattr(self, field_name)
            if value is not None and value < 0:
                raise ValueError(f"{self.name}.{field_name} must be >= 0 or null, got {value}")
        for field_name in (
            "max_hash_to_word_ratio",
            "max_ellipsis_to_word_ratio",
            "max_bullet_line_fraction",
            "max_ellipsis_line_fraction",
            "min_alphabetic_word_fraction",
        ):
            value = getattr(self, field_name)
            if value is not None and value < 0:
                raise ValueError(f"{self.name}.{field_name} must be >= 0 or null, got {value}")
        for low, high in (("min_words", "max_words"), ("min_mean_word_length", "max_mean_word_length")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{self.name}.{low} ({lo}) is above {high} ({hi})")

    def __call__(self, doc: Document) -> Verdict:
        reason = self._check(doc.text)
        return Verdict.drop(f"{self.name}.{reason}") if reason else Verdict.KEEP

    def _check(self, text: str) -> str:
        """The first failed rule's short name, or "" when every enabled rule passes."""
        tokens = words(text)
        n_words = len(tokens)
        if self.min_words is not None and n_words < self.min_words:
            return "too_few_words"
        if self.max_words is not None and n_words > self.max_words:
            return "too_many_words"

        mean_length = fraction(sum(map(len, tokens)), n_words)
        if self.min_mean_word_length is not None and mean_length < self.min_mean_word_length:
            return "mean_word_length_too_short"
        if self.max_mean_word_length is not None and mean_length > self.max_mean_word_length:
            return "mean_word_length_too_long"

        # With no words at all (min_words switched off), any symbol is "too many".
        per_word = max(n_words, 1)
        if self.max_hash_to_word_ratio is not None:
            if text.count("#") / per_word > self.max_hash_to_word_ratio:
                return "too_many_hashes"
        if self.max_ellipsis_to_word_ratio is not None:
            ellipses = text.count("...") + text.count("…")
            if ellipses / per_word > self.max_ellipsis_to_word_ratio:
                return "too_many_ellipses"

        if self.max_bullet_line_fraction is not None or self.max_ellipsis_line_fraction is not None:
            page_lines = lines(text)
            if self.max_bullet_line_fraction is not None:
                bulleted = sum(1 for line in page_lines if line.startswith(self.bullets))
                if fraction(bulleted, len(page_lines)) > self.max_bullet_line_fraction:
                    return "too_many_bullet_lines"
            if self.max_ellipsis_line_fraction is not None:
                trailing = sum(1 for line in page_lines if line.endswith(("...", "…")))
                if fraction(trailing, len(page_lines)) > self.max_ellipsis_line_fraction:
                    return "too_many_ellipsis_lines"

        if self.min_alphabetic_word_fraction is not None and n_words:
            has_letter = _HAS_LETTER.search
            # ``isalpha`` settles plain words in C; only "actor." or "2008" reach the regex.
            alphabetic = sum(1 for token in tokens if token.isalpha() or has_letter(token))
            if alphabetic / n_words < self.min_alphabetic_word_fraction:
                return "too_few_alphabetic_words"

        if self.min_stop_words is not None and self._distinct_stop_words(tokens) < self.min_stop_words:
            return "too_few_stop_words"
        return ""

    def _distinct_stop_words(self, tokens: list[str]) -> int:
        """Distinct stop words present, case-folded and with edge punctuation removed ("The," -> the).

        Stops as soon as the minimum is reached: on English prose that is within a few words.
        """
        wanted = set(self.stop_words)
        seen: set[str] = set()
        needed = self.min_stop_words or 0
        for token in tokens:
            word = token.strip(PUNCTUATION).lower()
            if word in wanted and word not in seen:
                seen.add(word)
                if len(seen) >= needed:
                    break
        return len(seen)
