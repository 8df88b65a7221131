"""Dedup benchmark: Gutenberg gold, accuracy on mutated real text, signature speed, Beam scale.

Run:  .venv/bin/python benchmarks/dedup.py                      # everything (about 10-20 min on 2 cores)
      .venv/bin/python benchmarks/dedup.py --parts gutenberg,speed --speed-docs 300   # a quick look
      .venv/bin/python benchmarks/dedup.py --parts scale --scale-sizes 10000,40000
      .venv/bin/python benchmarks/dedup.py --parts scale --runner dask --workers 2   # per-worker RSS (640 MiB limit)

Parts:
  gutenberg  MinHashDedup on the 11 Gutenberg editions (4 works): same-work pairs found, cross-work merges.
  accuracy   MinHashDedup on >= N mutated real documents (benchmarks/dedup_data.py); ground truth is
             exact word-5-gram Jaccard for every pair inside a mutation family, plus every
             cross-family pair that shares an LSH band. Predicted pairs are all pairs of a cluster.
  speed      signatures/s on one core: our vectorized MinHasher vs datasketch MinHash.update per
             shingle (the naive baseline) and MinHash.bulk, on the same documents.
  scale      ExactDedup + MinHashDedup over generated documents, each size in its own subprocess:
             wall time, the launcher's peak RSS and the largest worker's. On the DirectRunner
             (default) every PCollection lives in the runner's memory, so its RSS grows with the
             corpus by design; `--runner dask --workers 2` runs the same graph on a Dask
             LocalCluster whose worker processes are the figure that must stay flat. A worker
             holds partitions in memory until its RSS passes 70% of --worker-memory, then spills
             them to disk: its peak rises with the corpus only until then. The default limit
             (640 MiB) is one the 40k and 160k runs outgrow, so the table shows the plateau.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from datasketch import MinHash

from filters.document import Document
from filters.minhash import DedupConfig, MinHasher, band_keys, estimate_jaccard, normalize_for_dedup
from pipeline.dedup import ExactDedup, MinHashDedup

try:
    from benchmarks import dedup_data
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    import dedup_data  # type: ignore[no-redef]

GUTENBERG = dedup_data.DATA / "dedup" / "gutenberg_edition_groups"
MEAN_FAMILY_SIZE = 3.5  # 1 original + mean of dedup_data.family_docs' mutant counts


def to_document(d: dedup_data.BenchDoc) -> Document:
    return Document(id=d.id, text=d.text, timestamp=d.timestamp, source="bench")


def shingle_set(text: str, n: int = 5) -> frozenset[str]:
    """Ground-truth shingles, as strings: independent of the hashing under test."""
    toks = normalize_for_dedup(text).split()
    if len(toks) < n:
        return frozenset([" ".join(toks)]) if toks else frozenset()
    return frozenset(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def run_clusters(docs: list[Document], config: DedupConfig) -> tuple[dict[str, str], float]:
    """Run MinHashDedup on ``docs``; returns doc id -> cluster id (clustered docs only), seconds.

    The ids of the documents the stage dropped are in ``run_clusters.dropped`` after a call.
    """
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        p = beam.Pipeline(runner="DirectRunner")
        out = p | "Docs" >> beam.Create(docs) | MinHashDedup(config)
        _ = out["clusters"] | beam.Map(json.dumps) | beam.io.WriteToText(f"{tmp}/clusters")
        p.run().wait_until_finish()
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for f in Path(tmp).glob("clusters*") for line in f.read_text().splitlines()]
    run_clusters.dropped = {r["doc_id"] for r in rows if not r["kept"]}  # type: ignore[attr-defined]
    return {r["doc_id"]: r["cluster_id"] for r in rows}, seconds


def predicted_pairs(cluster_of: dict[str, str]) -> set[tuple[str, str]]:
    members = defaultdict(list)
    for doc_id, cluster in cluster_of.items():
        members[cluster].append(doc_id)
    return {tuple(sorted(p)) for ids in members.values() for p in combinations(ids, 2)}


def part_gutenberg(config: DedupConfig) -> None:
    files = sorted(GUTENBERG.glob("*.txt"))
    docs = []
    for f in files:
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        docs.append(Document(id=f.name, text=text))
    cluster_of, seconds = run_clusters(docs, config)
    work = {f.name: f.name.split("__")[0] for f in files}
    same = [p for p in combinations(sorted(work), 2) if work[p[0]] == work[p[1]]]
    found = sum(1 for a, b in same if a in cluster_of and cluster_of.get(a) == cluster_of.get(b))
    wrong = sum(1 for a, b in predicted_pairs(cluster_of) if work[a] != work[b])
    print("\n## Gutenberg edition groups (11 texts, 4 works)")
    print("| same-work pairs found | cross-work pairs merged | clusters | seconds |")
    print("|---|---|---|---|")
    print(f"| {found}/{len(same)} | {wrong} | {len(set(cluster_of.values()))} | {seconds:.1f} |")


def part_accuracy(n_docs: int, config: DedupConfig) -> None:
    bench = dedup_data.corpus(n_docs)
    shingles = {d.id: shingle_set(d.text, config.ngram) for d in bench}
    family = {d.id: d.family for d in bench}
    truth: dict[tuple[str, str], float] = {}
    by_family = defaultdict(list)
    for d in bench:
        by_family[d.family].append(d.id)
    for ids in by_family.values():
        for a, b in combinations(sorted(ids), 2):
            truth[(a, b)] = jaccard(shingles[a], shingles[b])

    # Cross-family LSH candidates, found with the pure functions, to check families are unrelated.
    hasher, (bands, rows) = MinHasher(config.num_perm, config.seed), config.band_layout()
    buckets, sigs = defaultdict(list), {}
    for d in bench:
        sigs[d.id] = hasher(d.text, config.ngram)
        for band, key in enumerate(band_keys(sigs[d.id], bands, rows)):
            buckets[(band, key)].append(d.id)
    candidates = {tuple(sorted(p)) for ids in buckets.values() for p in combinations(ids, 2)}
    cross = {p for p in candidates if family[p[0]] != family[p[1]]}
    for pair in cross:
        truth[pair] = jaccard(shingles[pair[0]], shingles[pair[1]])
    verified = {p for p in candidates if estimate_jaccard(sigs[p[0]], sigs[p[1]]) >= config.threshold}

    print(f"\n## Accuracy on {len(bench)} mutated real documents ({len(by_family)} families)")
    print(f"within-family pairs: {sum(family[a] == family[b] for a, b in truth)}, "
          f"of them J>=0.85: {sum(j >= 0.85 and family[a] == family[b] for (a, b), j in truth.items())}, "
          f"J in [0.7,0.85): {sum(0.7 <= j < 0.85 and family[a] == family[b] for (a, b), j in truth.items())}")
    print(f"cross-family LSH candidate pairs: {len(cross)}, max exact J {max((truth[p] for p in cross), default=0):.3f}, "
          f">= {config.threshold}: {sum(truth[p] >= config.threshold for p in cross)}")
    print("\nPair decisions (every pair sharing a bucket; the rule each LSH/verified edge applies):")
    print("| pairs | count | precision J>=0.75 | precision J>=0.8 |")
    print("|---|---|---|---|")
    for name, pairs in (("LSH candidates", candidates), ("candidates verified by signature estimate", verified)):
        print(f"| {name} | {len(pairs)} | {sum(truth[p] >= config.threshold - 0.05 for p in pairs) / max(1, len(pairs)):.4f}"
              f" | {sum(truth[p] >= config.threshold for p in pairs) / max(1, len(pairs)):.4f} |")
    print("\nClusters from the Beam pipeline (connected components make pairs by transitivity):")
    print("precision: share of predicted pairs (all pairs of a cluster) with exact J >= t; t = 0.75 leaves a "
          "symmetric grey band [0.75, 0.85) around the threshold, matching recall's J >= 0.85")
    print("dropped-doc precision (J >= 0.75 / J >= 0.8): share of dropped documents whose exact J with the kept "
          "document of their cluster reaches it")
    print("| verify_jaccard | recall J>=0.85 | recall J>=0.8 | precision t=0.75 | precision t=0.8 "
          "| precision t=0.7 | dropped-doc precision | pairs J>=0.85 with a copy removed | predicted pairs "
          "| cross-family merges | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for verify in (False, True):
        cfg = dataclasses.replace(config, verify_jaccard=verify)
        cluster_of, seconds = run_clusters([to_document(d) for d in bench], cfg)
        predicted = predicted_pairs(cluster_of)
        for pair in predicted - truth.keys():  # merged by transitivity across families
            truth[pair] = jaccard(shingles[pair[0]], shingles[pair[1]])
        row = [str(verify)]
        for t in (0.85, config.threshold):
            positives = {p for p, j in truth.items() if j >= t}
            row.append(f"{len(positives & predicted) / max(1, len(positives)):.4f}")
        for t in (config.threshold - 0.05, config.threshold, 0.7):
            row.append(f"{sum(truth[p] >= t for p in predicted) / max(1, len(predicted)):.4f}")
        kept = {c for c in cluster_of.values()}
        dropped = [(d, cluster_of[d]) for d in run_clusters.dropped]  # type: ignore[attr-defined]
        good = sum(jaccard(shingles[d], shingles[c]) >= config.threshold - 0.05 for d, c in dropped)
        strict = sum(jaccard(shingles[d], shingles[c]) >= config.threshold for d, c in dropped)
        row.append(f"{good / max(1, len(dropped)):.4f} / {strict / max(1, len(dropped)):.4f} "
                   f"({len(dropped)} dropped, {len(kept)} clusters)")
        dropped_ids = {d for d, _ in dropped}
        duplicates = [p for p, j in truth.items() if j >= 0.85]
        resolved = sum(a in dropped_ids or b in dropped_ids for a, b in duplicates) / max(1, len(duplicates))
        row += [f"{resolved:.4f}", str(len(predicted)), str(sum(family[a] != family[b] for a, b in predicted)),
                f"{seconds:.1f}"]
        print("| " + " | ".join(row) + " |")


def part_speed(n_docs: int, config: DedupConfig) -> None:
    texts = [d.text for d in dedup_data.corpus(n_docs)][:n_docs]
    hasher = MinHasher(config.num_perm, config.seed)
    n = config.ngram

    def ours(text: str):
        return hasher(text, n)

    def shingles_bytes(text: str) -> list[bytes]:
        return [s.encode("utf-8") for s in shingle_set(text, n)]

    def naive(text: str):
        m = MinHash(num_perm=config.num_perm, seed=config.seed)
        for s in shingles_bytes(text):
            m.update(s)
        return m

    def bulk(batch: list[str]):
        return MinHash.bulk([shingles_bytes(t) for t in batch], num_perm=config.num_perm, seed=config.seed)

    rows = []
    for name, fn in (("ours: MinHasher (numpy, whole doc)", ours), ("datasketch MinHash.update per shingle", naive)):
        for t in texts[:20]:  # burn-in
            fn(t)
        start = time.process_time()
        for t in texts:
            fn(t)
        rows.append((name, len(texts) / (time.process_time() - start)))
    bulk(texts[:20])
    start = time.process_time()
    bulk(texts)
    rows.append(("datasketch MinHash.bulk (hashes per shingle)", len(texts) / (time.process_time() - start)))
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"\n## Signature speed, one core, {len(texts)} docs of {words:.0f} words, num_perm={config.num_perm}")
    print("| method | signatures/s/core | vs naive |")
    print("|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / rows[1][1]:.1f}x |")


def _write_count(count: int, path: str) -> None:
    Path(path).write_text(str(count), encoding="utf-8")


def _count_to(pcoll, name: str, out_dir: Path) -> None:
    """Counted inside the pipeline, so the figure does not depend on the runner's metrics support."""
    _ = (pcoll | f"Count{name}" >> beam.combiners.Count.Globally()
         | f"Write{name}" >> beam.Map(_write_count, str(out_dir / name)))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_child(n_docs: int, config: DedupConfig, runner: str, mode: str, workers: int, worker_memory: str) -> None:
    """One scale run (in a subprocess): documents are generated inside the pipeline, shard by shard."""
    families = round(n_docs / MEAN_FAMILY_SIZE)
    shards = [(s, min(s + 250, families)) for s in range(0, families, 250)]

    def generate(shard: tuple[int, int]):
        for fam in range(*shard):
            yield from (to_document(d) for d in dedup_data.family_docs(fam))

    cluster = None
    if runner == "dask":
        from dask.distributed import Client, LocalCluster

        # Worker processes with one thread each and a memory limit: dask spills a worker's held
        # partitions to disk past 60% of it, as a production shuffle would. One partition per
        # shard of generated documents, so partitions grow in number, not in size, with the corpus.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=worker_memory, dashboard_address=None)
        options = PipelineOptions(["--runner=pipeline.dask_runner.DaskRunner",
                                   f"--dask_client_address={cluster.scheduler_address}", "--dask_partition_size=1"])
    else:
        options = PipelineOptions(runner="DirectRunner", direct_running_mode=mode, direct_num_workers=workers)
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp)
        start = time.perf_counter()
        p = beam.Pipeline(options=options)
        docs = (p | "Shards" >> beam.Create(shards) | "Generate" >> beam.FlatMap(generate)
                | "Shuffle" >> beam.Reshuffle())
        exact = docs | ExactDedup(config)
        near = exact["kept"] | MinHashDedup(config)
        _count_to(docs, "docs", counts)
        _count_to(exact["dropped"], "exact_dropped", counts)
        _count_to(near["dropped"], "near_dropped", counts)
        result = p.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - start
        figures = {name: int((counts / name).read_text()) for name in ("docs", "exact_dropped", "near_dropped")}
    if cluster is not None:
        with Client(cluster) as client:
            worker_rss = max(client.run(_peak_rss_mb).values())
        cluster.close()
        busy: list[str] = []
    else:
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
        busy = sorted({k.split("round_")[1][:2] for k, v in counters.items() if "round_" in k and v})
    print(json.dumps({**figures, "seconds": seconds, "max_rss_mb": _peak_rss_mb(), "worker_max_rss_mb": worker_rss,
                      "partitions": len(shards), "rounds_rewired": busy}))


