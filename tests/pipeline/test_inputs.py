"""Input specs: globs, manifests with a base URL, and archives streamed over HTTP."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.inputs import InputError, open_archive, read_manifest, resolve_inputs
from pipeline.warc_reader import iter_records
from tests.conftest import WARC_DIR


def test_glob_keeps_archives_only_sorted() -> None:
    files = resolve_inputs([str(WARC_DIR / "*")])
    names = [Path(f).name for f in files]
    assert "SOURCES.md" not in names
    assert len(names) == 19 and names == sorted(names)
    assert "copycat_commoncrawl-2008_1213893279526_0.arc" in names


def test_duplicates_collapse_and_limit_applies() -> None:
    one = str(WARC_DIR / "pywb_iana.warc.gz")
    assert resolve_inputs([one, one]) == [one]
    assert len(resolve_inputs([str(WARC_DIR / "*.warc.gz")], limit=3)) == 3


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no input file matches"):
        resolve_inputs([str(tmp_path / "nothing-*.warc.gz")])


def test_manifest_joins_relative_paths(tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress(b"crawl-data/CC-MAIN-2024-22/a.warc.gz\n\ncrawl-data/b.warc.gz\n"))
    assert read_manifest(str(manifest), "https://example.org/base") == [
        "https://example.org/base/crawl-data/CC-MAIN-2024-22/a.warc.gz",
        "https://example.org/base/crawl-data/b.warc.gz",
    ]


def test_empty_manifest_is_an_error(tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths"
    manifest.write_text("\n")
    with pytest.raises(InputError, match="lists no files"):
        read_manifest(str(manifest))


@pytest.fixture
def served_warcs() -> Iterator[str]:
    """The shared WARC folder over HTTP on the loopback interface."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(WARC_DIR))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_manifest_archives_stream_over_http(tmp_path: Path, served_warcs: str) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress(b"resiliparse_CC-MAIN-2020-34_sample.warc.gz\n"))
    [url] = resolve_inputs([str(manifest)], base_url=served_warcs)
    records = list(iter_records(lambda: open_archive(url), url, 5_000_000))
    assert len(records) == 50
