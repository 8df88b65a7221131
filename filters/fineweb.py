"""FineWeb's three custom line rules, added after Gopher and C4 in the FineWeb recipe.

Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest Text Data at Scale",
arXiv 2406.17557, the section on developing additional heuristic filters. The authors compared
the statistics of a good and a bad crawl and kept three thresholds that each removed mostly
low-quality tokens:

* drop if the fraction of lines ending in punctuation is <= 0.12 (menus, listings);
* drop if the fraction of characters in duplicated lines is >= 0.1 (templated boilerplate);
* drop if the fraction of lines shorter than 30 characters is >= 0.67 (navigation, tag lists).

The boundaries (<= and >=) are the paper's. datatrove's FineWeb filter differs in two ways worth
knowing: its duplicate-character default is 0.01, not the paper's 0.1, and it counts empty lines
as (short, unpunctuated) lines. Here lines are :func:`filters.text_stats.lines` (stripped,
blank ones skipped) so a page's blank-line style does not change its score.

Convention: ``None`` switches a rule off. An empty page has no line ending in punctuation and
is dropped by the first rule. These rules use no words, so they apply unchanged to Chinese or
Japanese text, though ``。`` is not in the default punctuation (FineWeb was English-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.document import Document
from filters.text_stats import duplicate_counts, fraction, lines
from filters.verdict import Verdict


@dataclass(frozen=True)
class FineWeb:
    """Drops pages whose lines look like menus, boilerplate or tag lists (Penedo et al. 2024)."""

    name: ClassVar[str] = "fineweb"

    # Penedo et al. 2024, custom filters: drop when <= 0.12 of lines end in punctuation.
    min_punctuated_line_fraction: float | None = 0.12
    # The end marks datatrove's FineWeb filter checks (the paper says only "punctuation").
    terminal_punctuation: tuple[str, ...] = (".", "'", '"', "!", "?")
    # Penedo et al. 2024, custom filters: drop when >= 0.1 of characters are in duplicated lines.
    max_duplicate_line_char_fraction: float | None = 0.1
    # Penedo et al. 2024, custom filters: drop when >= 0.67 of lines are shorter than 30 characters.
    max_short_line_fraction: float | None = 0.67
    short_line_length: int = 30

    def __post_init__(self) -> None:
        for field_name in (
            "min_punctuated_line_fraction",
            "max_duplicate_line_char_fraction",
            "max_short_line_fraction",
        ):
            value = getattr(self, field_name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}.{field_name} must be in [0, 1] or null, got {value}")
        if self.short_line_length < 1:
            raise ValueError(f"{self.name}.short_line_length must be >= 1, got {self.short_line_length}")

    def __call__(self, doc: Document) -> Verdict:
        page_lines = lines(doc.text)
        n_lines = len(page_lines)
        if self.min_punctuated_line_fraction is not None:
            punctuated = sum(1 for line in page_lines if line.endswith(self.terminal_punctuation))
            if fraction(punctuated, n_lines) <= self.min_punctuated_line_fraction:
                return Verdict.drop(f"{self.name}.too_few_lines_ending_in_punctuation")
        if self.max_duplicate_line_char_fraction is not None:
            _, repeated_chars = duplicate_counts(page_lines)
            total_chars = sum(map(len, page_lines))
            if n_lines and fraction(repeated_chars, total_chars) >= self.max_duplicate_line_char_fraction:
                return Verdict.drop(f"{self.name}.too_many_duplicate_line_chars")
        if self.max_short_line_fraction is not None:
            short = sum(1 for line in page_lines if len(line) < self.short_line_length)
            if n_lines and fraction(short, n_lines) >= self.max_short_line_fraction:
                return Verdict.drop(f"{self.name}.too_many_short_lines")
        return Verdict.KEEP
