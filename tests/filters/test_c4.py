import dataclasses
import pickle

import pytest

from filters.c4 import C4
from filters.config import ConfigError, from_dict
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE, doc

GOOD = [
    "The ferry carried grain across the river every morning.",
    "Merchants built warehouses along the eastern bank of the town.",
    "A stone bridge replaced the ferry in the middle of the century.",
]


def clean(lines: list[str], **config) -> str:
    """The text C4 leaves of a page with ``lines``; fails if the page is dropped."""
    verdict = C4(**config)(doc("\n".join(lines)))
    assert verdict.keep, verdict.reason
    return verdict.updates.get("text", "\n".join(lines))


def test_keeps_clean_prose_untouched():
    verdict = C4()(doc(ENGLISH_PROSE))
    assert verdict.keep and verdict.updates == {}


def test_clean_page_needs_no_rewrite():
    assert C4()(doc("\n".join(GOOD))) == C4()(doc(ENGLISH_PROSE))


def test_drops_lines_without_terminal_punctuation():
    assert clean(["Home | About | Contact", *GOOD, "Read more..."]) == "\n".join(GOOD)
    assert clean([*GOOD, 'He said "the bridge will stand."']).endswith('stand."')


def test_drops_lines_with_fewer_than_five_words():
    # Five is the per-line minimum in TFDS c4_utils (datatrove's default swaps it with the 3).
    assert clean([*GOOD, "Four words are here."]) == "\n".join(GOOD)
    assert clean([*GOOD, "Five words are right here."]).endswith("right here.")


def test_drops_javascript_lines():
    lines = [*GOOD, "Please enable JavaScript to view the comments."]
    assert clean(lines) == "\n".join(GOOD)


def test_drops_policy_lines():
    for phrase in ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies"):
        lines = [*GOOD, f"By using this site you agree to our {phrase.title()} today."]
        assert clean(lines) == "\n".join(GOOD)


def test_drops_lines_with_a_word_over_1000_characters():
    lines = [*GOOD, "The key was " + "x" * 1001 + " in the end."]
    assert clean(lines) == "\n".join(GOOD)


def test_removes_wikipedia_citation_marks():
    lines = ["The ferry carried grain across the river.[1]", *GOOD[1:], "The bridge is old.[citation needed]"]
    assert clean(lines) == "\n".join(["The ferry carried grain across the river.", *GOOD[1:]])


def test_lorem_ipsum_drops_the_page():
    verdict = C4()(doc("\n".join([*GOOD, "Lorem ipsum dolor sit amet, consectetur adipiscing elit."])))
    assert verdict.reason == "c4.lorem_ipsum" and verdict.updates == {}


def test_curly_bracket_drops_the_page():
    verdict = C4()(doc("\n".join([*GOOD, "The function returns {value} to the caller at once."])))
    assert verdict.reason == "c4.curly_bracket" and verdict.updates == {}


def test_markers_on_already_dropped_lines_do_not_sink_the_page():
    # As in TFDS: the CSS line has no terminal punctuation, so it is gone before the "{" check.
    assert clean([*GOOD, "body { color: red; }"]) == "\n".join(GOOD)


def test_too_few_sentences():
    verdict = C4()(doc("\n".join(GOOD[:2] + ["Menu", "Login"])))
    assert verdict.reason == "c4.too_few_sentences"
    # Two sentences on one line count as two.
    assert C4()(doc("The ferry left at dawn today. It came back at noon with grain.\n" + GOOD[0])).keep


def test_each_rule_can_be_switched_off():
    assert clean(["Home About Contact News Sports", *GOOD], terminal_punctuation=None).startswith("Home")
    assert clean([*GOOD, "Four words are here."], min_words_per_line=None).endswith("here.")
    assert clean([*GOOD, "Enable JavaScript to read the comments."], javascript=None).endswith("comments.")
    assert clean([*GOOD, "Read the privacy policy of the site."], policy_phrases=None).endswith("site.")
    lorem = "Lorem ipsum dolor sit amet, consectetur."
    assert clean([*GOOD, lorem], lorem_ipsum=None).endswith("consectetur.")
    assert clean([*GOOD, "It returns {value} to the caller."], curly_bracket=None).endswith("caller.")
    assert clean(["It has a note.[1] in the middle here.", *GOOD], citation_pattern=None).startswith("It has")
    assert clean([*GOOD, "The key " + "x" * 1001 + " is long."], max_word_length=None).endswith("is long.")
    assert C4(min_sentences=None)(doc("")).keep


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases(case):
    verdict = C4()(doc(EDGE_CASES[case]))
    if case == "crlf_prose":
        assert verdict.keep and verdict.updates == {}  # nothing removed: the CRLF text is left as is
    else:
        # Empty, blank and one word hold no sentence; Chinese and Japanese lines end in "。" and
        # are one "word" each; the 1.4 MB line is one sentence.
        assert verdict.reason == "c4.too_few_sentences"


def test_crlf_page_with_removed_lines_comes_back_with_lf():
    verdict = C4()(doc("\r\n".join(["Menu", *GOOD])))
    assert verdict.keep and verdict.updates["text"] == "\n".join(GOOD)


def test_config_validation_and_loading():
    with pytest.raises(ValueError, match="citation_pattern"):
        C4(citation_pattern="[unclosed")
    loaded = from_dict(C4, {"min_words_per_line": 3, "policy_phrases": None})
    assert loaded.min_words_per_line == 3 and loaded.policy_phrases is None
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(C4, {"min_words": 3})
    assert {f.name for f in dataclasses.fields(C4)} >= {"min_sentences", "lorem_ipsum", "curly_bracket"}


def test_pickles():
    assert pickle.loads(pickle.dumps(C4())) == C4()
