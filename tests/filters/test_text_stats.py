import time

import numpy as np
import pytest

from filters.text_stats import WordNgrams, duplicate_counts, fraction, lines, paragraphs, words
from tests.filters.rule_samples import CHINESE, ENGLISH_PROSE


def test_words_drop_lone_punctuation_and_keep_attached_punctuation():
    text = "He was cast , in 2005 ; the role @-@ of \" Craig \" -- actor. _ __x"
    assert words(text) == ["He", "was", "cast", "in", "2005", "the", "role", "of", "Craig", "actor.", "__x"]


def test_words_split_on_any_unicode_whitespace():
    assert words("a\u00a0b\u3000c\r\nd\te") == ["a", "b", "c", "d", "e"]


def test_words_on_text_without_spaces_is_one_word_per_run():
    # The documented behaviour for Chinese: a whole clause between spaces is one "word".
    assert words(CHINESE) == [CHINESE]
    assert words("東京 大阪") == ["東京", "大阪"]


def test_words_is_linear_on_a_huge_symbol_run():
    start = time.perf_counter()
    assert words("=" * 2_000_000 + " ok") == ["ok"]
    assert time.perf_counter() - start < 2.0


def test_lines_strip_and_skip_blank_for_every_line_ending():
    assert lines("a \r\nb\rc\n\n  \n d\u2028e") == ["a", "b", "c", "d", "e"]
    assert lines("") == [] and lines(" \n\t\r\n") == []


def test_paragraphs_split_on_blank_lines_including_whitespace_only_and_crlf():
    text = "one\r\ntwo\r\n\r\nthree\n \t\nfour\n\n\n\nfive"
    assert paragraphs(text) == ["one\r\ntwo", "three", "four", "five"]
    assert paragraphs("  \n\n ") == []


def test_duplicate_counts_counts_copies_after_the_first():
    assert duplicate_counts(["ab", "cd", "ab", "ab", "e"]) == (2, 4)
    assert duplicate_counts([]) == (0, 0)


def test_fraction_of_empty_whole_is_zero():
    assert fraction(3, 0) == 0.0 and fraction(1, 4) == 0.25


def test_ngram_ids_are_equal_exactly_for_equal_ngrams():
    tokens = "a b c a b c a b d".split()
    grams = WordNgrams(tokens)
    ids3 = grams.ids(3).tolist()
    expected = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    for i in range(len(expected)):
        for j in range(len(expected)):
            assert (ids3[i] == ids3[j]) == (expected[i] == expected[j])
    assert grams.ids(10).size == 0
    with pytest.raises(ValueError):
        grams.ids(0)


def test_top_char_fraction_needs_two_occurrences():
    assert WordNgrams(["alpha", "beta", "gamma"]).top_char_fraction(2) == 0.0
    # "ab cd" occurs 3 times: 3 * 4 characters of 4 * 3 + 4 = 16 characters in all words.
    grams = WordNgrams("ab cd ab cd ab cd wxyz".split())
    assert grams.top_char_fraction(2) == pytest.approx(12 / 16)


def test_duplicate_char_fraction_counts_overlapping_words_once():
    # Two copies of the 5-gram "a b c d e" -> 10 words covered; plus 2 unique words "x", "y".
    tokens = "a b c d e x a b c d e y".split()
    assert WordNgrams(tokens).duplicate_char_fraction(5) == pytest.approx(10 / 12)
    # "a a a a a a": every 5-gram is the same and overlaps; the 6 words count once each.
    assert WordNgrams(["a"] * 6).duplicate_char_fraction(5) == pytest.approx(1.0)
    assert WordNgrams(words(ENGLISH_PROSE)).duplicate_char_fraction(5) == 0.0


def test_ngrams_of_empty_and_tiny_inputs():
    grams = WordNgrams([])
    assert grams.total_chars == 0
    assert grams.top_char_fraction(2) == 0.0 and grams.duplicate_char_fraction(5) == 0.0
    assert isinstance(WordNgrams(["one"]).ids(1), np.ndarray)
