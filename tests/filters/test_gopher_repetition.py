import dataclasses
import pickle
import random
from collections import Counter

import pytest

from filters.config import ConfigError, from_dict
from filters.gopher_repetition import GopherRepetition
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE, doc


def unique_words(tag: str, count: int, width: int = 6) -> list[str]:
    """``count`` distinct words of exactly ``width`` characters, none shared across tags."""
    return [f"{tag}{i:0{width - len(tag)}d}" for i in range(count)]


def reason(text: str, **config) -> str:
    verdict = GopherRepetition(**config)(doc(text))
    assert verdict.updates == {}
    return verdict.reason


def test_keeps_clean_prose():
    assert GopherRepetition()(doc(ENGLISH_PROSE)).keep


def test_duplicate_lines_by_count():
    # 5 unique long lines + 4 copies of "ok": 3 repeats of 9 lines = 0.33 > 0.30, but only
    # 6 repeated characters, far under the 0.20 character share.
    text = "\n".join([" ".join(unique_words(f"l{i}", 10)) for i in range(5)] + ["ok"] * 4)
    assert reason(text) == "gopher_repetition.too_many_duplicate_lines"


def test_duplicate_line_characters():
    # One long line shown twice among 5 short unique ones: 1 repeat of 7 lines (0.14), but the
    # repeat holds 69 of ~200 characters (> 0.20).
    long_line = " ".join(unique_words("big", 10))
    text = "\n".join([long_line, *unique_words("s", 5), long_line])
    assert reason(text) == "gopher_repetition.too_many_duplicate_line_chars"


def test_duplicate_paragraphs_by_count():
    # Paragraphs: one of 10 unique lines, then "x" twice -> 1 repeat of 3 paragraphs (0.33).
    # Lines: 1 repeat of 12 (0.08); characters: 1 of ~700.
    block = "\n".join(" ".join(unique_words(f"p{i}", 10)) for i in range(10))
    text = "\n\n".join([block, "x", "x"])
    assert reason(text) == "gopher_repetition.too_many_duplicate_paragraphs"


def test_duplicate_paragraph_characters():
    # A repeated paragraph repeats its lines too, so with the defaults a line rule fires first;
    # switched off, the paragraph-character rule is seen on its own. 1 repeat of 5 paragraphs
    # (0.20, not above 0.30), but the repeat holds ~40% of the characters.
    repeated = " ".join(unique_words("rep", 12))
    text = "\n\n".join([repeated, *unique_words("u", 3, width=20), repeated])
    no_line_rules = {"max_duplicate_line_fraction": None, "max_duplicate_line_char_fraction": None}
    assert reason(text, **no_line_rules) == "gopher_repetition.too_many_duplicate_paragraph_chars"
    assert reason(text) == "gopher_repetition.too_many_duplicate_line_chars"


def test_top_2gram():
    # "a b" after every unique 3-letter word: 2 of every 5 characters (0.40 > 0.20); all
    # 3-grams are unique because each holds a different filler.
    fillers = unique_words("f", 30, width=3)
    text = " ".join(f"a b {f}" for f in fillers)
    assert reason(text) == "gopher_repetition.top_2gram_too_frequent"


def test_top_3gram():
    # Unit "xa ya za <20-char filler>": top 2-gram 4/26 = 0.15 (<= 0.20), top 3-gram 6/26 = 0.23.
    text = " ".join(f"xa ya za {f}" for f in unique_words("f", 30, width=20))
    assert reason(text) == "gopher_repetition.top_3gram_too_frequent"


def test_top_4gram():
    # Unit "wa xa ya za <30-char filler>": 2-gram 4/38, 3-gram 6/38 = 0.16 (<= 0.18), 4-gram 8/38.
    text = " ".join(f"wa xa ya za {f}" for f in unique_words("f", 30, width=30))
    assert reason(text) == "gopher_repetition.top_4gram_too_frequent"


# For an n-gram shown twice among ``fillers`` unique words (all 6 characters), its share is
# 2n / (2n + fillers): these counts put it between Table A1's thresholds for n and for n - 1.
FILLERS_FOR_N = {5: 45, 6: 70, 7: 90, 8: 110, 9: 140, 10: 170}


