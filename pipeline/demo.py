"""``refinery demo``: write a sample crawl, run every stage that exists on it, say where things went.

It needs no network and no data beyond the package: the crawl is generated (see demo_corpus) and
written as a real gzip-per-record WARC with warcio, with the record types a CommonCrawl file has.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.demo_corpus import Page, demo_pages, to_html

log = logging.getLogger(__name__)

CRAWL_DATE = "2024-05-20T10:00:00Z"


def write_demo_warc(path: Path, pages: Sequence[Page]) -> int:
    """Write ``pages`` plus the records a real crawl also holds; returns the number of records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "refinery demo", "format": "WARC/1.1"}))
        count += 1
        for page in tqdm(pages, desc="demo WARC", unit="page", leave=False):
            body = to_html(page).encode("utf-8")
            count += _write_exchange(writer, page.url, "text/html; charset=utf-8", body)
        # What every crawl also has, and the reader must skip and count.
        count += _write_exchange(writer, "https://gardening-journal.example/logo.png", "image/png",
                                 b"\x89PNG\r\n\x1a\n" + bytes(64))
        count += _write_exchange(writer, "https://railways-journal.example/timetable.pdf", "application/pdf",
                                 b"%PDF-1.4\n% demo\n")
        count += _write_exchange(writer, "https://astronomy-journal.example/missing", "text/html",
                                 b"<html><body><h1>Not found</h1></body></html>", status="404 Not Found")
        latin1 = ("<html><head><title>Caf\xe9</title></head><body><p>Le caf\xe9 du village ouvre t\xf4t le matin "
                  "et ferme tard le soir, m\xeame le dimanche.</p></body></html>").encode("latin-1")
        count += _write_exchange(writer, "https://cafe.example/", "text/html; charset=iso-8859-1", latin1)
        first = pages[0]
        digest = "sha1:" + hashlib.sha1(to_html(first).encode("utf-8")).hexdigest()
        revisit = writer.create_revisit_record(first.url, digest, first.url, CRAWL_DATE)
        writer.write_record(revisit)
        count += 1
    return count


def _write_exchange(writer: WARCWriter, url: str, content_type: str, body: bytes, status: str = "200 OK") -> int:
    request = writer.create_warc_record(
        url, "request", payload=io.BytesIO(f"GET / HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode()),
        warc_headers_dict={"WARC-Date": CRAWL_DATE},
    )
    headers = StatusAndHeaders(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                               protocol="HTTP/1.1")
    response = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers,
                                         warc_headers_dict={"WARC-Date": CRAWL_DATE})
    writer.write_record(request)
    writer.write_record(response)
    return 2


def run_demo(output: str | Path, beam_args: Sequence[str] = ()) -> dict:
    """Generate the sample crawl under ``output`` and run the pipeline on it; returns stats."""
    from pipeline.run import run

    root = Path(output)
    warc = root / "input" / "demo-crawl.warc.gz"
    records = write_demo_warc(warc, demo_pages())
    print(f"wrote a sample crawl of {records} records to {warc}")
    result = run([str(warc)], str(root / "curated"), beam_args=beam_args, overwrite=True)
    stats = result.stats
    totals = stats["totals"]
    print(f"\npipeline: {totals['records']} records -> {totals['kept']} documents")
    for stage in stats["funnel"]:
        reasons = ", ".join(f"{r} {n}" for r, n in stage["reasons"].items())
        print(f"  {stage['stage']:<14} in {stage['in']:>5}  out {stage['out']:>5}  {reasons}")
    print(f"\noutputs:\n  documents  {root / 'curated' / 'documents'}/*.parquet\n"
          f"  rejects    {root / 'curated' / 'rejects'}/*.parquet\n  stats      {root / 'curated' / 'stats.json'}")
    return stats
