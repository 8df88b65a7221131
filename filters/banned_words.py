"""C4's banned-words rule, per document language: one listed word drops the page.

Raffel et al. 2020, section 2.2: C4 threw away every page holding any word of the "List of
Dirty, Naughty, Obscene or Otherwise Bad Words" (LDNOOBW, English file). TFDS matched the list on
the lowercased page with a non-word character (or the text edge) on both sides of the entry, so an
entry never matches inside a longer word ("Scunthorpe" is safe from its infix). We keep that
definition for every language written with spaces: matching is on runs of word characters, not on
:func:`filters.text_stats.words`, because "porn." or "(porn)" must match "porn". Single-word
entries are a set lookup, so a list of thousands costs what a list of ten does. A word character is
``\\w`` plus combining marks and the zero-width (non-)joiner: Python's ``\\w`` leaves out the vowel
signs of Devanagari or Thai, which would cut a Hindi word in two.

Lists. refinery ships the 28 LDNOOBW lists (CC BY 4.0, ``filters/resources/ldnoobw/``, attribution
in its ``SOURCE.md``) and its own short English list (``en-x-refinery``). Each list is named by a
BCP 47 tag and applies to the documents whose
language, as the ``langid`` stage wrote it in ``Document.lang``, is that tag's primary language
(``fr-CA-u-sd-caqc`` applies to ``fr`` pages, on top of ``fr`` if both are chosen). lid.176 labels
(``en``, ``tl``) and GlotLID labels (``eng_Latn``) are both understood (:func:`list_language`).
A document in a language with no chosen list is kept: there is nothing to check it against. A
document without a language (no ``langid`` stage ran, or its text was too short to identify) is
checked against ``default_language``'s lists, English by default, which is C4's setup.
``words_file`` replaces all of this with one list applied to every document.

Chinese, Japanese, Korean and Thai (``substring_languages``): words are not separated by spaces
(Korean separates phrases, with particles attached), so there is no boundary to match on, and
their entries are matched as plain substrings, except entries shorter than ``min_substring_chars``
(one Han character is part of too many innocent words). The ASCII entries of those lists ("sm",
"xx") are still matched as words, or "sm" would hit every "sms".

Which lists run by default was decided by measurement, not by taste (C4's rule drops many innocent
pages: Dodge et al. 2021 found it removed medical, LGBTQ+ and sex-education pages, and FineWeb found
it too aggressive). ``benchmarks/banned_words_drops.py`` runs langid and every list on the shared
pages and prints the pages each list drops, per language, with the entries that matched;
:data:`DEFAULT_LISTS` gives the result: C4's English list drops 9.1% of the English pages, mostly
innocent ones, so the English default is refinery's list (1.1%), and C4 exactly is ``lists: [en]``.

The parsed lists are built on first use and cached per process at module level, not stored on the
filter: Beam pickles filters to ship them to workers, and a filter that holds only names and a path
pickles in a few hundred bytes however long the lists.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from filters.config import ConfigError
from filters.document import Document
from filters.verdict import Verdict

LDNOOBW_LISTS = ("ar", "cs", "da", "de", "en", "eo", "es", "fa", "fi", "fil", "fr", "fr-CA-u-sd-caqc", "hi", "hu",
                 "it", "ja", "kab", "ko", "nl", "no", "pl", "pt", "ru", "sv", "th", "tlh", "tr", "zh")
"""Every list shipped under ``filters/resources/ldnoobw/`` (the upstream file names)."""

REFINERY_EN = "en-x-refinery"
"""refinery's own short English list (``filters/resources/banned_words_en.txt``, read its header):
words with (almost) no innocent sense. A BCP 47 private-use tag, so it applies to English pages."""

SHIPPED_LISTS = (*LDNOOBW_LISTS, REFINERY_EN)

DEFAULT_LISTS = (REFINERY_EN, "zh")
"""The lists the stage applies by default, chosen from what each list dropped on the shared pages.

