"""StackExchange posts: HTML bodies to text, and a question with its answers as one document.

Touvron et al. 2023, section 2.1: "We kept the data from the 28 largest websites, removed the
HTML tags from text and sorted the answers by score (from highest to lowest)." Post bodies in
the dumps are HTML (``<p>``, ``<pre><code>``, ``<a>``, lists, blockquotes). Tags are removed,
their text is kept, and block elements become line breaks so paragraphs and code lines stay
apart; code keeps its whitespace. Images carry no text and vanish (their alt text is usually a
file name).

The document reads: the title, the question, then each answer, highest score first (ties: the
older answer, i.e. the lower post id, first), separated by blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset({
    "p", "div", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table",
    "tr", "hr", "dl", "dt", "dd",
})
_DROP_CONTENT_TAGS = frozenset({"script", "style"})
_MANY_NEWLINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._pre = 0
        self._dropped = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _DROP_CONTENT_TAGS:
            self._dropped += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n" if tag in ("p", "pre", "blockquote", "ul", "ol") else "\n")
            if tag == "pre":
                self._pre += 1
            if tag == "li":
                self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_CONTENT_TAGS:
            self._dropped = max(0, self._dropped - 1)
        elif tag in _BLOCK_TAGS and tag != "li":  # the next item's start breaks the line
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self.parts.append("\n\n" if tag in ("p", "pre", "blockquote", "ul", "ol") else "\n")

    def handle_data(self, data: str) -> None:
        if self._dropped:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The text of a post body: tags removed, entities decoded, blocks on their own lines."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line if line.startswith((" ", "\t")) else line.strip() for line in text.split("\n")]
    text = _TRAILING_SPACE.sub("\n", "\n".join(lines))
    return _MANY_NEWLINES.sub("\n\n", text).strip("\n").strip()


@dataclass(frozen=True, slots=True)
class Answer:
    post_id: int
    score: int
    body: str  # HTML, as in the dump


def order_answers(answers: Iterable[Answer]) -> list[Answer]:
    """Highest score first; equal scores in posting order (lower id first), so output is stable."""
    return sorted(answers, key=lambda a: (-a.score, a.post_id))


def question_text(title: str, question_html: str, answers: Iterable[Answer]) -> str:
    """One document: title, question, then the answers by score (see the module docstring)."""
    parts = [title.strip(), html_to_text(question_html)]
    parts.extend(html_to_text(a.body) for a in order_answers(answers))
    return "\n\n".join(p for p in parts if p)
