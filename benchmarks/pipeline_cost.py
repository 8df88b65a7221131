"""Cost per document of `refinery run`: engine x runner x workers, on real pages, against plain loops.

(Issue 16 calls it benchmarks/pipeline.py; a script of that name in benchmarks/ would shadow the
`pipeline` package for every other benchmark run as a script, as tokenize_stage.py avoids.)

The input is a gzip-per-record WARC of every shared real page (bench_warc.py), replicated
``--copies`` times with distinct URLs. Each configuration is one `refinery run` with the default
web recipe (configs/commoncrawl.yaml; only ``extract.engine`` changes) in its own process tree,
and the configurations run interleaved, so that this machine's drift hits them alike. Two plain
single-process loops (read + decode + extract, nothing else) over the same file are the ceilings,
and two such loops run at once give the machine's own 2-process efficiency, the ceiling of any
2-worker run.

Columns:
  docs/s/core   input HTML records / wall seconds / workers ("plain loops at once": each reads the
                whole input, so records / wall; they measure how far this machine scales at all)
  CPU-s         CPU seconds of every process of the run (driver, workers, extraction children, and
                on Dask the scheduler and nannies), sampled with psutil every 0.2 s
  PSS/worker    the largest peak, over the run, of one worker's proportional set size plus its
                extraction child's (the driver process is the worker with 1 DirectRunner worker)
  shuffle MB    bytes the Dask file shuffle wrote under --temp_location (peak size of that folder)

    .venv/bin/python benchmarks/pipeline_cost.py                       # everything: ~40 min on 2 cores
    .venv/bin/python benchmarks/pipeline_cost.py --copies 1 --engines resiliparse --runners direct --workers 1

It prints the table, then each floor of issue 16 with the figures it compares.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402  (a dependency of distributed, in the dev extras)

ENGINES = ("trafilatura", "resiliparse")
RUNNERS = ("direct", "dask")
REFINERY = [sys.executable, "-m", "pipeline.cli"]
# The input is one file, read in byte ranges of this size so that workers share it, as a 1 GB
# CommonCrawl WARC is shared at the default 64 MB.
SPLIT_BYTES = 4_000_000


@dataclass
class Figures:
    wall: float
    cpu: float
    pss_mb: float = 0.0
    shuffle_mb: float | None = None
    kept: int | None = None


@dataclass
class _Tracker:
    """Samples a set of process trees: CPU by pid (last seen) and the peak PSS of each worker tree."""

    roots: list[psutil.Process]
    workers: list[psutil.Process] = field(default_factory=list)
    shuffle_dir: Path | None = None
    cpu: dict[int, float] = field(default_factory=dict)
    peak_pss: float = 0.0
    peak_shuffle: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "_Tracker":
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        for root in self.roots:
            for proc in _tree(root):
                try:
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass
        for worker in self.workers or self.roots:
            total = 0
            for proc in _tree(worker):
                try:
                    total += proc.memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak_pss = max(self.peak_pss, total / 1e6)
        if self.shuffle_dir is not None:
            self.peak_shuffle = max(self.peak_shuffle, _folder_bytes(self.shuffle_dir))


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def _run_args(warc: Path, engine: str, out: Path) -> list[str]:
    return [*REFINERY, "run", "--input", str(warc), "--output", str(out), "--overwrite",
            "--set", f"extract.engine={engine}", "--set", f"read.split_bytes={SPLIT_BYTES}"]


def run_direct(warc: Path, engine: str, workers: int, out: Path) -> Figures:
    cmd = [*_run_args(warc, engine, out), "--direct_num_workers", str(workers)]
    if workers > 1:
        cmd += ["--direct_running_mode", "multi_processing"]
    started = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tracker = _Tracker([proc]).start()
    if workers > 1:
        # The SDK worker processes are the driver's children; wait until they exist.
        while proc.poll() is None and len(_python_children(proc)) < workers:
            time.sleep(0.1)
        tracker.workers = _python_children(proc)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    tracker.stop()
    if proc.returncode != 0:
        raise SystemExit(f"refinery run failed ({proc.returncode}): {stderr.strip().splitlines()[-1:]}")
    return Figures(wall, sum(tracker.cpu.values()), tracker.peak_pss, None, _kept(out))


def _python_children(proc: psutil.Process) -> list[psutil.Process]:
    """The SDK worker processes: Beam starts each through ``sh -c``, so they are grandchildren."""
    try:
        return [c for c in proc.children(recursive=True)
                if "python" in c.name().lower() and "sdk_worker_main" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


_CLUSTER = """
import sys, time, os
import dask
from dask.distributed import LocalCluster, Client
dask.config.set({"distributed.worker.daemon": False})  # extraction starts a child process per worker
cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                       memory_limit="4GiB", dashboard_address=None)
client = Client(cluster)
print(cluster.scheduler_address, *client.run(os.getpid).values(), flush=True)
sys.stdin.read()
"""


def run_dask(warc: Path, engine: str, workers: int, out: Path, temp: Path) -> Figures:
    """One run on a fresh LocalCluster of ``workers`` processes x 1 thread, living in its own process."""
    cluster = psutil.Popen([sys.executable, "-c", _CLUSTER, str(workers)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address, *pids = cluster.stdout.readline().split()  # type: ignore[union-attr]
    time.sleep(1.0)  # let the workers settle before the CPU baseline is taken
    baseline = _Tracker([cluster])
    baseline._sample()
    shuffle = temp / "shuffle"
    cmd = [*_run_args(warc, engine, out), "--runner", "pipeline.dask_runner.DaskRunner",
           f"--dask_client_address={address}", f"--temp_location={shuffle}"]
    started = time.perf_counter()
    driver = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tracker = _Tracker([cluster, driver], workers=[psutil.Process(int(p)) for p in pids], shuffle_dir=shuffle)
    tracker.start()
    _, stderr = driver.communicate()
    wall = time.perf_counter() - started
    tracker.stop()
    cluster.stdin.close()  # type: ignore[union-attr]
    cluster.wait(timeout=60)
    if driver.returncode != 0:
        raise SystemExit(f"refinery run on Dask failed ({driver.returncode}): {stderr.strip().splitlines()[-1:]}")
    cpu = sum(tracker.cpu.values()) - sum(baseline.cpu.values())
    return Figures(wall, cpu, tracker.peak_pss, tracker.peak_shuffle / 1e6, _kept(out))


def _kept(out: Path) -> int:
    return json.loads((out / "stats.json").read_text())["totals"]["kept"]


_LOOP = """
import sys, time, resource
sys.path.insert(0, sys.argv[3])
from filters.html import ExtractOptions, page_text
from pipeline.warc_reader import iter_records
options = ExtractOptions(engine=sys.argv[2])
for record in iter_records(lambda: open(sys.argv[1], "rb"), sys.argv[1], 5_000_000):
    if record.payload:
        page_text(record.payload, (record.http_headers or {}).get("content-type"), record.url, options)