@pytest.mark.parametrize("n", sorted(FILLERS_FOR_N))
def test_duplicate_ngram_characters(n):
    fillers = unique_words("f", FILLERS_FOR_N[n])
    repeated = unique_words("r", n)
    third = len(fillers) // 3
    tokens = fillers[:third] + repeated + fillers[third : 2 * third] + repeated + fillers[2 * third :]
    assert reason(" ".join(tokens)) == f"gopher_repetition.too_many_duplicate_{n}gram_chars"


def test_each_rule_can_be_switched_off():
    text = " ".join(f"a b {f}" for f in unique_words("f", 30, width=3))
    assert GopherRepetition(max_top_2gram_char_fraction=None)(doc(text)).keep
    everything_off = {f.name: None for f in dataclasses.fields(GopherRepetition)}
    assert GopherRepetition(**everything_off)(doc("spam\n" * 100)).keep


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_have_no_repetition(case):
    # Empty, blank, one word, CJK (one "word" per run: nothing to repeat), CRLF prose and a
    # 1.4 MB line of distinct words all carry no repetition.
    assert GopherRepetition()(doc(EDGE_CASES[case])).keep


def test_long_repetitive_single_line_is_dropped():
    assert reason("buy cheap pills now " * 50_000) == "gopher_repetition.top_2gram_too_frequent"


def test_crlf_and_lf_give_the_same_verdict():
    text = "\n".join(["same line here"] * 4 + ["other words in a line"] * 6)
    assert reason(text) == reason(text.replace("\n", "\r\n")) == "gopher_repetition.too_many_duplicate_lines"


def test_config_validation_and_loading():
    with pytest.raises(ValueError, match="max_duplicate_line_fraction"):
        GopherRepetition(max_duplicate_line_fraction=1.5)
    loaded = from_dict(GopherRepetition, {"max_top_2gram_char_fraction": None})
    assert loaded.max_top_2gram_char_fraction is None and loaded.max_top_3gram_char_fraction == 0.18
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(GopherRepetition, {"max_dup_line_frac": 0.3})


def test_pickles():
    assert pickle.loads(pickle.dumps(GopherRepetition())) == GopherRepetition()


def reference_ngram_reason(tokens: list[str], flt: GopherRepetition) -> str:
    """The n-gram rules computed the slow, obvious way with tuples, every size, no shortcuts."""
    total = sum(map(len, tokens))
    grams = {n: [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)] for n in range(2, 11)}
    for n in (2, 3, 4):
        counts = Counter(grams[n])
        if counts:
            times = max(counts.values())
            longest = max(sum(map(len, gram)) for gram, c in counts.items() if c == times)
            share = times * longest / total if times > 1 else 0.0
            if share > getattr(flt, f"max_top_{n}gram_char_fraction"):
                return f"gopher_repetition.top_{n}gram_too_frequent"
    for n in range(5, 11):
        counts = Counter(grams[n])
        covered = set()
        for i, gram in enumerate(grams[n]):
            if counts[gram] > 1:
                covered.update(range(i, i + n))
        share = sum(len(tokens[i]) for i in covered) / total if total else 0.0
        if share > getattr(flt, f"max_duplicate_{n}gram_char_fraction"):
            return f"gopher_repetition.too_many_duplicate_{n}gram_chars"
    return ""


def test_ngram_rules_match_a_plain_python_reference():
    rng = random.Random(7)
    vocabulary = [f"w{i}" * rng.randint(1, 4) for i in range(40)]
    block_rules_off = {
        f"max_duplicate_{kind}{chars}_fraction": None for kind in ("line", "paragraph") for chars in ("", "_char")
    }
    flt = GopherRepetition(**block_rules_off)
    reasons = Counter()
    for _ in range(300):
        tokens = [rng.choice(vocabulary) for _ in range(rng.randint(0, 120))]
        for _ in range(rng.randint(0, 3)):  # paste a few copies of a random span
            if len(tokens) > 12:
                start, size = rng.randrange(len(tokens) - 12), rng.randint(5, 12)
                at = rng.randrange(len(tokens))
                tokens[at:at] = tokens[start : start + size]
        expected = reference_ngram_reason(tokens, flt)
        assert flt(doc(" ".join(tokens))).reason == expected, tokens
        reasons[expected] += 1
    assert len(reasons) >= 4  # the random texts reach several different rules, and clean pages
