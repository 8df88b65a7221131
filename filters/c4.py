"""C4's page cleaning: keep only the lines that read like sentences, drop pages that are code.

Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
Transformer", section 2.2, as TensorFlow Datasets' ``c4_utils.clean_page`` implements it. That
code, not the paper's prose, fixes the details followed here:

* per line, in this order: strip it; drop it if a word is longer than 1,000 characters; remove
  Wikipedia citation marks (``[1]``, ``[edit]``, ``[citation needed]``); drop it unless it ends
  in ``. ? ! "`` (and not in ``...``); drop it if it has fewer than 5 words;
* then, on the lines still standing: "lorem ipsum" drops the whole page; "javascript" drops the
  line; a ``{`` drops the whole page; a policy phrase ("terms of use", "cookie policy", ...)
  drops the line;
* the page is dropped if the surviving lines hold fewer than 3 sentences.

So "lorem ipsum" or ``{`` on a line that was already dropped (a CSS rule without a full stop,
say) does not sink the page; that is what the released C4 did. datatrove's C4 filter defaults
swap the 5-words-per-line and 3-sentences-per-page minimums; here they are as TFDS has them.

TFDS counts sentences with nltk's punkt tokenizer; we count runs of ``. ! ?`` followed by a space
or the line end (at least one per surviving line). That over-counts abbreviations ("Mr. Smith")
and so can only keep a borderline page that punkt would drop, never the reverse.

Convention: a rule is switched off by setting its field to ``None``. The filter rewrites the text:
when it removed or changed any line, the verdict carries ``text`` with the cleaned lines joined by
``\\n``. Words are :func:`filters.text_stats.words` (TFDS used ``str.split()``, which also counts
a lone ``-`` as a word). Lines of Chinese or Japanese end in ``。`` and hold one "word", so C4
removes them all: C4 was built for English only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from filters.document import Document
from filters.text_stats import words
from filters.verdict import Verdict

# A sentence end: terminal marks followed by optional closing quotes/brackets, then space or end.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


@dataclass(frozen=True)
class C4:
    """Removes non-sentence lines, and drops the page when it looks like code or too little is left."""

    name: ClassVar[str] = "c4"

    # All defaults: TFDS c4_utils (the C4 release of Raffel et al. 2020, section 2.2).
    max_word_length: int | None = 1000
    citation_pattern: str | None = r"\[\d*\]|\[edit\]|\[citation needed\]"
    terminal_punctuation: tuple[str, ...] | None = (".", "?", "!", '"')
    min_words_per_line: int | None = 5
    # Page-level marker: placeholder text that was never filled in.
    lorem_ipsum: str | None = "lorem ipsum"
    # Line-level marker: "please enable javascript" notices.
    javascript: str | None = "javascript"
    # Page-level marker: a curly bracket suggests code that extraction failed to strip.
    curly_bracket: str | None = "{"
    policy_phrases: tuple[str, ...] | None = (
        "terms of use",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
    )
    min_sentences: int | None = 3

    def __post_init__(self) -> None:
        for field_name in ("max_word_length", "min_words_per_line", "min_sentences"):
            value = getattr(self, field_name)
            if value is not None and value < 0:
                raise ValueError(f"{self.name}.{field_name} must be >= 0 or null, got {value}")
        if self.citation_pattern is not None:
            try:
                re.compile(self.citation_pattern)
            except re.error as exc:
                raise ValueError(f"{self.name}.citation_pattern is not a valid regex: {exc}") from None

    def __call__(self, doc: Document) -> Verdict:
        citations = re.compile(self.citation_pattern) if self.citation_pattern is not None else None
        lorem = self.lorem_ipsum.lower() if self.lorem_ipsum is not None else None
        javascript = self.javascript.lower() if self.javascript is not None else None
        policies = tuple(p.lower() for p in self.policy_phrases) if self.policy_phrases is not None else None
        kept: list[str] = []
        sentences = 0
        changed = False
        for raw in doc.text.splitlines():
            line = raw.strip()
            if not line:
                continue  # blank lines carry no text; dropping them is not a change worth reporting
            if (
                self.max_word_length is not None
                and len(line) > self.max_word_length  # only a long line can hold a long word
                and max(map(len, line.split())) > self.max_word_length
            ):
                changed = True
                continue
            if citations is not None:
                cited = citations.sub("", line)
                if cited != line:
                    changed = True
                    line = cited.strip()
            if self.terminal_punctuation is not None and (
                not line.endswith(self.terminal_punctuation) or line.endswith("...")
            ):
                changed = True
                continue
            if self.min_words_per_line is not None and len(words(line)) < self.min_words_per_line:
                changed = True
                continue
            lowered = line.lower()
            if lorem is not None and lorem in lowered:
                return Verdict.drop(f"{self.name}.lorem_ipsum")
            if javascript is not None and javascript in lowered:
                changed = True
                continue
            if self.curly_bracket is not None and self.curly_bracket in line:
                return Verdict.drop(f"{self.name}.curly_bracket")
            if policies is not None and any(p in lowered for p in policies):
                changed = True
                continue
            sentences += max(1, len(_SENTENCE_END.findall(line)))
            kept.append(line)
        if self.min_sentences is not None and sentences < self.min_sentences:
            return Verdict.drop(f"{self.name}.too_few_sentences")
        return Verdict.keep_with(text="\n".join(kept)) if changed else Verdict.KEEP