Measured with ``benchmarks/banned_words_drops.py`` on the 1,676 extracted shared pages (the shared
WARCs, the ScrapingHub benchmark and the trafilatura evaluation set; trafilatura, then lid.176).
On the 760 English pages LDNOOBW's English list, C4's, drops 69 (9.1%), and read one by one about
60 of them are innocent: BBC and Reuters reports of sexual-abuse trials, Wikipedia's Mona Lisa and
spa articles ("undressing"), IANA's root-zone list (the .xxx and .sexy TLDs). refinery's short list
drops 8 (1.1%), four of them forum pages of profanity and porn spam. LDNOOBW German drops 16 of 707
pages, all innocent ("vögeln" is also "birds", dative; "nackt" in fashion and nature pages); Spanish
6 of 53 (one hateful), French 3 of 35, Portuguese 1 of 12, the others 0 (on a handful of pages
each). Chinese, matched as substrings, drops 10 of 17 with its one-character entries ("性" is in
性别 "gender" and 可能性 "possibility"), 6 of 17 without them: five gambling-spam or porn pages, and
a Baidu Baike article through the entry "13." (Chinese slang, matched as a word). So the
default is C4's rule with refinery's English list and the Chinese list; every other list is
shipped and chosen in the config (``lists: [all]``, or ``[en]`` for exactly C4).
"""

SUBSTRING_LANGUAGES = ("ja", "ko", "th", "zh")
"""Languages written without spaces between words (Korean: with particles attached)."""

# LID labels that are not LDNOOBW's tag for the same language: lid.176's Tagalog and Norwegian
# variants, Chinese varieties, and the ISO 639-3 codes GlotLID writes (``deu_Latn``).
LANGUAGE_ALIASES = {
    "tl": "fil", "tgl": "fil", "nb": "no", "nn": "no", "nob": "no", "nno": "no", "nor": "no",
    "yue": "zh", "wuu": "zh", "cmn": "zh", "zho": "zh", "ara": "ar", "arb": "ar", "ces": "cs", "dan": "da",
    "deu": "de", "eng": "en", "epo": "eo", "spa": "es", "fas": "fa", "pes": "fa", "fin": "fi", "fra": "fr",
    "hin": "hi", "hun": "hu", "ita": "it", "jpn": "ja", "kor": "ko", "nld": "nl", "pol": "pl", "por": "pt",
    "rus": "ru", "swe": "sv", "tha": "th", "tur": "tr",
}  # fmt: skip

REASON = "banned_words.contains_banned_word"


@functools.lru_cache(maxsize=4096)  # called per document and per chosen list
def list_language(tag: str) -> str:
    """The LDNOOBW language a LID label or list tag stands for: ``eng_Latn``, ``en-GB``, ``EN`` -> ``en``."""
    primary = re.split(r"[_\-]", tag.strip().lower(), maxsplit=1)[0]
    return LANGUAGE_ALIASES.get(primary, primary)


@dataclass(frozen=True)
class BannedWords:
    """Drops a page that contains any entry of its language's lists (case-insensitive).

    Entries are matched as whole words, or as substrings for ``substring_languages``. Holds only
    names and a path, so Beam ships it cheaply; the lists load on first use in each worker.
    """

    name: ClassVar[str] = "banned_words"

    lists: tuple[str, ...] = DEFAULT_LISTS
    """Lists to apply (tags of :data:`SHIPPED_LISTS`), each to the documents of its language; ``[all]`` is
    every LDNOOBW list, ``[]`` none. The default and its measurement: :data:`DEFAULT_LISTS`."""
    default_language: str = "en"
    """Whose lists check a document without a language (C4 ran English only); "" keeps such documents."""
    substring_languages: tuple[str, ...] = SUBSTRING_LANGUAGES
    """Languages whose non-ASCII entries match anywhere in the text, not only as whole words."""
    min_substring_chars: int = 2
    """Shorter substring entries are ignored: one Han character is a morpheme of hundreds of words
    ("性" in 性别 "gender"); on the shared Chinese pages they doubled the drops (see DEFAULT_LISTS)."""
    words_file: str | None = None
    """One list file (one entry per line, ``#`` comments) applied to every document whatever its
    language, matched as words: C4's setup with your own list. Replaces ``lists``."""

    def __post_init__(self) -> None:
        for key in ("lists", "substring_languages"):
            value = getattr(self, key)
            if isinstance(value, str):
                raise ValueError(f"{key} must be a list of language tags, got the string {value!r}")
            object.__setattr__(self, key, tuple(value))
        if self.lists == ("all",):
            object.__setattr__(self, "lists", LDNOOBW_LISTS)
        unknown = [tag for tag in self.lists if tag not in SHIPPED_LISTS]
        if unknown:
            raise ValueError(f"lists: no shipped list '{unknown[0]}' (shipped: all, {', '.join(SHIPPED_LISTS)})")
        if self.min_substring_chars < 1:
            raise ValueError(f"min_substring_chars must be >= 1, got {self.min_substring_chars}")
        # Fail when the config is loaded, not on the first document in some worker an hour later.
        if self.words_file is not None and not Path(self.words_file).is_file():
            raise ValueError(f"{self.name}.words_file: no such file: {self.words_file}")

    def __call__(self, doc: Document) -> Verdict:
        if self.first_match(doc.text, doc.lang) is not None:
            return Verdict.drop(REASON)
        return Verdict.KEEP

    def first_match(self, text: str, lang: str = "") -> str | None:
        """The listed entry found in ``text`` of language ``lang``, for reports and debugging; None if clean."""
        banned = self.list_for(lang)
        return None if banned is None else banned.first_match(text)

    def list_for(self, lang: str) -> BannedList | None:
        """The merged list that checks a document whose ``Document.lang`` is ``lang``; None: nothing to check."""
        if self.words_file is not None:
            return banned_list(self.words_file)
        language = list_language(lang or self.default_language)
        if not language:
            return None
        tags = tuple(tag for tag in self.lists if list_language(tag) == language)
        if not tags:
            return None
        substring = language in map(list_language, self.substring_languages)
        return shipped_lists(tags, self.min_substring_chars if substring else 0)


def _mark_code_points() -> list[int]:
    """Every combining mark (Unicode category M) in planes 0, 1 and 14, ascending.

    Planes 2-13 hold no marks; scanning only these keeps the one-off cost to a few tens of ms per process.
    """
    return [code for code in (*range(0x20000), *range(0xE0000, 0xE1000)) if unicodedata.category(chr(code))[0] == "M"]


def _class_body(codes: Iterable[int]) -> str:
    """A regex character-class body matching exactly ``codes`` (ascending), consecutive ones as ranges."""
    spans: list[tuple[int, int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1] = (spans[-1][0], code)
        else:
            spans.append((code, code))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in spans)


_MARKS = _mark_code_points()
_WORD_CHARS = rf"\w{_class_body(_MARKS)}\u200c\u200d"
_WORD_RUN = re.compile(rf"[{_WORD_CHARS}]+")
_NOT_BEFORE_WORD = rf"(?![{_WORD_CHARS}])"

# ``_WORD_RUN`` is slow: ``re`` tests a character against its hundreds of astral mark ranges one by one
# whenever the character is not a ``\w`` (every space and punctuation mark). On a page holding none of
# the characters it adds to ``\w`` (marks that are not ``\w``, the zero-width (non-)joiner), its runs
# are exactly those of ``\w+``, so :func:`_word_runs` checks for those characters first. The check is
# one pass of a class that ``re`` compiles to a constant-time table (the BMP extras) plus one range
# (any astral character, a candidate settled by a set lookup: emoji are astral and not marks).
_PLAIN_WORD_RUN = re.compile(r"\w+")
_EXTRA_WORD_CHARS = frozenset(c for c in map(chr, (*_MARKS, 0x200C, 0x200D)) if not _PLAIN_WORD_RUN.match(c))
_BMP_EXTRA_WORD_CODES = sorted(code for code in map(ord, _EXTRA_WORD_CHARS) if code <= 0xFFFF)
_MAYBE_EXTRA_WORD_CHAR = re.compile(rf"[{_class_body(_BMP_EXTRA_WORD_CODES)}\U00010000-\U0010ffff]")


def _alternative(entry: str) -> str:
    """The regex of one entry: its words separated by any whitespace, not preceded by a word character.

    The "not preceded" test sits after the entry's first character (a lookbehind over that character
    and the one before it), not before the whole alternation: a pattern that begins with a literal
    in every alternative lets ``re`` skip straight to the positions holding one of those first
    characters, where a leading lookbehind made it try the (slow) word-character class at every
    position. Both forms accept the same matches at the same positions, in the same order.
    """
    first, *rest = entry.split()
    head = re.escape(first[0])
    return rf"{head}(?<![{_WORD_CHARS}]{head}){re.escape(first[1:])}" + "".join(rf"\s+{re.escape(t)}" for t in rest)


def _word_runs(lowered: str) -> list[str]:
    """``_WORD_RUN.findall(lowered)``, through the fast ``\\w+`` when the page has no extra word character."""
    if lowered.isascii() or _EXTRA_WORD_CHARS.isdisjoint(_MAYBE_EXTRA_WORD_CHAR.findall(lowered)):
        return _PLAIN_WORD_RUN.findall(lowered)
    return _WORD_RUN.findall(lowered)


@dataclass(frozen=True)
class BannedList:
    """A parsed list, split so that the common case costs one pass over the text.

    An entry made of one run of word characters matches exactly when it equals a maximal word run
    of the page, so those entries are a set lookup whatever the list's length. Phrases and entries
    with punctuation ("a$$") go through one regex, which only runs when a phrase's first word is on
    the page or when the list has punctuated entries. ``substrings`` are tested with ``in`` (a C
    string search each), only those whose first character is on the page: a page of another script
    costs one ``set()`` of its characters.
    """

    words: frozenset[str]
    phrase_heads: frozenset[str]
    pattern: re.Pattern[str] | None
    always_search: bool
    substrings: tuple[str, ...] = ()
    substring_heads: frozenset[str] = frozenset()

    @classmethod
    def build(cls, entries: Iterable[str], min_substring_chars: int = 0) -> BannedList:
        """With ``min_substring_chars`` > 0, entries holding a non-ASCII character match anywhere (CJK,
        Thai) and those shorter than it are dropped; ASCII entries stay words either way."""
        entries = list(dict.fromkeys(entries))
        if min_substring_chars > 0:
            substrings = tuple(e for e in entries if not e.isascii() and len(e) >= min_substring_chars)
            entries = [e for e in entries if e.isascii()]
        else:
            substrings = ()
        words = frozenset(e for e in entries if _WORD_RUN.fullmatch(e))
        others = [e for e in entries if e not in words]
        heads = frozenset(e.split()[0] for e in others if all(_WORD_RUN.fullmatch(t) for t in e.split()))
        always = any(not all(_WORD_RUN.fullmatch(t) for t in e.split()) for e in others)
        pattern = None
        if others:
            # Longest first, so a phrase wins over a shorter entry that is its prefix.
            alternatives = "|".join(_alternative(e) for e in sorted(others, key=len, reverse=True))
            pattern = re.compile(rf"(?:{alternatives}){_NOT_BEFORE_WORD}")
        return cls(words, heads, pattern, always, substrings, frozenset(e[0] for e in substrings))

    def first_match(self, text: str) -> str | None:
        """One listed entry found in ``text`` (the smallest word, else the first phrase or substring)."""
        lowered = text.lower()
        present = set(_word_runs(lowered))
        hit = self.words & present
        if hit:
            return min(hit)
        if self.pattern is not None and (self.always_search or not self.phrase_heads.isdisjoint(present)):
            found = self.pattern.search(lowered)
            if found:
                return found.group(0)
        return next(iter(self._substrings_in(lowered)), None)

    def matches(self, text: str) -> set[str]:
        """Every listed entry found in ``text`` (as the list writes it, phrases as they appear): for measuring."""
        lowered = text.lower()
        found = self.words & set(_word_runs(lowered))
        if self.pattern is not None:
            found |= {m.group(0) for m in self.pattern.finditer(lowered)}
        return found | set(self._substrings_in(lowered))

    def _substrings_in(self, lowered: str) -> Iterator[str]:
        if self.substrings and not self.substring_heads.isdisjoint(lowered):
            heads = self.substring_heads.intersection(lowered)
            yield from (s for s in self.substrings if s[0] in heads and s in lowered)


@functools.lru_cache(maxsize=64)
def shipped_lists(tags: tuple[str, ...], min_substring_chars: int = 0) -> BannedList:
    """The shipped lists ``tags`` merged into one (substring matching as in :meth:`BannedList.build`), once per process."""
    return BannedList.build([e for tag in tags for e in parse_word_list(shipped_text(tag))], min_substring_chars)


def shipped_text(tag: str) -> str:
    """The text of a shipped list file."""
    folder = resources.files("filters").joinpath("resources")
    path = folder.joinpath("banned_words_en.txt") if tag == REFINERY_EN else folder.joinpath("ldnoobw", tag)
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=16)
def banned_list(words_file: str) -> BannedList:
    """The parsed list of a ``words_file``, loaded once per process."""
    try:
        text = Path(words_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{words_file}: cannot read banned-words list: {exc}") from None
    return BannedList.build(parse_word_list(text))


def parse_word_list(text: str) -> list[str]:
    """Entries of a list file: lowercased, whitespace collapsed, comments and blanks skipped."""
    entries: dict[str, None] = {}  # ordered and de-duplicated
    for line in text.splitlines():
        entry = " ".join(line.split()).lower()
        if entry and not entry.startswith("#"):
            entries[entry] = None
    return list(entries)

