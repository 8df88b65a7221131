"""ReadStackExchange on a fixture Posts.xml: grouping answers with questions, and the accounting."""

from __future__ import annotations

import bz2

from pipeline.sources.stackexchange import (
    StackExchangeOptions,
    iso_timestamp,
    read_stackexchange,
    site_name,
)
from tests.pipeline.sources.harness import FIXTURES, run_reader

POSTS = FIXTURES / "stackexchange" / "cooking.stackexchange.com" / "Posts.xml"


def test_questions_carry_their_answers_by_score(tmp_path):
    output = run_reader(read_stackexchange(StackExchangeOptions(language="en")), [str(POSTS)], tmp_path)
    output.check_accounting()
    # Questions 1, 5, 8; a tag wiki; a row without Id; the answers of missing question 99.
    assert output.records() == 6
    assert output.skipped() == {"stackexchange.not_question": 1, "stackexchange.bad_row": 1,
                                "stackexchange.orphan_answers": 1}
    assert output.drop_reasons() == {"stackexchange:cooking.stackexchange.com:8": "stackexchange.empty"}
    sourdough = output.by_id()["stackexchange:cooking.stackexchange.com:1"]
    paragraphs = sourdough.text.split("\n\n")
    assert paragraphs[0] == "Resting time for sourdough bread"
    assert paragraphs[1] == "How long should I rest a loaf of sourdough before slicing it?"
    # Answers 3 and 4 both score 10 (3 was posted first), then answer 2 with 2.
    assert sourdough.text.index("at least an hour") < sourdough.text.index("core temperature") \
        < sourdough.text.index("ten minutes & it")
    assert "if core_temp < 35:\n    slice()" in sourdough.text and "<p>" not in sourdough.text
    assert sourdough.url == "https://cooking.stackexchange.com/questions/1"
    assert (sourdough.timestamp, sourdough.lang, sourdough.meta["answers"]) == ("2010-07-09T19:09:26Z", "en", "3")


def test_min_answers_and_compressed_dumps(tmp_path):
    site = tmp_path / "cooking.stackexchange.com"
    site.mkdir()
    packed = site / "Posts.xml.bz2"
    packed.write_bytes(bz2.compress(POSTS.read_bytes()))
    options = StackExchangeOptions(language="en", min_answers=1)
    output = run_reader(read_stackexchange(options), [str(packed)], tmp_path / "out")
    output.check_accounting()
    assert sorted(output.by_id()) == ["stackexchange:cooking.stackexchange.com:1"]
    assert output.drop_reasons()["stackexchange:cooking.stackexchange.com:5"] == "stackexchange.too_few_answers"


def test_site_names_and_timestamps():
    assert site_name("/dumps/cooking.stackexchange.com/Posts.xml") == "cooking.stackexchange.com"
    assert site_name("/dumps/math-Posts.xml.bz2") == "math"
    assert iso_timestamp("2010-07-09T19:09:26.430") == "2010-07-09T19:09:26Z"
    assert iso_timestamp("") == ""
