import dataclasses
import pickle

import pytest

from filters.config import ConfigError, from_dict
from filters.gopher_quality import GopherQuality
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE, doc

# 60 words of ordinary length holding several stop words: passes every rule.
BASE = (
    "the river town grew up around a ferry crossing that farmers used to bring grain and fruit "
    "to market with carts of wood before the stone bridge replaced it while merchants built "
    "warehouses along eastern banks where barges could unload coal timber salt wool cloth iron "
    "copper glass paper spices leather candles barrels ropes sails nails tools maps ships harbors"
)


def reason(text: str, **config) -> str:
    verdict = GopherQuality(**config)(doc(text))
    assert verdict.updates == {}
    return verdict.reason


def test_base_text_passes():
    assert len(BASE.split()) == 60
    assert reason(BASE) == ""


def test_keeps_clean_prose():
    assert GopherQuality()(doc(ENGLISH_PROSE)).keep


def test_too_few_words():
    assert reason("The ferry crossed the river at dawn.") == "gopher_quality.too_few_words"


def test_too_many_words():
    assert reason("the cat and dog " * 25_001) == "gopher_quality.too_many_words"


def test_lone_punctuation_is_not_a_word():
    # 49 words spaced out with punctuation (as WikiText writes them) are still 49 words.
    text = " , ".join(BASE.split()[:49])
    assert reason(text) == "gopher_quality.too_few_words"


def test_mean_word_length_too_short():
    assert reason("to be of an at it " * 12) == "gopher_quality.mean_word_length_too_short"


def test_mean_word_length_too_long():
    long_words = "the and internationalization characteristically counterproductive " * 12
    assert reason(long_words) == "gopher_quality.mean_word_length_too_long"


def test_too_many_hashes():
    # 7 hash signs over 60 words: 0.117 > 0.1.
    text = BASE + " #tag #news #river #town #bridge #coal #salt"
    assert reason(text) == "gopher_quality.too_many_hashes"


def test_too_many_ellipses():
    # Both the three-dot form and the single character count: 7 over ~67 words.
    text = BASE + " more... then... and… so… but… yet… also…"
    assert reason(text) == "gopher_quality.too_many_ellipses"


def test_too_many_bullet_lines():
    items = BASE.split()
    text = "\n".join(f"• {' '.join(items[i : i + 6])}" for i in range(0, 60, 6))
    assert reason(text) == "gopher_quality.too_many_bullet_lines"
    assert reason(text.replace("• ", "- ")) == "gopher_quality.too_many_bullet_lines"


def test_too_many_ellipsis_lines():
    # 4 of 10 lines end in an ellipsis (0.4 > 0.3), while 4 ellipses over 60 words stay under 0.1.
    items = BASE.split()
    rows = [" ".join(items[i : i + 6]) for i in range(0, 60, 6)]
    text = "\n".join(row + ("..." if i < 4 else ".") for i, row in enumerate(rows))
    assert reason(text) == "gopher_quality.too_many_ellipsis_lines"


def test_too_few_alphabetic_words():
    numbers = " ".join(str(1000 + i) for i in range(20))
    assert reason(BASE + " " + numbers) == "gopher_quality.too_few_alphabetic_words"


def test_too_few_stop_words():
    no_stop_words = " ".join(w for w in BASE.split() if w not in GopherQuality().stop_words)
    assert reason(no_stop_words + " river town ferry") == "gopher_quality.too_few_stop_words"


def test_stop_words_are_distinct_case_folded_and_stripped_of_punctuation():
    no_stop_words = [w for w in BASE.split() if w not in GopherQuality().stop_words]
    one_repeated = " ".join(no_stop_words + ["the"] * 5)
    assert reason(one_repeated) == "gopher_quality.too_few_stop_words"
    assert reason(" ".join(no_stop_words + ["The,", "(and)"])) == ""


def test_each_rule_can_be_switched_off():
    off = {f.name: None for f in dataclasses.fields(GopherQuality) if f.name not in ("stop_words", "bullets")}
    assert GopherQuality(**off)(doc("")).keep
    assert reason("The ferry crossed to the river at dawn.", min_words=None) == ""


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases(case):
    verdict = GopherQuality()(doc(EDGE_CASES[case]))
    if case == "crlf_prose":
        assert verdict.keep
    elif case == "long_single_line":
        assert verdict.reason == "gopher_quality.too_many_words"  # 200,001 words
    else:
        # Empty, blank, one word, and Chinese/Japanese (a sentence run is one "word").
        assert verdict.reason == "gopher_quality.too_few_words"


def test_config_validation_and_loading():
    with pytest.raises(ValueError, match="min_words"):
        GopherQuality(min_words=200_000)
    loaded = from_dict(GopherQuality, {"min_stop_words": None, "stop_words": ["der", "die", "und"]})
    assert loaded.min_stop_words is None and loaded.stop_words == ("der", "die", "und")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(GopherQuality, {"min_doc_words": 50})


def test_pickles():
    assert pickle.loads(pickle.dumps(GopherQuality())) == GopherQuality()