"""


def run_loop(warc: Path, engine: str, at_once: int = 1) -> Figures:
    """The ceiling: read, decode and extract every page in one plain loop, in a fresh process.

    ``at_once`` > 1 starts that many identical loops together: the machine's own parallel
    efficiency (one loop's wall over the pair's), which no pipeline can beat. On this project's
    2-core VM, trafilatura does not scale as resiliparse does (issue 16's closing notes).
    """
    started = time.perf_counter()
    procs = [psutil.Popen([sys.executable, "-c", _LOOP, str(warc), engine, str(REPO)]) for _ in range(at_once)]
    tracker = _Tracker(procs).start()
    for proc in procs:
        proc.wait()
    wall = time.perf_counter() - started
    tracker.stop()
    return Figures(wall, sum(tracker.cpu.values()), tracker.peak_pss)


def html_records(warc: Path) -> int:
    from filters.html import html_skip_reason
    from pipeline.warc_reader import iter_records

    return sum(
        1 for r in iter_records(lambda: warc.open("rb"), str(warc), 5_000_000)
        if not html_skip_reason(r.record_type, r.http_status, (r.http_headers or {}).get("content-type"), r.payload)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4],
                        help="input sizes, in copies of the real pages (default: 1 4)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=RUNNERS)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats of the whole set")
    parser.add_argument("--no-loops", action="store_true", help="skip the plain-loop ceilings")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip the start-up runs (a tiny input per runner, engine and workers)")
    parser.add_argument("--workdir", default="/tmp/refinery-bench", help="where inputs are built (kept)")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    args = parser.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    inputs: dict[int, tuple[Path, int]] = {}
    for copies in args.copies:
        warc = work / f"pages-x{copies}.warc.gz"
        if not warc.exists():
            from bench_warc import build_warc

            print(f"building {warc} ...", flush=True)
            build_warc(warc, copies=copies)
        inputs[copies] = (warc, html_records(warc))
        print(f"input x{copies}: {inputs[copies][1]} HTML records, {warc.stat().st_size / 1e6:.0f} MB gzipped")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n", flush=True)

    results: dict[tuple, list[Figures]] = {}
    # Each plain loop runs right before the 1-worker DirectRunner run it is compared with, and the
    # engines alternate: this machine's speed drifts by a third within minutes, so pairs that a
    # floor divides must run side by side, not a phase apart.
    plan: list[tuple] = []
    paired = "direct" in args.runners and 1 in args.workers
    for copies in args.copies:
        if not (paired or args.no_loops):
            plan += [(copies, "loop", engine, 1) for engine in args.engines]
        for runner in args.runners:
            for workers in args.workers:
                for engine in args.engines:
                    if runner == "direct" and workers == 1 and not args.no_loops:
                        plan.append((copies, "loop", engine, 1))
                        if 2 in args.workers:  # the machine's ceiling for the 2-worker efficiency
                            plan.append((copies, "loop", engine, 2))
                    plan.append((copies, runner, engine, workers))
    for repeat in range(args.repeats):
        for key in plan:
            copies, runner, engine, workers = key
            warc = inputs[copies][0]
            with tempfile.TemporaryDirectory(dir=work) as temp:
                out = Path(temp) / "out"
                if runner == "loop":
                    figures = run_loop(warc, engine, at_once=workers)
                elif runner == "direct":
                    figures = run_direct(warc, engine, workers, out)
                else:
                    figures = run_dask(warc, engine, workers, out, Path(temp))
            results.setdefault(key, []).append(figures)
            print(f"  [{repeat + 1}/{args.repeats}] x{copies} {runner} {engine} x{workers}: "
                  f"{figures.wall:.1f} s wall, {figures.cpu:.1f} CPU-s", flush=True)

    # Start-up: the same runs on a tiny input (a few pages). Issue 16 judges parallel efficiency
    # only "on an input big enough that start-up is under 5% of the run"; this says whether it is.
    startup: dict[tuple, float] = {}
    if not args.no_startup:
        tiny = work / "pages-tiny.warc.gz"
        if not tiny.exists():
            from bench_warc import build_warc

            build_warc(tiny, size_mb=0.2)
        for runner, engine, workers in sorted({(k[1], k[2], k[3]) for k in plan if k[1] != "loop"}):
            with tempfile.TemporaryDirectory(dir=work) as temp:
                out = Path(temp) / "out"
                run = run_direct(tiny, engine, workers, out) if runner == "direct" else \
                    run_dask(tiny, engine, workers, out, Path(temp))
            startup[(runner, engine, workers)] = run.wall
            print(f"  start-up {runner} {engine} x{workers}: {run.wall:.1f} s wall on {tiny.name}", flush=True)

    best = {key: min(runs, key=lambda f: f.wall) for key, runs in results.items()}
    print_table(best, inputs)
    print_floors(best, inputs, startup)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"copies": k[0], "runner": k[1], "engine": k[2], "workers": k[3], **vars(f)} for k, f in best.items()],
            indent=1))


def _docs_per_core(key: tuple, figures: Figures, inputs: dict[int, tuple[Path, int]]) -> float:
    # Loops run at once each read the whole input; a run's workers share it.
    per_process = inputs[key[0]][1] / figures.wall
    return per_process if key[1] == "loop" else per_process / key[3]


def print_table(best: dict[tuple, Figures], inputs: dict[int, tuple[Path, int]]) -> None:
    header = (f"| input | runner | engine | workers | wall s | docs/s/core | CPU-s | PSS/worker MB "
              f"| shuffle MB | kept |")
    print("\n" + header)
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, f in best.items():
        copies, runner, engine, workers = key
        name = {"loop": "plain loop" if workers == 1 else "plain loops at once", "direct": "DirectRunner",
                "dask": "Dask"}[runner]
        shuffle = "-" if f.shuffle_mb is None else f"{f.shuffle_mb:.0f}"
        kept = "-" if f.kept is None else str(f.kept)
        print(f"| x{copies} | {name} | {engine} | {workers} | {f.wall:.1f} | {_docs_per_core(key, f, inputs):.1f} "
              f"| {f.cpu:.0f} | {f.pss_mb:.0f} | {shuffle} | {kept} |")


def print_floors(best: dict[tuple, Figures], inputs: dict[int, tuple[Path, int]],
                 startup: dict[tuple, float] | None = None) -> None:
    """Each floor of issue 16 that this run has the figures for: the ratio, the floor, and whether it holds."""
    rows = []

    def rate(key: tuple) -> float | None:
        return _docs_per_core(key, best[key], inputs) if key in best else None

    for copies in sorted(inputs):
        for runner in RUNNERS:
            for workers in (1, 2):
                fast, slow = rate((copies, runner, "resiliparse", workers)), rate((copies, runner, "trafilatura", workers))
                if fast and slow:
                    rows.append((f"x{copies} {runner} x{workers}: resiliparse / trafilatura docs/s/core",
                                 fast / slow, ">= 5", fast / slow >= 5))
                if fast:
                    rows.append((f"x{copies} {runner} x{workers}: resiliparse docs/s/core", fast, ">= 100", fast >= 100))
        for engine in ENGINES:
            loop, direct = rate((copies, "loop", engine, 1)), rate((copies, "direct", engine, 1))
            if loop and direct:
                rows.append((f"x{copies} {engine}: DirectRunner x1 / plain loop", direct / loop,
                             ">= 0.9" if engine == "trafilatura" else "(info)", direct / loop >= 0.9))
            alone, pair = best.get((copies, "loop", engine, 1)), best.get((copies, "loop", engine, 2))
            if alone and pair:
                rows.append((f"x{copies} {engine}: machine ceiling, two plain loops at once (one's wall / the pair's)",
                             alone.wall / pair.wall, "(info: no run can beat it)", True))
            for runner in RUNNERS:
                one, two = best.get((copies, runner, engine, 1)), best.get((copies, runner, engine, 2))
                if one and two:
                    efficiency = one.wall / (2 * two.wall)
                    share = max(((startup or {}).get((runner, engine, w), 0.0) / f.wall for w, f in ((1, one), (2, two))))
                    judged = share < 0.05
                    rows.append((f"x{copies} {runner} {engine}: 2-worker efficiency (start-up {share:.0%} of a run)",
                                 efficiency, ">= 0.90" if judged or not startup else "(start-up >= 5%: input too small)",
                                 efficiency >= 0.9 if judged or not startup else True))
            for workers in (1, 2):
                direct_f, dask_f = best.get((copies, "direct", engine, workers)), best.get((copies, "dask", engine, workers))
                if direct_f and dask_f:
                    ratio = dask_f.cpu / direct_f.cpu
                    rows.append((f"x{copies} {engine} x{workers}: Dask CPU-s / DirectRunner CPU-s", ratio, "<= 1.1",
                                 ratio <= 1.1))
                if dask_f and dask_f.shuffle_mb is not None:
                    per_input = dask_f.shuffle_mb * 1e6 / inputs[copies][0].stat().st_size
                    rows.append((f"x{copies} {engine} Dask x{workers}: shuffle bytes / input byte", per_input,
                                 "(info)", True))
    small, large = min(inputs), max(inputs)
    if large > small:
        for runner in RUNNERS:
            for engine in ENGINES:
                for workers in (1, 2):
                    a, b = best.get((small, runner, engine, workers)), best.get((large, runner, engine, workers))
                    if a and b:
                        ratio = b.pss_mb / a.pss_mb
                        rows.append((f"{runner} {engine} x{workers}: PSS/worker x{large} / x{small}", ratio,
                                     "<= 1.15", ratio <= 1.15))
    if rows:
        print("\n| floor | measured | floor | holds |\n|---|---:|---|---|")
        for name, value, floor, holds in rows:
            print(f"| {name} | {value:.2f} | {floor} | {'yes' if holds else 'NO'} |")


if __name__ == "__main__":
    main()
