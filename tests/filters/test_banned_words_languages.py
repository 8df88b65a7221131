"""Banned words per document language: the shipped LDNOOBW lists, chosen by the LID stage's ``lang``."""

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from filters.banned_words import (
    DEFAULT_LISTS,
    LDNOOBW_LISTS,
    REASON,
    BannedWords,
    list_language,
    parse_word_list,
    shipped_text,
)
from filters.config import ConfigError, from_dict
from filters.document import Document

REPO = Path(__file__).resolve().parents[2]


def verdict(text: str, lang: str, **config) -> str:
    result = BannedWords(**config)(Document(id="t", text=text, lang=lang))
    return "keep" if result.keep else result.reason


def test_each_language_is_checked_with_its_own_list():
    german = "Was für ein Arschloch, sagte er."
    assert verdict(german, "de", lists=["de"]) == REASON
    assert verdict(german, "en", lists=["de"]) == "keep"  # an English page is not checked with German words
    assert verdict(german, "de", lists=["en"]) == "keep"  # nor a German page with English ones
    assert verdict("Watch free porn here.", "de") == "keep"  # no German list by default: nothing to check


def test_c4_exactly_is_the_ldnoobw_english_list():
    news = "The court heard evidence of sexual abuse over several years."
    assert verdict(news, "en", lists=["en"]) == REASON  # C4: any listed word drops the page
    assert verdict(news, "en") == "keep"  # refinery's default English list is not triggered by reporting
    assert verdict("what the fuck", "en") == REASON
    assert DEFAULT_LISTS == BannedWords().lists


def test_lid_labels_of_both_models_map_to_list_languages():
    assert [list_language(t) for t in ("en", "eng_Latn", "EN-gb", "zh-Hans", "cmn_Hani", "nn", "tl", "deu_Latn")] == [
        "en", "en", "en", "zh", "zh", "no", "fil", "de"]
    assert verdict("Was für ein Arschloch.", "deu_Latn", lists=["de"]) == REASON  # GlotLID's label


def test_a_regional_list_applies_to_its_language_only_when_chosen():
    quebec = "Il a crié tabarnak en sortant."
    assert verdict(quebec, "fr", lists=["fr"]) == "keep"
    assert verdict(quebec, "fr", lists=["fr", "fr-CA-u-sd-caqc"]) == REASON


def test_documents_without_a_language_use_the_default_language():
    assert verdict("free porn", "") == REASON  # no langid stage: C4's setup, English
    assert verdict("free porn", "", default_language="") == "keep"
    assert verdict("Was für ein Arschloch.", "", lists=["de"], default_language="de") == REASON


def test_chinese_entries_match_inside_a_sentence_but_one_character_entries_are_ignored():
    assert verdict("这个网站有很多乳房的图片", "zh") == REASON  # 乳房: no spaces, so a substring
    gender = "职位名称 单位名称 学历要求 性别 更新日期"  # 性 (sex) is in 性别 (gender): a job board
    assert verdict(gender, "zh") == "keep"
    assert verdict(gender, "zh", min_substring_chars=1) == REASON  # what every entry would do
    assert verdict("这个网站有很多乳房的图片", "zh", substring_languages=[]) == "keep"  # as words: no boundary


def test_ascii_entries_of_a_cjk_list_stay_words():
    assert verdict("SMSで連絡してください", "ja", lists=["ja"]) == "keep"  # "sm" is listed, "sms" is not it
    assert verdict("これは SM の話です", "ja", lists=["ja"]) == REASON
    assert verdict("それはファンタジーの小説です", "ja", lists=["ja"]) == REASON  # why ja is not on by default
    assert verdict("それはファンタジーの小説です", "ja") == "keep"


def test_thai_and_korean_match_as_substrings():
    assert verdict("เขาพูดว่ากระหรี่เสมอ", "th", lists=["th"]) == REASON
    assert verdict("그는 씨발이라고 말했다", "ko", lists=["ko"]) == REASON  # particle attached: 씨발이라고


def test_combining_marks_are_part_of_words(tmp_path):
    # Python's \w leaves out Devanagari vowel signs: "चूत" would then match at the start of "चूतिया".
    words = tmp_path / "hi.txt"
    words.write_text("चूत\n", encoding="utf-8")
    flt = BannedWords(words_file=str(words))
    assert flt.first_match("यह चूतिया है") is None
    assert flt.first_match("यह चूत है।") == "चूत"


def test_words_file_replaces_the_lists_for_every_language(tmp_path):
    words = tmp_path / "list.txt"
    words.write_text("bridge\n", encoding="utf-8")
    assert verdict("the old bridge", "de", words_file=str(words)) == REASON
    assert verdict("free porn", "en", words_file=str(words)) == "keep"


def test_config_mistakes_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"lists: no shipped list 'xx' \(shipped: all, ar, "):
        from_dict(BannedWords, {"lists": ["xx"]})
    with pytest.raises(ConfigError, match="expected a list"):
        from_dict(BannedWords, {"lists": "en"})
    with pytest.raises(ConfigError, match="min_substring_chars must be >= 1"):
        from_dict(BannedWords, {"min_substring_chars": 0})
    assert BannedWords(lists=["all"]).lists == LDNOOBW_LISTS


def test_every_shipped_list_is_there_with_its_licence_and_in_the_package_data():
    folder = resources.files("filters").joinpath("resources", "ldnoobw")
    names = {p.name for p in folder.iterdir()} - {"__pycache__"}
    assert names == set(LDNOOBW_LISTS) | {"LICENSE", "SOURCE.md"}
    assert "Attribution 4.0 International" in folder.joinpath("LICENSE").read_text(encoding="utf-8")
    assert "Shutterstock" in folder.joinpath("SOURCE.md").read_text(encoding="utf-8")
    for tag in LDNOOBW_LISTS:
        assert parse_word_list(shipped_text(tag)), tag
    assert len(parse_word_list(shipped_text("en"))) == 403  # C4's list, unabridged
    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["filters"]
    for name in names:
        assert any(fnmatch.fnmatch(f"resources/ldnoobw/{name}", g) and "/" not in g.removeprefix("resources/ldnoobw/")
                   for g in globs), name
