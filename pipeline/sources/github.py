"""ReadGitHub: source files from a directory tree, a tarball or JSONL rows -> one Document per file.

Three shapes of input, one rule set (filters/code_files.py, after Touvron et al. 2023, 2.1):

* a directory (a checked-out repository, local): walked in sorted order, ``.git`` skipped;
* a tarball (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``; GitHub's archive
  downloads): streamed member by member, twice: the first pass reads only the license files,
  so that a file met before its LICENSE in the archive is still judged by it;
* JSONL(.gz) rows with ``repo``, ``path``, ``content`` and ``license`` (an SPDX id, an
  ``A OR B`` expression or a list), the shape of the BigQuery GitHub exports.

In a tree or tarball a file's license is that of the nearest LICENSE/COPYING file in its
directory or above, or ``options.license`` when there is none. Files that are not permissively
licensed, not source code by extension, too large or binary are counted and skipped (they are
not documents); the line-length and alphanumeric rules reject documents into rejects/. Exact
dedup at file level is the pipeline's ``exact_dedup`` stage. Ids are ``github:<repo>:<path>``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from filters.code_files import (
    EXTENSION_LANGUAGES,
    PERMISSIVE_LICENSES,
    CodeFileRules,
    is_license_file,
    license_from_text,
    normalize_spdx,
    strip_license_header,
)
from filters.document import Document
from pipeline.inputs import open_archive
from pipeline.sources.source_reader import Reject, Skip, SourceReader, json_lines

log = logging.getLogger(__name__)

STAGE = "ReadGitHub"
NOT_PERMISSIVE = "github.license_not_permissive"
NO_LICENSE = "github.no_license"
NOT_CODE = "github.not_code"
TOO_LARGE = "github.too_large"
BINARY = "github.binary"
BAD_RECORD = "github.bad_record"
CLEAN_FAILED = "github.clean_failed"

TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".jsonl.bz2")
_OR = re.compile(r"\s+OR\s+", re.I)
_AND = re.compile(r"\s+(?:AND|WITH)\s+", re.I)
_OWNER_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_LICENSE_FILE_MAX_BYTES = 200_000


@dataclass(frozen=True, kw_only=True)
class GitHubOptions:
    """``input.options`` of ``format: github``."""

    # Repository name for a directory or tarball input; None uses its file name.
    repo: str | None = None
    # SPDX id assumed for a directory or tarball without a license file; None skips such files.
    license: str | None = None
    # LLaMA kept Apache, BSD and MIT projects only (Touvron et al. 2023, section 2.1).
    licenses: tuple[str, ...] = PERMISSIVE_LICENSES
    # Extensions treated as source code; None accepts every file.
    extensions: tuple[str, ...] | None = tuple(EXTENSION_LANGUAGES)
    # Larger files are generated or vendored data; StarCoder drops files over 1 MB as well.
    max_file_bytes: int = 1_000_000
    rules: CodeFileRules = field(default_factory=CodeFileRules)

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")


def permitted_license(value: Any, allowed: tuple[str, ...]) -> str | None:
    """The license under which a row may be used, or None.

    A string is an SPDX expression: ``A OR B`` lets the user pick, so one allowed alternative
    suffices; ``A AND B`` (or ``A WITH exception``) needs all of them. A list names licenses found
    in one repository, all of which apply: a GPL component taints the row.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    chosen = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            return None
        pick = None
        for alternative in _OR.split(item.strip().strip("()")):
            ids = [normalize_spdx(i) for i in _AND.split(alternative.strip().strip("()")) if i.strip()]
            if ids and all(i in allowed for i in ids):
                pick = " AND ".join(ids)
                break
        if pick is None:
            return None
        chosen.append(pick)
    return " AND ".join(dict.fromkeys(chosen)) or None


