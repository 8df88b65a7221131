import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from filters.line_dedup import (
    distinct_line_hashes,
    line_hash,
    lines_with_hashes,
    normalize_line,
    remove_lines,
)
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE

FOOTER = "  Ｃｏｐｙｒｉｇｈｔ © 2019–2023 ACME, Inc.  |  All rights reserved "


def test_normalize_each_step():
    assert normalize_line("ﬁnal Ｆｕｌｌ\u00a0width") == "final full width"  # NFKC
    assert normalize_line("Share THIS") == "share this"  # lowercase
    assert normalize_line("Page 3 of 12") == "page 0 of 00"  # digits
    assert normalize_line("Home » News | Sports") == "home news sports"  # punctuation and symbols
    assert normalize_line("  a \t  b  ") == "a b"  # whitespace
    assert normalize_line(FOOTER) == "copyright 0000 0000 acme inc all rights reserved"


def test_normalize_keeps_accents_and_cjk():
    assert normalize_line("Café") == "café"
    assert normalize_line("東京タワー　２０２３年") == "東京タワー 0000年"


def test_template_lines_hash_alike():
    assert line_hash(normalize_line("© 2019 ACME Inc.")) == line_hash(normalize_line("© 2023 Acme, Inc"))


def test_hash_is_stable_across_processes_and_releases():
    # A golden value: a changed hash would silently split line counts between old and new runs.
    assert line_hash("copyright 0000 0000 acme inc all rights reserved") == 3176442651308682537
    code = "from filters.line_dedup import line_hash; print(line_hash('share this'))"
    # Another interpreter, with its own hash() salt, must agree with this one.
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout == f"{line_hash('share this')}\n"


def test_hash_is_a_signed_64_bit_int():
    values = [line_hash(normalize_line(line)) for line in ENGLISH_PROSE.splitlines()]
    assert all(-(2**63) <= v < 2**63 for v in values)
    assert len(set(values)) == len(values)


def test_lines_with_hashes_skip_lines_that_normalise_to_nothing():
    text = "Share this\r\n\r\n-----\r\n  \r\nReal content here.\n"
    pairs = lines_with_hashes(text)
    assert [line for line, _ in pairs] == ["Share this", "Real content here."]
    assert pairs[0][1] == line_hash("share this")


def test_repeated_lines_appear_once_per_occurrence():
    assert len(lines_with_hashes("Share this\nShare this\n")) == 2


def test_remove_lines_keeps_everything_else_byte_for_byte():
    text = "Intro line.\r\nShare this\r\n\r\nBody text stays.\r\nSHARE THIS!\r\nEnd."
    assert remove_lines(text, {line_hash("share this")}) == "Intro line.\r\n\r\nBody text stays.\r\nEnd."
    assert remove_lines(text, set()) == text
    assert remove_lines(text, {line_hash("not present")}) == text


def test_remove_lines_never_removes_blank_lines():
    text = "a\n\n\nb\n"
    assert remove_lines(text, {line_hash("")}) == text


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases(case):
    text = EDGE_CASES[case]
    pairs = lines_with_hashes(text)
    assert len(pairs) == len([line for line in text.splitlines() if normalize_line(line)])
    if pairs:
        assert remove_lines(text, {pairs[0][1]}) != text
    assert remove_lines(text, set()) == text


def test_distinct_line_hashes_are_sorted_and_unique():
    hashes = distinct_line_hashes("Home\nabout us\nHOME\n---\n\nAbout  us!")
    assert hashes.dtype == np.int64
    assert hashes.tolist() == sorted({line_hash("home"), line_hash("about us")})
    assert distinct_line_hashes("").size == 0


def _normalize_step_by_step(line: str) -> str:
    """normalize_line's docstring, literally: the reference its shortcuts must agree with."""
    text = unicodedata.normalize("NFKC", line).lower()
    text = re.sub(r"\d", "0", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def test_ascii_fast_path_matches_the_definition_for_every_character_and_pair():
    # NFKC leaves ASCII alone (no ASCII character decomposes or composes with another).
    ascii_chars = [chr(code) for code in range(128)]
    for a in ascii_chars:
        for b in ascii_chars:
            assert unicodedata.normalize("NFKC", a + b) == a + b
        for line in (a, f"Ab {a}9_x", f" {a}{a} \t", f"A{a}Z"):
            assert normalize_line(line) == _normalize_step_by_step(line), repr(line)


def test_non_ascii_path_matches_the_definition_across_the_bmp():
    # Every BMP character in context: NFKC that yields ASCII (full-width digits), digits of other
    # scripts, exotic whitespace, symbols, marks.
    for code in range(0x80, 0x10000, 7):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        for line in (char, f"Ab {char}9_x", f"{char}{char} \u3000"):
            assert normalize_line(line) == _normalize_step_by_step(line), hex(code)
    for line in ("２０２３年 ＡＣＭＥ", "Ｆｕｌｌ", "ﬁ ﬂ", "e\u0301t\u00e9", "١٢٣ ٤", "a\u2028b\x85c", "İstanbul", "😀 ok"):
        assert normalize_line(line) == _normalize_step_by_step(line), line


def test_repeated_lines_hash_and_drop_like_single_ones():
    text = "Menu\nShare this\nBody one.\nShare this\r\nMenu\nShare this\nBody two.\n"
    pairs = lines_with_hashes(text)
    assert pairs == [(line, line_hash(normalize_line(line))) for line in text.splitlines() if normalize_line(line)]
    assert remove_lines(text, {line_hash("share this")}) == "Menu\nBody one.\nMenu\nBody two.\n"
    assert remove_lines(text, {line_hash("menu"), line_hash("share this")}) == "Body one.\nBody two.\n"
