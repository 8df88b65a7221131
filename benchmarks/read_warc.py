"""Read throughput of the two WARC engines: warcio vs fastwarc, through our own iter_records.

The input is a gzip-per-record WARC of the real benchmark pages (built by benchmarks/bench_warc.py),
read to its end with every payload decoded, as ReadWarc does. The engines run interleaved, in one
process, so that a noisy neighbour slows both alike; the table gives the median of the repeats.
MB/s counts compressed input bytes, the size a crawl is billed in.

    .venv/bin/python benchmarks/read_warc.py                    # 50 MB file, 5 repeats
    .venv/bin/python benchmarks/read_warc.py --size-mb 200 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

ENGINES = ("warcio", "fastwarc")


def read_once(path: Path, engine: str) -> tuple[int, float, float]:
    """(records, wall seconds, CPU seconds) for one full read of ``path``."""
    from pipeline.warc_reader import iter_records

    wall, cpu = time.perf_counter(), time.process_time()
    records = sum(1 for _ in iter_records(lambda: path.open("rb"), path.name, 5_000_000, engine))  # type: ignore[arg-type]
    return records, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warc", type=Path, help="read this file instead of building one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.warc
        if path is None:
            import bench_warc

            path = Path(tmp) / "read.warc.gz"
            bench_warc.build_warc(path, size_mb=args.size_mb)
        size_mb = path.stat().st_size / 1e6
        runs: dict[str, list[tuple[int, float, float]]] = {engine: [] for engine in ENGINES}
        for engine in ENGINES:  # warm-up: imports, page cache
            read_once(path, engine)
        for _ in range(args.repeats):
            for engine in ENGINES:
                runs[engine].append(read_once(path, engine))

    print(f"{path.name}: {size_mb:.1f} MB gzip-per-record, {runs['warcio'][0][0]} records, "
          f"median of {args.repeats} interleaved repeats")
    print(f"{'engine':<10} {'MB/s':>8} {'records/s':>10} {'wall s':>8} {'CPU s':>8}")
    for engine in ENGINES:
        records = runs[engine][0][0]
        wall = statistics.median(r[1] for r in runs[engine])
        cpu = statistics.median(r[2] for r in runs[engine])
        print(f"{engine:<10} {size_mb / wall:>8.1f} {records / wall:>10.0f} {wall:>8.2f} {cpu:>8.2f}")
    speedup = statistics.median(r[1] for r in runs["warcio"]) / statistics.median(r[1] for r in runs["fastwarc"])
    print(f"fastwarc reads {speedup:.2f}x as fast as warcio")


if __name__ == "__main__":
    main()
