"""ReadStackExchange: a site's ``Posts.xml`` dump -> one Document per question with its answers.

The dump lists questions and answers as ``<row>`` elements in id order, an answer pointing at
its question through ``ParentId``; a question's answers can be anywhere after it. Holding a
site's questions in a dict until their answers arrive would put the whole site in one worker's
memory, so the rows are keyed by (file, question id) and grouped with a GroupByKey: one worker
then holds one question and its answers at a time. The text is built by
:func:`filters.stackexchange.question_text` (HTML removed, answers by score, highest first).

Accounting: a question is a record; its answers are parts of that record, not records of their
own. Rows that are neither (tag wikis, moderator nominations) are records skipped as
``stackexchange.not_question``. Answers whose question is not in the file are one record per
missing question, skipped as ``stackexchange.orphan_answers``; that count is known only after
the grouping, so it is emitted there. The dump does not say the site's language: it is
``options.language``. Ids are ``stackexchange:<site>:<question id>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, iterparse

import apache_beam as beam

from filters.document import Document
from filters.stackexchange import Answer, question_text
from pipeline.funnel import COUNTS, ERRORS, RECORDS, count_key
from pipeline.sources.source_reader import PARTS, Part, Skip, SourceReader, open_decompressed
from pipeline.stage import DROPPED, KEPT, Dropped

STAGE = "ReadStackExchange"
NOT_QUESTION = "stackexchange.not_question"
BAD_ROW = "stackexchange.bad_row"
ORPHAN_ANSWERS = "stackexchange.orphan_answers"
DUPLICATE_QUESTION = "stackexchange.duplicate_question"
TOO_FEW_ANSWERS = "stackexchange.too_few_answers"
EMPTY = "stackexchange.empty"

_QUESTION, _ANSWER = "1", "2"  # PostTypeId values
_SUFFIXES = re.compile(r"\.xml(\.gz|\.bz2|\.xz)?$", re.I)


@dataclass(frozen=True, kw_only=True)
class StackExchangeOptions:
    """``input.options`` of ``format: stackexchange``."""

    # The site's language (ISO code): the dump does not record it.
    language: str = "en"
    # The site's name (``cooking.stackexchange.com``); None takes the folder that holds Posts.xml.
    site: str | None = None
    # Questions with fewer answers are rejected; 0 keeps unanswered questions (LLaMA says nothing
    # about them; RedPajama kept only answered ones, which is min_answers: 1).
    min_answers: int = 0

    def __post_init__(self) -> None:
        if self.min_answers < 0:
            raise ValueError("min_answers must be >= 0")


def site_name(path: str) -> str:
    """``.../cooking.stackexchange.com/Posts.xml`` -> ``cooking.stackexchange.com``."""
    parts = path.rstrip("/").split("/")
    name = _SUFFIXES.sub("", parts[-1])
    if name.lower() == "posts" and len(parts) > 1:
        return parts[-2]
    return re.sub(r"[-_.]?posts$", "", name, flags=re.I) or name


def iso_timestamp(value: str) -> str:
    """``2010-07-19T19:12:12.510`` (the dumps' UTC format) -> ``2010-07-19T19:12:12Z``."""
    value = value.strip()
    if not value:
        return ""
    return value.split(".", 1)[0].rstrip("Z") + "Z"


@dataclass(frozen=True)
class ParsePosts:
    """Posts.xml -> Parts keyed by (file, question id): questions and answers; Skips for the rest."""

    def __call__(self, path: str) -> Iterator[Any]:
        with open_decompressed(path) as stream:
            root: Element | None = None
            for event, elem in iterparse(stream, events=("start", "end")):
                if root is None:
                    root = elem
                    continue
                if event != "end" or elem.tag != "row":
                    continue
                yield self._row(path, elem.attrib)
                elem.clear()
                root.clear()

    def _row(self, path: str, row: dict[str, str]) -> Any:
        kind = row.get("PostTypeId")
        try:
            post_id = int(row["Id"])
            if kind == _ANSWER:
                answer = Answer(post_id, int(row.get("Score", "0") or 0), row.get("Body", ""))
                return Part((path, int(row["ParentId"])), answer, record=False)
            if kind == _QUESTION:
                question = (row.get("Title", ""), row.get("Body", ""), row.get("CreationDate", ""))
                return Part((path, post_id), question, record=True)
        except (KeyError, ValueError):
            return Skip(BAD_ROW)
        return Skip(NOT_QUESTION)


class _Assemble(beam.DoFn):
    """One question's group -> its Document (or a drop), plus the counts only known here."""

    def __init__(self, source: str, options: StackExchangeOptions) -> None:
        self._source = source
        self._options = options

    def process(self, item: tuple[tuple[str, int], Any]):
        (path, question_id), values = item
        questions: list[tuple[str, str, str]] = []
        answers: list[Answer] = []
        for value in values:
            (answers if isinstance(value, Answer) else questions).append(value)
        if not questions:
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, STAGE, RECORDS), 1))
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, STAGE, ORPHAN_ANSWERS), 1))
            return
        if len(questions) > 1:
            yield beam.pvalue.TaggedOutput(COUNTS, (count_key(path, STAGE, DUPLICATE_QUESTION), len(questions) - 1))
        title, body, created = min(questions)
        site = self._options.site or site_name(path)
        doc = Document(
            id=f"stackexchange:{site}:{question_id}",
            text=question_text(title, body, answers),
            source=self._source,
            url=f"https://{site}/questions/{question_id}" if "." in site else "",
            lang=self._options.language,
            timestamp=iso_timestamp(created),
            warc_file=path,
            meta={"site": site, "title": title, "answers": str(len(answers))},
        )
        if len(answers) < self._options.min_answers:
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, STAGE, TOO_FEW_ANSWERS))
        elif not doc.text.strip():
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, STAGE, EMPTY))
        else:
            yield doc


class ReadStackExchange(beam.PTransform):
    """Posts.xml paths -> ``{"kept", "dropped", "counts", "errors"}`` (the reader contract)."""

    def __init__(self, options: StackExchangeOptions, source: str = "stackexchange") -> None:
        super().__init__(label=STAGE)
        self._options = options
        self._source = source

    def expand(self, paths):
        read = paths | "ReadPosts" >> SourceReader(STAGE, ParsePosts(), reshuffle=False)
        assembled = (
            read[PARTS]
            | "GroupByQuestion" >> beam.GroupByKey()
            | "Assemble" >> beam.ParDo(_Assemble(self._source, self._options)).with_outputs(
                DROPPED, COUNTS, main=KEPT
            )
        )
        return {
            KEPT: assembled[KEPT],
            DROPPED: (read[DROPPED], assembled[DROPPED]) | "AllDropped" >> beam.Flatten(),
            COUNTS: (read[COUNTS], assembled[COUNTS]) | "AllCounts" >> beam.Flatten(),
            ERRORS: read[ERRORS],
        }


def read_stackexchange(options: StackExchangeOptions, source: str = "stackexchange") -> ReadStackExchange:
    """The reader PTransform for StackExchange dumps."""
    return ReadStackExchange(options, source)
