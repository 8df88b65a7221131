"""The benchmarks' input: a gzip-per-record WARC of real pages, replicated with distinct URLs.

The pages are every shared gold page in ../shared/data/html_extraction (ScrapingHub AEB and the
trafilatura evaluation set, 1,171 pages) and every HTML response in ../shared/data/warc (real
crawls: CommonCrawl 2020 and 2024, Heritrix, wget, Wayback). Each copy gets distinct URLs, so
nothing but the near-duplicate stages can tell copies apart, as with re-crawled pages.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def gold_pages() -> list[tuple[str, bytes]]:
    """(url, html bytes) of every shared benchmark page, in a fixed order."""
    html_dir = SHARED / "html_extraction"
    pages = []
    aeb = html_dir / "scrapinghub_article_extraction_benchmark"
    truth = json.loads((aeb / "ground-truth.json").read_text())
    for key in sorted(truth):
        pages.append((truth[key]["url"], gzip.decompress((aeb / "html" / f"{key}.html.gz").read_bytes())))
    # Read the .tar.xz in archive order: random access into xz re-decompresses from the start.
    unpacked = []
    with tarfile.open(html_dir / "trafilatura_eval" / "trafilatura_eval_html.tar.xz", mode="r|xz") as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                unpacked.append((f"https://trafilatura-eval.example/{quote(Path(member.name).stem)}", data))
    return pages + sorted(unpacked)


def crawl_pages() -> list[tuple[str, bytes, str]]:
    """(url, body, content type) of every HTML response in the shared crawls, as our reader sees them."""
    from filters.html import html_skip_reason
    from pipeline.warc_reader import iter_records

    pages = []
    for path in sorted((SHARED / "warc").glob("*.warc.gz")) + sorted((SHARED / "warc").glob("*.arc")):
        if "wat" in path.name or "wet" in path.name:
            continue
        for record in iter_records(lambda p=path: p.open("rb"),
                                   path.name, 5_000_000):
            headers = record.http_headers or {}
            ctype = headers.get("content-type") or "text/html"
            if record.payload and not html_skip_reason(record.record_type, record.http_status, ctype, record.payload):
                pages.append((record.url, record.payload, ctype))
    return pages


def build_warc(path: Path, copies: int = 1, size_mb: float | None = None) -> tuple[int, int]:
    """Write every page ``copies`` times (or until ``size_mb``), each copy with its own URLs.

    Returns (records, bytes). The file is gzip-per-record, as CommonCrawl's are.
    """
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = [(url, html, "text/html") for url, html in gold_pages()] + crawl_pages()
    target = size_mb * 1e6 if size_mb else None
    count = 0
    tmp = path.with_suffix(".partial")
    with tmp.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        copy = 0
        while (copy < copies) if target is None else (out.tell() < target):
            for url, body, ctype in pages:
                headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
                record = writer.create_warc_record(f"{url}#copy{copy}", "response", payload=io.BytesIO(body),
                                                   http_headers=headers)
                writer.write_record(record)
                count += 1
                if target is not None and out.tell() >= target:
                    break
            copy += 1
    tmp.rename(path)
    return count, path.stat().st_size
