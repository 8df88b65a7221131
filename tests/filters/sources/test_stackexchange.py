"""StackExchange HTML bodies to text, and the order of answers in a question's document."""

from __future__ import annotations

from filters.stackexchange import Answer, html_to_text, order_answers, question_text


def test_tags_go_and_entities_decode():
    assert html_to_text("<p>Use <strong>cold</strong> butter &amp; <a href='x'>flour</a>.</p>") == \
        "Use cold butter & flour."


def test_paragraphs_and_line_breaks_stay_apart():
    assert html_to_text("<p>One.</p>\n<p>Two<br>three.</p>") == "One.\n\nTwo\nthree."


def test_code_blocks_keep_their_whitespace():
    html = "<p>Try:</p><pre><code>for x in xs:\n    print(x &lt; 3)\n</code></pre><p>Done.</p>"
    assert html_to_text(html) == "Try:\n\nfor x in xs:\n    print(x < 3)\n\nDone."


def test_lists_become_bulleted_lines():
    assert html_to_text("<ul><li>Salt</li><li>Flour</li></ul>") == "- Salt\n- Flour"


def test_script_and_style_content_is_dropped():
    assert html_to_text("<p>Hi</p><script>alert(1)</script><style>p{}</style>") == "Hi"


def test_answers_sorted_by_score_then_post_id():
    answers = [Answer(5, 2, "a"), Answer(9, 10, "b"), Answer(7, 10, "c"), Answer(3, -1, "d")]
    assert [a.post_id for a in order_answers(answers)] == [7, 9, 5, 3]


def test_question_text_layout():
    text = question_text(" Freezing basil ", "<p>Can I?</p>", [Answer(2, 1, "<p>Blanch it.</p>"),
                                                            Answer(3, 4, "<p>Use oil.</p>")])
    assert text == "Freezing basil\n\nCan I?\n\nUse oil.\n\nBlanch it."