def part_scale(sizes: list[int], config: DedupConfig, runner: str, mode: str, workers: int,
               worker_memory: str) -> None:
    where = (f"Dask LocalCluster, {workers} worker processes x 1 thread, memory_limit {worker_memory}"
             if runner == "dask" else f"DirectRunner {mode} x{workers}")
    print(f"\n## Beam scale: ExactDedup + MinHashDedup, {where}, max_rounds={config.max_rounds}")
    if runner == "dask":
        print("RSS: the launching process (Dask scheduler + Beam graph) and the largest worker's own peak "
              "(getrusage on the worker)")
    else:
        print("RSS: the runner process (in_memory: also the only worker) and the largest SDK worker subprocess")
    print("| target docs | docs | partitions | exact dropped | near dropped | wall s | docs/s | launcher peak RSS MB "
          "| worker peak RSS MB | rounds that rewired |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        cmd = [sys.executable, __file__, "--scale-child", str(n), "--max-rounds", str(config.max_rounds),
               "--runner", runner, "--direct-mode", mode, "--workers", str(workers), "--worker-memory", worker_memory]
        here = str(Path(__file__).resolve().parent)  # worker processes must import dedup_data too
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            print(f"| {n} | failed: {proc.stderr.strip().splitlines()[-1:]} |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {n} | {r['docs']} | {r['partitions']} | {r['exact_dropped']} | {r['near_dropped']} | "
              f"{r['seconds']:.0f} | {r['docs'] / r['seconds']:.0f} | {r['max_rss_mb']:.0f} | "
              f"{r['worker_max_rss_mb']:.0f} | {','.join(r['rounds_rewired']) or '-'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="gutenberg,accuracy,speed,scale",
                    help="comma list of gutenberg, accuracy, speed, scale (default: all)")
    ap.add_argument("--accuracy-docs", type=int, default=10000, help="documents in the accuracy set (default 10000)")
    ap.add_argument("--speed-docs", type=int, default=2000, help="documents signed per method (default 2000)")
    ap.add_argument("--scale-sizes", default="10000,40000,160000", help="comma list of corpus sizes for scale")
    ap.add_argument("--max-rounds", type=int, default=DedupConfig().max_rounds, help="connected-components rounds")
    ap.add_argument("--runner", default="direct", choices=("direct", "dask"),
                    help="runner of the scale part: the DirectRunner, or our DaskRunner on a local cluster")
    ap.add_argument("--direct-mode", default="in_memory", choices=("in_memory", "multi_processing"),
                    help="DirectRunner running mode for the scale part (default in_memory)")
    ap.add_argument("--workers", type=int, default=1, help="workers for the scale part (default 1)")
    ap.add_argument("--worker-memory", default="640MiB",
                    help="Dask worker memory_limit: past 60%% of it in data, or 70%% in RSS, a worker "
                         "spills what it holds; past 80%% it pauses, past 95%% it is restarted "
                         "(default 640MiB)")
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    config = DedupConfig(max_rounds=args.max_rounds)
    if args.scale_child:
        scale_child(args.scale_child, config, args.runner, args.direct_mode, args.workers, args.worker_memory)
        return
    print(f"# Dedup benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, Beam {beam.__version__}")
    print(f"config: threshold={config.threshold} num_perm={config.num_perm} bands x rows={config.band_layout()} "
          f"ngram={config.ngram}")
    parts = set(args.parts.split(","))
    if "gutenberg" in parts:
        part_gutenberg(config)
    if "accuracy" in parts:
        part_accuracy(args.accuracy_docs, config)
    if "speed" in parts:
        part_speed(args.speed_docs, config)
    if "scale" in parts:
        part_scale([int(s) for s in args.scale_sizes.split(",")], config, args.runner, args.direct_mode, args.workers,
                   args.worker_memory)


if __name__ == "__main__":
    main()
