"""Readers: how each kind of input becomes documents, behind one contract.

A reader is a PTransform from a PCollection of file paths to a dict of PCollections:

* ``"kept"``: :class:`~filters.document.Document` elements;
* ``"dropped"``: :class:`~pipeline.stage.Dropped` records (what the reader itself rejected);
* ``"counts"``: ``((file, stage, reason), n)`` pairs, which must include one
  ``((file, <stage>, "records"), total)`` per file: the number of raw records the file held, so
  that the funnel can check that kept + dropped adds up per file;
* ``"errors"`` (optional): :class:`~pipeline.funnel.FileError` for files that broke midway.

``input.format`` in the pipeline config picks the reader; ``input.options`` are that reader's
own settings, parsed strictly into the reader's options dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from filters.config import from_dict
from pipeline import funnel
from pipeline.extract import STAGE as EXTRACT_STAGE
from pipeline.extract import Extract
from pipeline.inputs import ARCHIVE_SUFFIXES
from pipeline.read_documents import STAGE as DOCUMENTS_STAGE
from pipeline.read_documents import SUFFIXES as DOCUMENT_SUFFIXES
from pipeline.read_documents import DocumentsOptions, ReadDocuments
from pipeline.read import RECORDS_TAG, ReadWarc
from pipeline.stage import DROPPED, KEPT


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    """Which reader turns the inputs into documents, and its settings."""

    # warc: WARC/ARC web crawls (ReadWarc + Extract); documents: our Parquet or JSONL documents.
    # The other mixture sources register their formats in pipeline.sources.
    format: str = "warc"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderSpec:
    """A registered reader: its funnel stage labels, its options type, and how to build it."""

    stages: tuple[str, ...]
    options_type: type | None
    build: Callable[[Any, Any], beam.PTransform]  # (pipeline config, parsed options) -> PTransform
    # File endings a glob keeps for this reader (None: every file the glob matches).
    suffixes: tuple[str, ...] | None = None


class WebArchives(beam.PTransform):
    """WARC/ARC paths -> documents: ReadWarc then Extract, under the reader contract."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self._cfg = cfg

    def expand(self, paths):
        read = paths | "ReadWarc" >> ReadWarc(self._cfg.read)
        extracted = read[RECORDS_TAG] | EXTRACT_STAGE >> Extract(self._cfg.extract, self._cfg.source)
        return {KEPT: extracted[KEPT], DROPPED: extracted[DROPPED], funnel.COUNTS: read[funnel.COUNTS],
                funnel.ERRORS: read[funnel.ERRORS]}


READERS: dict[str, ReaderSpec] = {
    "warc": ReaderSpec((funnel.READ_STAGE, EXTRACT_STAGE), None, lambda cfg, _options: WebArchives(cfg),
                       ARCHIVE_SUFFIXES),
    "documents": ReaderSpec((DOCUMENTS_STAGE,), DocumentsOptions,
                            lambda cfg, options: ReadDocuments(options, cfg.source), DOCUMENT_SUFFIXES),
}


def registered_readers() -> dict[str, ReaderSpec]:
    """Every reader, including those of the other mixture sources (pipeline.sources), if present."""
    readers = dict(READERS)
    try:
        from pipeline.sources import SOURCE_READERS
    except ImportError:
        return readers
    readers.update(SOURCE_READERS)
    return readers


def reader_spec(cfg: Any, where: str = "<config>") -> ReaderSpec:
    from filters.config import ConfigError

    readers = registered_readers()
    spec = readers.get(cfg.input.format)
    if spec is None:
        raise ConfigError(f"{where}: input.format '{cfg.input.format}' is not one of {sorted(readers)}")
    return spec


def build_reader(cfg: Any, where: str = "<config>") -> tuple[beam.PTransform, tuple[str, ...]]:
    """The reader PTransform for ``cfg.input`` and its funnel stage labels; unknown formats fail clearly."""
    from filters.config import ConfigError

    spec = reader_spec(cfg, where)
    if spec.options_type is None:
        if cfg.input.options:
            raise ConfigError(f"{where}: input.format '{cfg.input.format}' takes no input.options")
        options = None
    else:
        options = from_dict(spec.options_type, cfg.input.options, where=f"{where} input.options")
    return spec.build(cfg, options), spec.stages