def _decode(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _governing_license(path: str, licenses: dict[str, str]) -> str | None:
    """The license of the nearest directory at or above ``path``'s that has a license file."""
    directory = posixpath.dirname(path)
    while True:
        if directory in licenses:
            return licenses[directory]
        if not directory:
            return None
        directory = posixpath.dirname(directory)


def _input_name(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in TARBALL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ParseRepository:
    """One input (tree, tarball or JSONL) -> a raw Document per source file, Skips for the rest."""

    source: str
    options: GitHubOptions

    def __call__(self, path: str) -> Iterator[Any]:
        lowered = path.lower()
        if lowered.endswith(JSONL_SUFFIXES):
            yield from self._jsonl(path)
        elif lowered.endswith(TARBALL_SUFFIXES):
            yield from self._tarball(path)
        elif os.path.isdir(path):
            yield from self._tree(path)
        else:
            raise ValueError(f"not a directory, tarball or JSONL file: {path}")

    def _file(self, path: str, repo: str, rel: str, data: bytes | None, size: int, spdx: str | None) -> Any:
        """The verdict on one file of a tree or tarball (``data`` is None when it was too large)."""
        if self.options.extensions is not None and not rel.lower().endswith(tuple(self.options.extensions)):
            return Skip(NOT_CODE)
        spdx = spdx or self.options.license
        if spdx is None:
            return Skip(NO_LICENSE)
        spdx = permitted_license(spdx, self.options.licenses)
        if spdx is None:
            return Skip(NOT_PERMISSIVE)
        if data is None or size > self.options.max_file_bytes:
            return Skip(TOO_LARGE)
        text = _decode(data)
        if text is None:
            return Skip(BINARY)
        return self._document(path, repo, rel, text, spdx)

    def _document(self, path: str, repo: str, rel: str, text: str, spdx: str) -> Document:
        extension = posixpath.splitext(rel)[1].lower()
        url = f"https://github.com/{repo}/blob/HEAD/{rel}" if _OWNER_REPO.match(repo) else ""
        return Document(
            id=f"github:{repo}:{rel}", text=text, source=self.source, url=url, warc_file=path,
            meta={"repo": repo, "path": rel, "license": spdx,
                  "programming_language": EXTENSION_LANGUAGES.get(extension, "")},
        )

    def _tree(self, root: str) -> Iterator[Any]:
        repo = self.options.repo or _input_name(root)
        files: list[str] = []
        licenses: dict[str, str] = {}
        for directory, subdirs, names in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if d != ".git")
            rel_dir = os.path.relpath(directory, root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in sorted(names):
                rel = posixpath.join(rel_dir, name)
                full = os.path.join(directory, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                files.append(rel)
                if is_license_file(name):
                    with open(full, "rb") as handle:
                        found = license_from_text(handle.read(_LICENSE_FILE_MAX_BYTES).decode("utf-8", "replace"))
                    if found:
                        licenses[rel_dir] = found
        for rel in files:
            full = os.path.join(root, *rel.split("/"))
            size = os.path.getsize(full)
            with open(full, "rb") as handle:
                data = handle.read(self.options.max_file_bytes + 1)
            yield self._file(root, repo, rel, data, max(size, len(data)), _governing_license(rel, licenses))

    def _tarball(self, path: str) -> Iterator[Any]:
        repo = self.options.repo or _input_name(path)
        licenses: dict[str, str] = {}
        tops: set[str] = set()  # GitHub archives wrap the repo in one "owner-repo-sha/" folder
        with open_archive(path) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = _member_path(member.name)
                tops.add(name.split("/", 1)[0] if "/" in name else "")
                if is_license_file(name) and member.size <= _LICENSE_FILE_MAX_BYTES:
                    handle = tar.extractfile(member)
                    found = license_from_text(handle.read().decode("utf-8", "replace")) if handle else None
                    if found:
                        licenses[posixpath.dirname(name)] = found
        strip = f"{tops.pop()}/" if len(tops) == 1 and "" not in tops else ""
        licenses = {d.removeprefix(strip.rstrip("/")).lstrip("/"): spdx for d, spdx in licenses.items()}
        with open_archive(path) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                rel = _member_path(member.name).removeprefix(strip)
                data = None
                if member.size <= self.options.max_file_bytes:
                    handle = tar.extractfile(member)
                    data = handle.read() if handle else b""
                yield self._file(path, repo, rel, data, member.size, _governing_license(rel, licenses))

    def _jsonl(self, path: str) -> Iterator[Any]:
        for line_no, row in json_lines(path):
            if row is None:
                yield Skip(BAD_RECORD)
                continue
            fields = {k: row.get(k) for k in ("repo", "path", "content")} if isinstance(row, dict) else {}
            if not all(isinstance(v, str) for v in fields.values()) or not fields:
                log.warning("%s:%d: needs string repo, path and content; skipped", path, line_no)
                yield Skip(BAD_RECORD)
                continue
            yield self._row(path, fields["repo"], fields["path"], fields["content"],
                            row.get("license", row.get("licenses")))

    def _row(self, path: str, repo: str, rel: str, content: str, license_field: Any) -> Any:
        if self.options.extensions is not None and not rel.lower().endswith(tuple(self.options.extensions)):
            return Skip(NOT_CODE)
        if not license_field:
            return Skip(NO_LICENSE)
        spdx = permitted_license(license_field, self.options.licenses)
        if spdx is None:
            return Skip(NOT_PERMISSIVE)
        if len(content.encode("utf-8")) > self.options.max_file_bytes:
            return Skip(TOO_LARGE)
        if "\0" in content:
            return Skip(BINARY)
        return self._document(path, repo, rel, content, spdx)


def _member_path(name: str) -> str:
    return name.lstrip("/").removeprefix("./")


@dataclass(frozen=True)
class CleanCode:
    """Raw file Document -> the file without its license header, or a Reject by the code rules."""

    rules: CodeFileRules

    def __call__(self, doc: Document) -> Document | Reject:
        cleaned = doc.replace(text=strip_license_header(doc.text))
        verdict = self.rules(cleaned)
        if not verdict.keep:
            return Reject(verdict.apply(cleaned), verdict.reason)
        return verdict.apply(cleaned)


def read_github(options: GitHubOptions, source: str = "github") -> SourceReader:
    """The reader PTransform for GitHub code."""
    return SourceReader(STAGE, ParseRepository(source, options), CleanCode(options.rules),
                        failure_reason=CLEAN_FAILED)
