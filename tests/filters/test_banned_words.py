import pickle
from importlib import resources

import pytest

from filters.banned_words import BannedWords, banned_list, parse_word_list
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
