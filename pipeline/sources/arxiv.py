"""ReadArxiv: arXiv LaTeX sources -> one Document per paper, cleaned as LLaMA did.

Accepted inputs, each file holding one paper unless said otherwise:

* a ``.tex`` file;
* a paper's source as arXiv serves it: a tarball (``.tar.gz``/``.tgz``/``.tar``) of its files,
  or a gzipped single ``.tex`` (``.gz``);
* an arXiv bulk-source tarball (``arXiv_src_2301_001.tar``): its members are the papers'
  ``.gz`` sources, read member by member; a member that is a PDF (papers without source) is
  counted as ``arxiv.no_source``.

A multi-file paper is joined from its main file (:func:`filters.latex.inline_inputs`); a paper
is held in memory only while it is assembled (``max_paper_bytes`` of ``.tex``/``.sty`` at most).
Cleaning (:func:`filters.latex.clean_latex`) runs after a Reshuffle. Ids are ``arxiv:<paper id>``
from the file name (``2301.00001``; ``hep-th0101001`` for the old style).
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from filters.document import Document
from filters.latex import clean_latex, find_main, inline_inputs
from pipeline.inputs import open_archive
from pipeline.sources.source_reader import Reject, Skip, SourceReader, open_decompressed

STAGE = "ReadArxiv"
NO_SOURCE = "arxiv.no_source"
NO_TEX = "arxiv.no_tex"
TOO_LARGE = "arxiv.too_large"
NO_SECTION = "latex.no_section"
EMPTY = "latex.empty"
CLEAN_FAILED = "arxiv.clean_failed"

_TEXT_SUFFIXES = (".tex", ".sty", ".ltx")
_ID_SUFFIXES = re.compile(r"(\.tar)?(\.gz|\.tgz|\.tex)?$", re.I)
_NEW_ID = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_OLD_ID = re.compile(r"^([a-z-]+(?:\.[A-Z]{2})?)(\d{7})(v\d+)?$")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, kw_only=True)
class ArxivOptions:
    """``input.options`` of ``format: arxiv``."""

    # LaTeX text of one paper, summed over its .tex/.sty files; larger sources are skipped.
    max_paper_bytes: int = 20_000_000
    language: str = "en"

    def __post_init__(self) -> None:
        if self.max_paper_bytes <= 0:
            raise ValueError("max_paper_bytes must be positive")


def paper_id(name: str) -> str:
    """The arXiv id a source file is named after (``2301.00001.tar.gz`` -> ``2301.00001``)."""
    return _ID_SUFFIXES.sub("", name.rsplit("/", 1)[-1])


def abstract_url(pid: str) -> str:
    if _NEW_ID.match(pid):
        return f"https://arxiv.org/abs/{pid}"
    old = _OLD_ID.match(pid)
    return f"https://arxiv.org/abs/{old.group(1)}/{old.group(2)}" if old else ""


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old papers: Latin-1 accents in a .tex; every byte decodes


def _is_tar(data: bytes) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


@dataclass(frozen=True)
class ParsePapers:
    """One input file -> a raw Document (joined LaTeX) per paper, Skips for papers without source."""

    source: str
    options: ArxivOptions

    def __call__(self, path: str) -> Iterator[Any]:
        lowered = path.lower()
        if lowered.endswith((".tex", ".ltx")):
            with open_decompressed(path) as stream:
                data = stream.read(self.options.max_paper_bytes + 1)
            yield self._single(path, paper_id(path), data)
        elif lowered.endswith(".tar") and not self._is_single_paper_tar(path):
            yield from self._bulk(path)
        else:
            with open_archive(path) as stream:
                data = stream.read(self.options.max_paper_bytes * 2 + 1)
            too_large = len(data) > self.options.max_paper_bytes * 2
            yield Skip(TOO_LARGE) if too_large else self._paper(path, paper_id(path), data)

    def _is_single_paper_tar(self, path: str) -> bool:
        """A plain .tar holds either one paper's files or many papers' .gz sources (bulk)."""
        with open_archive(path) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    return not member.name.lower().endswith((".gz", ".pdf"))
        return True

    def _bulk(self, path: str) -> Iterator[Any]:
        with open_archive(path) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.lower()
                if name.endswith(".pdf"):
                    yield Skip(NO_SOURCE)
                    continue
                if member.size > self.options.max_paper_bytes * 2:
                    yield Skip(TOO_LARGE)
                    continue
                handle = tar.extractfile(member)
                yield self._paper(path, paper_id(member.name), handle.read() if handle else b"")

    def _paper(self, path: str, pid: str, data: bytes) -> Any:
        """One paper's source bytes as arXiv serves them: gzip of a tar, gzip of a .tex, or a tar."""
        if data.startswith(_GZIP_MAGIC):
            try:
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                    data = unzipped.read(self.options.max_paper_bytes * 4 + 1)
            except (OSError, EOFError):
                return Skip(NO_SOURCE)
        if data[:4] == b"%PDF":
            return Skip(NO_SOURCE)
        if _is_tar(data):
            return self._tarball(path, pid, data)
        return self._single(path, pid, data)

    def _single(self, path: str, pid: str, data: bytes) -> Any:
        if len(data) > self.options.max_paper_bytes:
            return Skip(TOO_LARGE)
        return self._document(path, pid, _decode(data), "single")

    def _tarball(self, path: str, pid: str, data: bytes) -> Any:
        files: dict[str, str] = {}
        total = 0
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar:
                    if not member.isfile() or not member.name.lower().endswith(_TEXT_SUFFIXES):
                        continue
                    total += member.size
                    if total > self.options.max_paper_bytes:
                        return Skip(TOO_LARGE)
                    handle = tar.extractfile(member)
                    files[member.name.removeprefix("./")] = _decode(handle.read() if handle else b"")
        except tarfile.TarError:
            return Skip(NO_SOURCE)
        main = find_main(files)
        if main is not None:
            tex = inline_inputs(main, files)
        elif files:
            tex = "\n".join(files[p] for p in sorted(files) if p.lower().endswith((".tex", ".ltx")))
        else:
            return Skip(NO_TEX)
        return self._document(path, pid, tex, main or "")

    def _document(self, path: str, pid: str, tex: str, main: str) -> Document:
        return Document(id=f"arxiv:{pid}", text=tex, source=self.source, url=abstract_url(pid),
                        lang=self.options.language, warc_file=path, meta={"arxiv_id": pid, "main_file": main})


def clean_paper(doc: Document) -> Document | Reject:
    """Raw joined LaTeX -> the cleaned body, or a Reject when no section is found."""
    body = clean_latex(doc.text)
    if body is None:
        return Reject(doc, NO_SECTION)
    if not body.strip():
        return Reject(doc.replace(text=body), EMPTY)
    return doc.replace(text=body)


def read_arxiv(options: ArxivOptions, source: str = "arxiv") -> SourceReader:
    """The reader PTransform for arXiv LaTeX sources."""
    return SourceReader(STAGE, ParsePapers(source, options), clean_paper, failure_reason=CLEAN_FAILED)
