"""C4's banned-words rule: one listed word anywhere on the page drops the page.

Raffel et al. 2020, section 2.2: C4 threw away every page holding any word of the "List of
Dirty, Naughty, Obscene or Otherwise Bad Words" (LDNOOBW). TFDS matched the list on the
lowercased page with a non-word character (or the text edge) on both sides of the entry, so an
entry never matches inside a longer word ("Scunthorpe" is safe from its infix). We keep that definition:
matching is on runs of word characters (``\\w+``), not on :func:`filters.text_stats.words`,
because "porn." or "(porn)" must match "porn". Single-word entries are a set lookup, so a
list of thousands costs what a list of ten does.

The list is a file (one entry per line, ``#`` comments); the default is refinery's own short list
in ``filters/resources/banned_words_en.txt``, chosen to drop few innocent pages (read its
header). The parsed list is built on first use and cached per path at module level, not
stored on the filter: Beam pickles filters to ship them to workers, and a filter that holds only
a path pickles in a few bytes however long the list.

Chinese and Japanese: their characters are word characters and are not separated by spaces, so
a CJK entry inside a sentence has no boundary and does not match. A CJK list would need plain
substring matching; our list is English only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from filters.config import ConfigError
from filters.document import Document
from filters.verdict import Verdict

DEFAULT_LIST = "banned_words_en.txt"
"""The shipped list, a file under ``filters/resources/``; used when ``words_file`` is None."""


@dataclass(frozen=True)
class BannedWords:
    """Drops a page that contains any listed word or phrase (case-insensitive, whole words)."""

    name: ClassVar[str] = "banned_words"

    # A local file path; None uses refinery's shipped list (filters/resources/banned_words_en.txt).
    words_file: str | None = None

    def __post_init__(self) -> None:
        # Fail when the config is loaded, not on the first document in some worker an hour later.
        if self.words_file is not None and not Path(self.words_file).is_file():
            raise ValueError(f"{self.name}.words_file: no such file: {self.words_file}")

    def __call__(self, doc: Document) -> Verdict:
        if banned_list(self.words_file).first_match(doc.text) is not None:
            return Verdict.drop(f"{self.name}.contains_banned_word")
        return Verdict.KEEP

    def first_match(self, text: str) -> str | None:
        """The listed entry found in ``text``, for reports and debugging; None if clean."""
        return banned_list(self.words_file).first_match(text)


_WORD_RUN = re.compile(r"\w+")


@dataclass(frozen=True)
class BannedList:
    """A parsed list, split so that the common case costs one pass over the text.

    An entry made of one run of word characters matches exactly when it equals a maximal ``\\w+``
    run of the page, so those entries are a set lookup whatever the list's length. Phrases and
    entries with punctuation ("a$$") go through one regex, which only runs when a phrase's first
    word is on the page or when the list has punctuated entries.
    """

    words: frozenset[str]
    phrase_heads: frozenset[str]
    pattern: re.Pattern[str] | None
    always_search: bool

    @classmethod
    def build(cls, entries: list[str]) -> BannedList:
        words = frozenset(e for e in entries if _WORD_RUN.fullmatch(e))
        others = [e for e in entries if e not in words]
        heads = frozenset(e.split()[0] for e in others if all(_WORD_RUN.fullmatch(t) for t in e.split()))
        always = any(not all(_WORD_RUN.fullmatch(t) for t in e.split()) for e in others)
        pattern = None
        if others:
            # Longest first, so a phrase wins over a shorter entry that is its prefix.
            alternatives = "|".join(
                r"\s+".join(map(re.escape, e.split())) for e in sorted(others, key=len, reverse=True)
            )
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        return cls(words, heads, pattern, always)

    def first_match(self, text: str) -> str | None:
        lowered = text.lower()
        present = set(_WORD_RUN.findall(lowered))
        hit = self.words & present
        if hit:
            return min(hit)
        if self.pattern is not None and (self.always_search or not self.phrase_heads.isdisjoint(present)):
            found = self.pattern.search(lowered)
            if found:
                return found.group(0)
        return None


@functools.lru_cache(maxsize=16)
def banned_list(words_file: str | None) -> BannedList:
    """The parsed list for a file (None: the shipped list), loaded once per process."""
    return BannedList.build(parse_word_list(_read_list(words_file)))


def parse_word_list(text: str) -> list[str]:
    """Entries of a list file: lowercased, whitespace collapsed, comments and blanks skipped."""
    entries: dict[str, None] = {}  # ordered and de-duplicated
    for line in text.splitlines():
        entry = " ".join(line.split()).lower()
        if entry and not entry.startswith("#"):
            entries[entry] = None
    return list(entries)


def _read_list(words_file: str | None) -> str:
    if words_file is None:
        return resources.files("filters").joinpath("resources", DEFAULT_LIST).read_text(encoding="utf-8")
    try:
        return Path(words_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{words_file}: cannot read banned-words list: {exc}") from None
