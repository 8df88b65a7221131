"""Reading training texts for the quality classifier from the files people actually have.

``refinery train-quality`` takes positives and negatives as paths: a folder of books, a JSONL dump
of web pages, the documents Parquet of an earlier run. Each yields one sample per document; a
plain-text file is one long document (a book), so it is cut into chunks of about
``chunk_words`` words, or one novel would be one sample and weigh as much as one web page.

Chunking rule for ``.txt``: paragraphs are separated by blank lines; consecutive paragraphs are
joined until the chunk holds at least ``chunk_words`` whitespace-separated words, and a paragraph
longer than ``chunk_words`` words on its own is cut at word boundaries. The default of 300 words
is near the median length of an extracted English web page (~2 KB of text in our WARC samples),
so positives and negatives have comparable lengths. Text without spaces (CJK) counts a paragraph
as few words, so its chunks are runs of paragraphs and can be long (tens of KB for the Japanese
novel in our test data); the classifier's ``normalize_text`` cuts every sample to its head anyway. Project Gutenberg files keep their licence
header and footer, which are not the book; text outside the ``*** START OF`` / ``*** END OF``
markers is dropped.

Bad records (invalid JSON, no ``text`` string) are skipped with a warning naming the file and
line, never raised: a training set with a few broken lines should still train.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".txt.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")  # dolma writes JSON lines as .json.gz
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_GUTENBERG_START = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG", re.M | re.I)
_PARQUET_BATCH_ROWS = 1024


def read_texts(path: str | Path, *, chunk_words: int = 300, text_field: str = "text") -> Iterator[str]:
    """Texts from a .txt/.txt.gz, .jsonl/.jsonl.gz/.json.gz or .parquet file, or a directory of them.

    A directory is walked recursively in sorted path order, so a run is reproducible; files of
    other types in it are skipped (logged). An explicit file of an unknown type is an error.
    """
    if chunk_words < 1:
        raise ValueError(f"chunk_words must be >= 1, got {chunk_words}")
    path = Path(path)
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if _suffix_kind(child) is None:
                log.info("read_texts: skipping %s (not one of %s)", child, ", ".join(SUPPORTED_SUFFIXES))
                continue
            yield from _read_file(child, chunk_words, text_field)
    elif path.is_file():
        if _suffix_kind(path) is None:
            raise ValueError(f"{path}: unsupported file type (expected one of {', '.join(SUPPORTED_SUFFIXES)})")
        yield from _read_file(path, chunk_words, text_field)
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")


def chunk_plain_text(text: str, chunk_words: int = 300) -> Iterator[str]:
    """Paragraph-aligned chunks of about ``chunk_words`` words (the rule in the module docstring)."""
    pending: list[str] = []
    pending_words = 0
    for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")):
        words = paragraph.split()
        if not words:
            continue
        while len(words) > chunk_words:  # a paragraph that is a chunk on its own (or several)
            if pending:
                yield "\n\n".join(pending)
                pending, pending_words = [], 0
            yield " ".join(words[:chunk_words])
            words = words[chunk_words:]
        pending.append(" ".join(words))
        pending_words += len(words)
        if pending_words >= chunk_words:
            yield "\n\n".join(pending)
            pending, pending_words = [], 0
    if pending:
        yield "\n\n".join(pending)


def strip_gutenberg_boilerplate(text: str) -> str:
    """The book between Project Gutenberg's START and END markers (all of ``text`` if absent)."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return text


def _suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind, suffixes in (("text", TEXT_SUFFIXES), ("jsonl", JSONL_SUFFIXES), ("parquet", PARQUET_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig drops the BOM some Gutenberg files start with; bad bytes become U+FFFD, not errors.
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return path.open("r", encoding="utf-8-sig", errors="replace")


def _read_file(path: Path, chunk_words: int, text_field: str) -> Iterator[str]:
    kind = _suffix_kind(path)
    if kind == "text":
        with _open_text(path) as handle:
            yield from chunk_plain_text(strip_gutenberg_boilerplate(handle.read()), chunk_words)
    elif kind == "jsonl":
        yield from _read_jsonl(path, text_field)
    else:
        yield from _read_parquet(path, text_field)


def _read_jsonl(path: Path, text_field: str) -> Iterator[str]:
    skipped = 0
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                skipped += 1
                log.warning("%s:%d: skipping a line that is not JSON (%s)", path, line_no, exc.msg)
                continue
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                skipped += 1
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                log.warning("%s:%d: no string field %r (found %s); skipping", path, line_no, text_field, keys)
                continue
            yield text
    if skipped:
        log.warning("%s: skipped %d bad record(s)", path, skipped)


def _read_parquet(path: Path, text_field: str) -> Iterator[str]:
    parquet = pq.ParquetFile(path)
    if text_field not in parquet.schema_arrow.names:
        raise ValueError(f"{path}: no column {text_field!r} (columns: {parquet.schema_arrow.names})")
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=[text_field]):
        for text in batch.column(0).to_pylist():
            if isinstance(text, str):
                yield text
