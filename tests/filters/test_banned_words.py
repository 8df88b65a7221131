import pickle
import re
from importlib import resources

import pytest

from filters.banned_words import (
    _WORD_CHARS,
    _WORD_RUN,
    BannedList,
    BannedWords,
    _word_runs,
    banned_list,
    parse_word_list,
)
from filters.config import ConfigError, from_dict
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE, doc


def test_keeps_clean_prose():
    verdict = BannedWords()(doc(ENGLISH_PROSE))
    assert verdict.keep and verdict.updates == {}


def test_contains_banned_word_case_insensitive_with_punctuation_around():
    for text in ("Watch free PORN here.", "(porn)", "porn", "best-porn-site"):
        verdict = BannedWords()(doc(text))
        assert verdict.reason == "banned_words.contains_banned_word", text
        assert verdict.updates == {}


def test_matches_whole_words_only():
    # Listed words inside longer words are fine: "pornography" is not "porn", nor "Scunthorpe".
    assert BannedWords()(doc("A history of pornography laws in Scunthorpe.")).keep


def test_phrases_match_across_any_whitespace(tmp_path):
    words_file = tmp_path / "list.txt"
    words_file.write_text("# a comment\n\nlive  sex\nbad\n", encoding="utf-8")
    flt = BannedWords(words_file=str(words_file))
    assert flt.first_match("Watch LIVE\r\n sex now") == "live\r\n sex"
    assert flt.first_match("we live sexless lives") is None
    assert flt.first_match("not BAD at all") == "bad"
    assert flt.first_match("badly done") is None


def test_entries_with_punctuation(tmp_path):
    words_file = tmp_path / "list.txt"
    words_file.write_text("a$$hole\ns.o.b\n", encoding="utf-8")
    flt = BannedWords(words_file=str(words_file))
    assert flt.first_match("what an A$$hole!") == "a$$hole"
    assert flt.first_match("s.o.b.") == "s.o.b"
    assert flt.first_match("as.o.b") is None


def test_empty_list_keeps_everything(tmp_path):
    words_file = tmp_path / "empty.txt"
    words_file.write_text("# nothing listed\n", encoding="utf-8")
    assert BannedWords(words_file=str(words_file))(doc("porn")).keep


def test_default_list_is_shipped_and_parsed():
    shipped = resources.files("filters").joinpath("resources", "banned_words_en.txt")
    entries = parse_word_list(shipped.read_text(encoding="utf-8"))
    assert 30 <= len(entries) <= 200
    assert all(e == e.lower() and not e.startswith("#") for e in entries)


def test_missing_or_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        BannedWords(words_file=str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="words_file"):
        from_dict(BannedWords, {"words_file": str(tmp_path / "missing.txt")})
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read"):
        BannedWords(words_file=str(binary))(doc("text"))


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases(case):
    assert BannedWords()(doc(EDGE_CASES[case])).keep


def test_pickle_holds_the_path_not_the_list(tmp_path):
    flt = BannedWords(lists=["all"])
    flt(doc("warm the cache"))
    assert len(pickle.dumps(flt)) < 400  # 28 list names, not their 3,000 entries
    words_file = tmp_path / "list.txt"
    words_file.write_text("bad\n", encoding="utf-8")
    custom = BannedWords(words_file=str(words_file))
    clone = pickle.loads(pickle.dumps(custom))
    assert clone == custom and not clone(doc("bad")).keep


def test_list_is_loaded_once_per_path(tmp_path):
    words_file = tmp_path / "list.txt"
    words_file.write_text("bad\n", encoding="utf-8")
    assert banned_list(str(words_file)) is banned_list(str(words_file))


# Texts that exercise the word-run shortcut: combining marks that are not \w (Devanagari and Thai
# vowel signs, an accent typed as a mark), the zero-width joiners, astral marks and variation
# selectors, emoji (astral, not marks), "İ" (lowercases to i + a combining dot) and plain ASCII.
WORD_RUN_TEXTS = (
    "plain ascii, with porn. and (free porn)!",
    "Curly ’quotes’ and café but no marks — porn",
    "हिन्दी में पोर्न शब्द",
    "ภาษาไทย สวัสดี porn",
    "cafe\u0301 porn",
    "zero\u200dwidth\u200cjoiners porn",
    "musical \U0001d165 mark and \U000e0100 selector porn",
    "emoji 😀 porn 👍🏽 free porn",
    "İstanbul FREE PORN",
    "",
)


@pytest.mark.parametrize("text", WORD_RUN_TEXTS)
def test_word_runs_shortcut_equals_the_full_word_class(text):
    lowered = text.lower()
    assert _word_runs(lowered) == _WORD_RUN.findall(lowered)


@pytest.mark.parametrize("text", WORD_RUN_TEXTS)
def test_phrase_pattern_equals_a_leading_lookbehind(text):
    # The reference is the definition: an entry not preceded and not followed by a word character.
    listed = BannedList.build(["free porn", "porn", "a$$", "हिन्दी में", "selector porn", "zero"])
    others = ["free porn", "a$$", "हिन्दी में", "selector porn"]  # single words are a set lookup instead
    assert listed.words == {"porn", "zero"}
    alternatives = "|".join(r"\s+".join(map(re.escape, e.split())) for e in sorted(others, key=len, reverse=True))
    reference = re.compile(rf"(?<![{_WORD_CHARS}])(?:{alternatives})(?![{_WORD_CHARS}])")
    for probe in (text, f"x{text}", f"\u0301{text}", f"a$$ {text} a$$", f"sa$$ {text}"):
        lowered = probe.lower()
        found = [(m.span(), m.group(0)) for m in listed.pattern.finditer(lowered)]
        assert found == [(m.span(), m.group(0)) for m in reference.finditer(lowered)], probe
