"""The one way the rule filters cut text into words, lines, paragraphs and word n-grams.

Gopher, C4 and FineWeb each define their rules over "words" and "lines" without saying exactly
how to split; datatrove uses nltk tokens, dolma whitespace tokens, TFDS ``str.split()``. Mixing
them makes thresholds drift between rules, so every filter here imports its splitting from this
module and nowhere else.

Definitions:

* **word**: a run of non-whitespace that holds at least one letter or digit. A lone ``,`` or
  ``-`` (WikiText spaces its punctuation out; trafilatura emits ``-`` bullets) is not a word, so
  it neither counts towards the 50-word minimum nor drags the mean word length towards 1.
  Punctuation attached to a word stays on it (``actor.`` is one word of 6 characters).
* **line**: a line of ``str.splitlines()`` (``\\n``, ``\\r\\n``, ``\\r`` and the Unicode line
  separators), stripped; blank lines are not lines, otherwise a page's blank separators would be
  its most "duplicated line".
* **paragraph**: text between blank lines (a line holding only whitespace counts as blank).

Scripts written without spaces (Chinese, Japanese, Thai) come out as a few very long "words";
the word-based rules were designed for English and will reject such pages. The pipeline should
run them only on space-delimited languages; here they just must not crash.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import count

import numpy as np

# A letter or digit in any script ("_" is a word character to ``re`` but not to a reader).
_ALNUM = re.compile(r"[^\W_]")
# A line break, optional spaces/tabs, another line break. The groups are atomic so that a CRLF is
# never read as a CR followed by an LF, i.e. as two breaks.
_BLANK_LINE = re.compile(r"(?>\r\n|\r|\n)[^\S\r\n]*(?>\r\n|\r|\n)\s*")

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»‘’‚‛“”„‟‹›–—―…·•¡¿"
"""ASCII punctuation plus the typographic quotes, dashes and ellipsis common on web pages."""


def words(text: str) -> list[str]:
    """Whitespace tokens that hold a letter or digit (see the module docstring for why)."""
    # ``isalnum`` settles most tokens ("the", "2008") in C; only tokens with punctuation in them
    # ("actor.", "--") pay for the regex. Cheaper than one findall over the text, and linear.
    has_alnum = _ALNUM.search
    return [token for token in text.split() if token.isalnum() or has_alnum(token)]


def lines(text: str) -> list[str]:
    """Non-blank lines, stripped, for any line-ending convention (CRLF pages are common)."""
    return [stripped for line in text.splitlines() if (stripped := line.strip())]


def paragraphs(text: str) -> list[str]:
    """Blocks separated by at least one blank line, stripped; empty blocks are dropped."""
    return [stripped for block in _BLANK_LINE.split(text) if (stripped := block.strip())]


def fraction(part: float, whole: float) -> float:
    """``part / whole``, or 0.0 for an empty whole: an empty page has no bad fraction of anything."""
    return part / whole if whole else 0.0


def duplicate_counts(items: Iterable[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and how many characters those repeats hold.

    Only the copies after the first occurrence count: a line shown twice contributes one
    duplicate, since removing it would leave the page's content intact.
    """
    repeats = 0
    repeated_chars = 0
    for item, n in Counter(items).items():
        if n > 1:
            repeats += n - 1
            repeated_chars += (n - 1) * len(item)
    return repeats, repeated_chars


class WordNgrams:
    """Exact integer ids for the word n-grams of one document, built incrementally in numpy.

    The id of an n-gram is computed from the id of its (n-1)-gram prefix and its last word, then
    re-ranked so ids stay below the word count: equal n-grams get equal ids with no hashing and
    hence no collisions. Building ids for n = 2..10 costs a few ``np.unique`` calls instead of
    millions of Python tuple hashes on a long page.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.size = len(tokens)
        vocab: dict[str, int] = {}
        # setdefault hands out ids from ``count()``: unique per distinct word, at most len - 1.
        self._unigrams = np.fromiter(
            map(vocab.setdefault, tokens, count()), dtype=np.int64, count=self.size
        )
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=self.size)
        self._cum_chars = np.concatenate(([0], np.cumsum(lengths)))
        self.total_chars = int(self._cum_chars[-1])
        self._ids: dict[int, np.ndarray] = {1: self._unigrams}

    def ids(self, n: int) -> np.ndarray:
        """Per start position, the id of the n-gram starting there (length ``size - n + 1``)."""
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        if n > self.size:
            return np.empty(0, dtype=np.int64)
        if n not in self._ids:
            prefix = self.ids(n - 1)[: self.size - n + 1]
            pairs = prefix * (self.size + 1) + self._unigrams[n - 1 :]
            _, ranks = np.unique(pairs, return_inverse=True)
            self._ids[n] = ranks.astype(np.int64, copy=False)
        return self._ids[n]

    def top_char_fraction(self, n: int) -> float:
        """Share of word characters taken by the most frequent n-gram, if it occurs twice or more.

        A document whose n-grams are all unique has no repetition, so it scores 0 rather than the
        size of one n-gram (which would reject every short page). Among n-grams tied for most
        frequent, the longest in characters counts, so the score does not depend on word order.
        """
        ids = self.ids(n)
        if ids.size == 0:
            return 0.0
        occurrences = np.bincount(ids)
        top = int(occurrences.max())
        if top < 2:
            return 0.0
        starts = np.flatnonzero(occurrences[ids] == top)
        span = int((self._cum_chars[starts + n] - self._cum_chars[starts]).max())
        return fraction(top * span, self.total_chars)

    def duplicate_char_fraction(self, n: int) -> float:
        """Share of word characters inside n-grams that occur more than once.

        Every occurrence counts, the first included, and a word covered by several overlapping
        duplicate n-grams counts once (Rae et al. 2021, App. A, Table A1).
        """
        ids = self.ids(n)
        if ids.size == 0:
            return 0.0
        starts = np.flatnonzero(np.bincount(ids)[ids] > 1)
        if starts.size == 0:
            return 0.0
        # +1 where a duplicate n-gram starts, -1 where it ends: the running sum is > 0 on every
        # word that lies inside at least one of them.
        edges = np.zeros(self.size + 1, dtype=np.int64)
        edges[starts] += 1
        edges[starts + n] -= 1  # start positions are distinct, so are their ends
        covered = np.cumsum(edges[: self.size]) > 0
        lengths = np.diff(self._cum_chars)
        return fraction(int(lengths[covered].sum()), self.total_chars)
