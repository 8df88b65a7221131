"""Read + extract throughput: documents/s/core, input MB/s and peak RSS, for 1 and 2 workers.

The input is a gzip-per-record WARC built from the real benchmark pages in
../shared/data/html_extraction (ScrapingHub AEB and the trafilatura evaluation set), replicated
until it reaches --size-mb. Each configuration runs in its own process so that peak RSS belongs
to that run alone. A plain loop over trafilatura on the same pages is the baseline that Beam's
overhead is judged against.

    .venv/bin/python benchmarks/extract.py                 # 50 MB, 1 and 2 workers
    .venv/bin/python benchmarks/extract.py --size-mb 10 --workers 1
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import time
from urllib.parse import quote
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "html_extraction"
sys.path.insert(0, str(REPO))


def real_pages() -> list[tuple[str, bytes]]:
    """(url, html bytes) of every shared benchmark page, in a fixed order."""
    pages = []
    aeb = SHARED / "scrapinghub_article_extraction_benchmark"
    truth = json.loads((aeb / "ground-truth.json").read_text())
    for key in sorted(truth):
        pages.append((truth[key]["url"], gzip.decompress((aeb / "html" / f"{key}.html.gz").read_bytes())))
    # Read the .tar.xz in archive order: random access into xz re-decompresses from the start.
    unpacked = []
    with tarfile.open(SHARED / "trafilatura_eval" / "trafilatura_eval_html.tar.xz", mode="r|xz") as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                unpacked.append((f"https://trafilatura-eval.example/{quote(Path(member.name).stem)}", data))
    return pages + sorted(unpacked)


def build_warc(path: Path, size_mb: float) -> tuple[int, int]:
    """Write pages (replicated with distinct URLs) until the file reaches size_mb; (records, bytes)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = real_pages()
    target = size_mb * 1e6
    count = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        copy = 0
        while out.tell() < target:
            for url, html in pages:
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                record = writer.create_warc_record(f"{url}#copy{copy}", "response", payload=io.BytesIO(html),
                                                   http_headers=headers)
                writer.write_record(record)
                count += 1
                if out.tell() >= target:
                    break
            copy += 1
    return count, path.stat().st_size


def run_beam(warc: str, workers: int, split_mb: float) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from filters.html import ExtractOptions
    from pipeline.extract import Extract
    from pipeline.read import RECORDS_TAG, ReadConfig, ReadWarc
    from pipeline.stage import KEPT

    args = ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
    if workers > 1:
        args.append("--direct_running_mode=multi_processing")
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        read = p | beam.Create([warc]) | ReadWarc(ReadConfig(split_bytes=int(split_mb * 1e6)))
        extracted = read[RECORDS_TAG] | Extract(ExtractOptions())
        _ = extracted[KEPT] | beam.combiners.Count.Globally() | beam.Map(lambda n: print(f"KEPT {n}", flush=True))
    return {"seconds": time.perf_counter() - started}


def run_baseline(warc: str) -> dict:
    """The same reading and trafilatura, in a plain loop: what the pipeline's overhead is measured against."""
    from filters.html import ExtractOptions, page_text
    from pipeline.warc_reader import iter_records

    options = ExtractOptions()
    started = time.perf_counter()
    for record in iter_records(lambda: open(warc, "rb"), warc, 5_000_000):
        if record.payload:
            page_text(record.payload, "text/html", record.url, options)
    return {"seconds": time.perf_counter() - started}


def measure(mode: str, warc: str, workers: int, split_mb: float) -> dict:
    """Run one configuration in a fresh process; wall time and the peak RSS of it and its children."""
    cmd = [sys.executable, __file__, "--child", mode, "--warc", warc, "--workers", str(workers),
           "--split-mb", str(split_mb)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = max(result["self_rss_mb"], result["children_rss_mb"])
    return result


def child(mode: str, warc: str, workers: int, split_mb: float) -> None:
    result = run_beam(warc, workers, split_mb) if mode == "beam" else run_baseline(warc)
    result["self_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=50.0, help="size of the generated WARC (default 50)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="DirectRunner worker counts")
    parser.add_argument("--workdir", default="/tmp/refinery-bench", help="where the WARC is built")
    parser.add_argument("--split-mb", type=float, default=8.0,
                        help="byte-range size the reader splits the WARC into (read.split_bytes; default 8 MB)")
    parser.add_argument("--child", choices=["beam", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--warc", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.warc, args.workers[0], args.split_mb)
        return

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    warc = work / f"pages-{args.size_mb:g}MB.warc.gz"
    if not warc.exists():
        print(f"building {warc} ...", flush=True)
        records, size = build_warc(warc, args.size_mb)
    else:
        from pipeline.warc_reader import iter_records

        records = sum(1 for _ in iter_records(lambda: warc.open("rb"), str(warc), 5_000_000))
        size = warc.stat().st_size
    with gzip.open(warc) as fh:
        raw_mb = sum(len(chunk) for chunk in iter(lambda: fh.read(1 << 20), b"")) / 1e6
    print(f"input: {records} HTML records, {size / 1e6:.1f} MB gzipped, {raw_mb:.1f} MB uncompressed\n"
          f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}\n")

    rows = [("plain loop (baseline)", 1, measure("baseline", str(warc), 1, args.split_mb))]
    for workers in args.workers:
        rows.append((f"Beam DirectRunner x{workers}", workers, measure("beam", str(warc), workers, args.split_mb)))
    header = f"{'configuration':<26}{'workers':>8}{'wall s':>9}{'docs/s':>9}{'docs/s/core':>13}{'MB/s':>8}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for name, workers, r in rows:
        docs_s = records / r["seconds"]
        print(f"{name:<26}{workers:>8}{r['seconds']:>9.1f}{docs_s:>9.1f}{docs_s / workers:>13.1f}"
              f"{raw_mb / r['seconds']:>8.2f}{r['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
