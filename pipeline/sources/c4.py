"""ReadC4: C4-format JSON lines (``text``, ``url``, ``timestamp``; gzipped or not) -> Documents.

The C4 release files (``c4-train.00000-of-01024.json.gz``) hold one page per line. The reader
only turns lines into Documents; the C4 quality rules themselves are the pipeline's ``c4``
stage (filters/c4.py), listed in ``configs/sources/c4.yaml``, so a C4 page and a CommonCrawl page
are judged by the same code. C4 has no page ids; ours are ``c4:<file name>:<line number>``,
stable as long as the file is (the release files never change).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from filters.document import Document
from pipeline.sources.source_reader import Skip, SourceReader, json_lines

log = logging.getLogger(__name__)

STAGE = "ReadC4"
BAD_RECORD = "c4.bad_record"

_SUFFIXES = re.compile(r"\.(jsonl?|json)(\.gz|\.bz2|\.xz)?$", re.I)


@dataclass(frozen=True, kw_only=True)
class C4Options:
    """``input.options`` of ``format: c4``."""

    # C4 (en) was filtered to English by langdetect at 0.99 (Raffel et al. 2020, section 2.2).
    language: str = "en"


def c4_timestamp(value: Any) -> str:
    """C4 writes ``2019-04-25T12:57:54Z``; some mirrors drop the ``Z`` or add fractions."""
    if not isinstance(value, str) or not value.strip():
        return ""
    value = value.strip().replace(" ", "T")
    return value.split(".", 1)[0].rstrip("Z") + "Z"


@dataclass(frozen=True)
class ParseC4:
    """One JSON-lines file -> a Document per page; lines without a text are counted and skipped."""

    source: str
    options: C4Options

    def __call__(self, path: str) -> Iterator[Any]:
        stem = _SUFFIXES.sub("", path.rsplit("/", 1)[-1])
        warned = False
        for line_no, row in json_lines(path):
            if row is None:
                yield Skip(BAD_RECORD)
                continue
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str):
                if not warned:  # one warning per file, naming what was there instead
                    keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                    log.warning("%s:%d: no string 'text' (found %s); skipping such lines", path, line_no, keys)
                    warned = True
                yield Skip(BAD_RECORD)
                continue
            url = row.get("url")
            yield Document(id=f"c4:{stem}:{line_no}", text=text, source=self.source,
                           url=url if isinstance(url, str) else "", lang=self.options.language,
                           timestamp=c4_timestamp(row.get("timestamp")), warc_file=path)


def read_c4(options: C4Options, source: str = "c4") -> SourceReader:
    """The reader PTransform for C4 JSON lines."""
    return SourceReader(STAGE, ParseC4(source, options))
