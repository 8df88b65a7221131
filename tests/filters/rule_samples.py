"""Texts shared by the rule-filter tests: clean prose, the edge cases, and real corpora readers.

Real data is read in place from ``../shared/data`` beside the checkout, never copied.
"""

from __future__ import annotations

import re
from pathlib import Path

from filters.document import Document

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
WIKITEXT = SHARED_DATA / "quality" / "positive" / "wikipedia" / "wikitext-2-raw-v1_wiki.test.raw"
GUTENBERG = SHARED_DATA / "quality" / "positive" / "gutenberg"
JAPANESE_NOVEL = GUTENBERG / "sentencepiece_wagahaiwa_nekodearu_ja.txt"

# Plain English prose, written for these tests: varied words, full sentences on lines of more
# than five words, no repetition. Every rule filter must keep it.
ENGLISH_PROSE = (
    "The river town grew up around a ferry crossing that farmers used to bring grain to market.\n"
    "By the middle of the nineteenth century a stone bridge had replaced the ferry, and the old "
    "landing became a quiet park.\n"
    "Merchants built warehouses along the eastern bank, where barges could unload coal, timber "
    "and salt without paying tolls.\n"
    "When the railway arrived in 1871, most of that trade moved inland, and several warehouses "
    "stood empty for decades.\n"
    "Local historians still argue about whether the bridge or the railway did more to shape the "
    "streets we walk today.\n"
    "A small museum near the park now keeps maps, photographs and letters that show how quickly "
    "the waterfront changed.\n"
    "Visitors often remark that the town feels older than it is, because so many buildings were "
    "made from reused stone.\n"
)

# Chinese and Japanese, written without spaces between words.
CHINESE = "今天天气很好，我们一起去公园散步。公园里有很多人在跑步和聊天。孩子们在草地上玩耍。"
JAPANESE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"

EDGE_CASES: dict[str, str] = {
    "empty": "",
    "whitespace": " \t\r\n \n\u3000\u00a0 ",
    "one_word": "Hello",
    "chinese": CHINESE,
    "japanese": JAPANESE,
    "crlf_prose": ENGLISH_PROSE.replace("\n", "\r\n"),
    "long_single_line": " ".join(f"token{i}" for i in range(200_000)) + ".",
}
"""Inputs every filter must survive without raising; each test module states what it decides."""

_ARTICLE_TITLE = re.compile(r"^ = [^=].* = $")


def doc(text: str, url: str = "") -> Document:
    return Document(id="test", text=text, url=url)


def wikitext_articles(path: Path = WIKITEXT) -> list[str]:
    """WikiText-2 raw split into its articles (CRLF line endings, as the file has them).

    Article titles are lines `` = Title = `` with one ``=``. Two formula lines of the "Constant k
    filter" article look the same (`` = 1 rad / s and a nominal impedance k = ``); they are told
    apart by the next line, which starts with a digit there and never after a real title.
    """
    # read_bytes: read_text would turn the CRLF line endings into "\n" behind our back.
    raw_lines = path.read_bytes().decode("utf-8").split("\r\n")
    articles: list[list[str]] = []
    for i, line in enumerate(raw_lines):
        following = raw_lines[i + 1].lstrip() if i + 1 < len(raw_lines) else ""
        if _ARTICLE_TITLE.match(line) and not following[:1].isdigit():
            articles.append([])
        if articles:
            articles[-1].append(line)
    return ["\r\n".join(lines) for lines in articles]
