"""The per-document half of CCNet-style line deduplication: normalise, hash, and remove lines.

Wenzek et al. 2020, "CCNet: Extracting High Quality Monolingual Datasets from Web Crawl Data",
section 3.1: lines that recur across many pages of a shard (menus, cookie notices, "Share on
Facebook", footers) are boilerplate; removing every line whose normalised hash is frequent
strips them from all pages at once, which per-page rules cannot do. The corpus-wide counting is
a Beam aggregation in ``pipeline/`` (never a dict of all lines in one worker); this module only
holds the pure functions both sides of that aggregation share, so the hash a counter emits and
the hash a remover looks up can never disagree.

Lines are those of ``str.splitlines`` (any line ending). A line that normalises to nothing
(blank, or only punctuation such as ``-----``) gets no hash and is never removed: blank lines
shape paragraphs, and a rule line carries no boilerplate worth counting.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

# Everything that is neither a word character nor whitespace, plus "_" (a word character in
# Python's regex but punctuation to a reader): Unicode punctuation and symbols alike.
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_DIGIT = re.compile(r"\d")


def _ascii_steps() -> dict[int, str]:
    """Steps 2-4 of :func:`normalize_line` for each ASCII character, derived from the regexes themselves.

    On ASCII text every one of those steps maps one character to one character, independently of its
    neighbours, so a ``str.translate`` table does all three in one pass in C.
    """
    table = {}
    for code in range(128):
        char = chr(code).lower()
        table[code] = "0" if _DIGIT.fullmatch(char) else " " if _PUNCTUATION.fullmatch(char) else char
    return table


_ASCII_STEPS = _ascii_steps()


def normalize_line(line: str) -> str:
    """The form in which two boilerplate lines that differ only cosmetically become equal.

    Steps, in this order:

    1. Unicode NFKC: full-width letters, ligatures ("ﬁ"), non-breaking and other exotic spaces
       and composed/decomposed accents collapse to one code-point sequence, so the same footer
       typed on two CMSs hashes alike. It runs first so the later steps see canonical text.
    2. Lowercase: "Share This" and "SHARE THIS" are the same boilerplate.
    3. Every digit (in any script, after NFKC mostly ASCII) becomes 0: "© 2019" and "© 2023",
       "Page 3 of 12" and "Page 4 of 12" are the same template line with a counter in it.
    4. Punctuation and symbols are removed: separators ("|", "»", "·") and quotes vary with the
       theme, not the content.
    5. Whitespace runs become one space, and the ends are stripped: step 4 leaves gaps, and
       indentation is layout.

    CCNet also strips accents; we keep them, since in many languages they tell words apart and
    boilerplate rarely differs by accents alone.

    Most lines are ASCII, which NFKC leaves unchanged; they take steps 2-4 as one translation table
    (:data:`_ASCII_STEPS`). Step 5 is ``" ".join(text.split())``: ``str.split``, ``str.strip`` and
    the regex ``\\s`` share one definition of whitespace, so this is the same as replacing runs and
    stripping, in one pass. These shortcuts are pinned to the step-by-step definition by the tests.
    """
    if not line.isascii():
        line = unicodedata.normalize("NFKC", line).lower()
        if not line.isascii():
            return " ".join(_PUNCTUATION.sub(" ", _DIGIT.sub("0", line)).split())
    return " ".join(line.translate(_ASCII_STEPS).split())


def line_hash(normalized: str) -> int:
    """A stable 64-bit hash of a normalised line, as a signed int64.

    blake2b, not Python's ``hash()``: that one is salted per process, and Beam workers are
    separate processes whose counts must meet under one key. Signed so the value fits an Arrow
    ``int64`` column and Beam's varint coder without overflow.
    """
    digest = hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def lines_with_hashes(text: str) -> list[tuple[str, int]]:
    """Each hashable line of ``text`` (as written, without its line ending) with its hash.

    A line repeated on the page appears once per occurrence; the aggregation decides whether
    repeats within one page count.
    """
    pairs = []
    known: dict[str, int | None] = {}  # a line repeated on the page is normalised and hashed once
    for line in text.splitlines():
        if line in known:
            hashed = known[line]
        else:
            normalized = normalize_line(line)
            hashed = known[line] = line_hash(normalized) if normalized else None
        if hashed is not None:
            pairs.append((line, hashed))
    return pairs


def remove_lines(text: str, drop_hashes: set[int] | frozenset[int]) -> str:
    """``text`` without the lines whose hash is in ``drop_hashes``; other lines are untouched.

    Line endings of the kept lines are preserved (a CRLF page stays CRLF), so a page with
    nothing to drop comes back identical.
    """
    if not drop_hashes:
        return text
    kept = []
    dropped: dict[str, bool] = {}  # pages with frequent lines repeat them (menus, footers): decide once
    for line in text.splitlines(keepends=True):
        drop = dropped.get(line)
        if drop is None:
            normalized = normalize_line(line)
            drop = dropped[line] = bool(normalized) and line_hash(normalized) in drop_hashes
        if not drop:
            kept.append(line)
    return "".join(kept)


def distinct_line_hashes(text: str) -> np.ndarray:
    """The sorted distinct hashes of ``text``'s lines (int64): what one document adds to the counts."""
    return np.unique(np.fromiter((h for _, h in lines_with_hashes(text)), dtype=np.int64))
