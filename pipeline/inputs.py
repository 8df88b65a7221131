"""Turning what the user typed after --input into a sorted list of archive files, and opening them.

Accepted: local paths and globs, ``file://`` URLs (read as the local paths they name; Beam's
FileSystems has no such scheme), anything Beam's FileSystems knows (``gs://``, ``s3://`` with the
matching Beam extra installed), and a CommonCrawl ``warc.paths.gz`` manifest, whose relative
paths are joined to a base URL (CommonCrawl's public HTTPS endpoint unless told otherwise).
The list is sorted and de-duplicated so that a re-run sees the same files in the same order.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

log = logging.getLogger(__name__)

COMMONCRAWL_BASE_URL = "https://data.commoncrawl.org/"
_MANIFEST_SUFFIXES = (".paths", ".paths.gz")
_HTTP = ("http://", "https://")
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet.gz", ".wat.gz")
_GLOB_CHARS = "*?["
_FILE = "file://"


class InputError(ValueError):
    """The inputs cannot be resolved; the message names the path."""


def is_manifest(path: str) -> bool:
    return path.endswith(_MANIFEST_SUFFIXES)


def local_path(path: str) -> str:
    """``file:///data/x.warc.gz`` as ``/data/x.warc.gz``; any other path unchanged.

    Beam's FileSystems knows no ``file`` scheme and would answer "install apache-beam[gcp]",
    yet the DAG's ``base_url`` allows ``file://``. Percent escapes are decoded, as ``Path.as_uri``
    writes them.
    """
    if not path.startswith(_FILE):
        return path
    rest = path[len(_FILE):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    if not rest.startswith("/"):
        raise InputError(f"{path}: a file:// URL must name an absolute local path, as in file:///data/crawl/")
    return urllib.parse.unquote(rest)


def resolve_inputs(
    specs: Sequence[str],
    base_url: str = COMMONCRAWL_BASE_URL,
    limit: int | None = None,
    suffixes: tuple[str, ...] | None = ARCHIVE_SUFFIXES,
) -> list[str]:
    """Expand globs and manifests into input paths; fail on a spec that matches nothing.

    A glob keeps only files ending in one of ``suffixes`` (None keeps all): a folder of crawl
    files also holds READMEs and checksums. A path named explicitly is always kept. A local
    directory stands for the matching files in it, unless ``suffixes`` is None: readers that
    take a directory as one input (a source tree) get the directory itself.
    """
    files: set[str] = set()
    for spec in map(local_path, specs):
        if is_manifest(spec):
            files.update(read_manifest(spec, base_url))
        elif spec.startswith(_HTTP):
            files.add(spec)
        elif suffixes and os.path.isdir(spec):
            files.update(_match(os.path.join(spec, "*"), suffixes))
        else:
            files.update(_match(spec, suffixes))
    ordered = sorted(files)
    return ordered[:limit] if limit else ordered


def read_manifest(path: str, base_url: str = COMMONCRAWL_BASE_URL) -> list[str]:
    """The archive URLs a ``warc.paths[.gz]`` manifest lists, joined to ``base_url``; ``file://``
    ones become local paths."""
    path = local_path(path)
    try:
        with open_archive(path) as raw:
            data = raw.read()
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read manifest: {exc}") from None
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: manifest is not valid gzip: {exc}") from None
    base = base_url if base_url.endswith("/") else base_url + "/"
    entries = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        is_absolute = "://" in line or line.startswith("/")
        entries.append(local_path(line if is_absolute else base + line))
    if not entries:
        raise InputError(f"{path}: manifest lists no files")
    return entries


def open_archive(path: str, start: int = 0) -> BinaryIO:
    """A binary stream over ``path`` from byte ``start``; HTTP(S) is streamed with a Range request,
    everything else goes through Beam's FileSystems."""
    if path.startswith(_HTTP):
        request = urllib.request.Request(path, headers={"Range": f"bytes={start}-"} if start else {})
        response = urllib.request.urlopen(request, timeout=120)  # noqa: S310 - the scheme is checked above
        if start and response.status != 206:
            response.close()
            raise OSError(f"{path}: the server ignored a Range request, so the file cannot be read in parts")
        return io.BufferedReader(response, 1 << 20)
    stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    if start:
        stream.seek(start)
    return stream


def file_size(path: str) -> int | None:
    """Size in bytes, or None when it cannot be known cheaply (then the file is read in one piece)."""
    try:
        if path.startswith(_HTTP):
            request = urllib.request.Request(path, method="HEAD")
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                length = response.headers.get("Content-Length")
                accepts = response.headers.get("Accept-Ranges", "") == "bytes"
                return int(length) if length and accepts else None
        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    except (OSError, ValueError, IndexError):
        return None


def local_bytes(files: Sequence[str]) -> int | None:
    """Total size of ``files`` when all are local (a stat each), else None.

    Remote sizes cost a request per file, too slow for a dump's worth on the driver; callers that
    need them for a few files use :func:`file_size`.
    """
    if any("://" in f or not os.path.isfile(f) for f in files):  # remote, or a source tree
        return None
    try:
        return sum(os.path.getsize(f) for f in files)
    except OSError:
        return None


def _match(pattern: str, suffixes: tuple[str, ...] | None) -> list[str]:
    try:
        results = FileSystems.match([pattern])
    except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError or ValueError for unknown schemes
        raise InputError(f"{pattern}: cannot list input: {exc}") from None
    found = [m.path for r in results for m in r.metadata_list if not m.path.endswith("/")]
    if suffixes and any(c in pattern for c in _GLOB_CHARS):
        skipped = [p for p in found if not p.endswith(suffixes)]
        if skipped:
            log.info("%s: ignoring %d file(s) that are not %s: %s", pattern, len(skipped), "/".join(suffixes),
                     ", ".join(p.rsplit("/", 1)[-1] for p in skipped[:5]))
        found = [p for p in found if p.endswith(suffixes)]
    if not found:
        raise InputError(f"{pattern}: no input file matches")
    return found
