"""ExactDedup, MinHashDedup and ConnectedComponents under TestPipeline, on real text.

Documents are windows and light edits of WikiText-2 articles, so their Jaccard relations are
known by construction; the Gutenberg edition groups are real near-duplicates with human gold.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from filters.document import Document
from filters.minhash import DedupConfig, MinHasher, band_keys, estimate_jaccard
from pipeline.connected_components import ConnectedComponents
from pipeline.dedup import (
    DUPLICATE_ID,
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    SEEN_IN_PREVIOUS_DUMP,
    ExactDedup,
    MinHashDedup,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
WIKITEXT = DATA / "quality" / "positive" / "wikipedia" / "wikitext-2-raw-v1_wiki.test.raw"
GUTENBERG = DATA / "dedup" / "gutenberg_edition_groups"


@pytest.fixture(scope="module")
def words() -> list[str]:
    return WIKITEXT.read_text(encoding="utf-8").split()


def window(words: list[str], start: int, length: int = 600) -> str:
    return " ".join(words[start : start + length])


def edited(text: str, every: int, offset: int = 0) -> str:
    """Replace one word in ``every``: each edit removes 5 shingles, so J ~ 1 - 10/every."""
    toks = text.split()
    for i in range(offset, len(toks), every):
        toks[i] = f"edit{i}"
    return " ".join(toks)


def doc(doc_id: str, text: str, ts: str = "2020-01-01T00:00:00Z", quality: float | None = None) -> Document:
    return Document(id=doc_id, text=text, timestamp=ts, quality_score=quality)


def reasons(dropped) -> beam.PCollection:
    return dropped | beam.Map(lambda d: (d.doc.id, d.stage, d.reason))


def counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum(c.committed for c in found)


def run(p: BeamTestPipeline):
    result = p.run()
    result.wait_until_finish()
    return result


def test_exact_dedup_keeps_earliest_copy(words: list[str]) -> None:
    text = window(words, 0, 80)
    docs = [
        doc("late", text, ts="2021-05-01T00:00:00Z"),
        doc("early", text.upper().replace(" ", "  ,"), ts="2019-05-01T00:00:00Z"),
        doc("nostamp", text, ts=""),
        doc("other", window(words, 100, 80)),
    ]
    p = BeamTestPipeline(runner="DirectRunner")
    out = p | beam.Create(docs) | ExactDedup(DedupConfig())
    assert_that(out["kept"] | beam.Map(lambda d: d.id), equal_to(["early", "other"]), label="Kept")
    assert_that(
        reasons(out["dropped"]),
        equal_to([("late", "ExactDedup", EXACT_DUPLICATE), ("nostamp", "ExactDedup", EXACT_DUPLICATE)]),
        label="Dropped",
    )
    result = run(p)
    assert counter(result, "ExactDedup.dropped.exact_dedup.duplicate") == 2
    assert counter(result, "ExactDedup.kept") == 2


def test_minhash_dedup_several_components(words: list[str]) -> None:
    f1 = window(words, 0)
    f2 = window(words, 5000)
    docs = [
        doc("f1-copy-a", edited(f1, 100), ts="2020-06-01T00:00:00Z"),
        doc("f1-orig", f1, ts="2019-01-01T00:00:00Z"),
        doc("f1-copy-b", edited(f1, 90, 7), ts="2021-01-01T00:00:00Z"),
        doc("f2-low", f2, quality=0.2),
        doc("f2-high", edited(f2, 120), quality=0.9),
        doc("single-1", window(words, 10000)),
        doc("single-2", window(words, 12000)),
        doc("empty", "...", ts="2018-01-01T00:00:00Z"),
    ]
    p = BeamTestPipeline(runner="DirectRunner")
    out = p | beam.Create(docs) | MinHashDedup(DedupConfig())
    assert_that(
        out["kept"] | beam.Map(lambda d: d.id),
        equal_to(["f1-orig", "f2-high", "single-1", "single-2", "empty"]),
        label="Kept",
    )
    assert_that(
        reasons(out["dropped"]),
        equal_to([(i, "MinHashDedup", NEAR_DUPLICATE) for i in ("f1-copy-a", "f1-copy-b", "f2-low")]),
        label="Dropped",
    )
    expected_clusters = [
        {"doc_id": "f1-orig", "cluster_id": "f1-orig", "cluster_size": 3, "kept": True},
        {"doc_id": "f1-copy-a", "cluster_id": "f1-orig", "cluster_size": 3, "kept": False},
        {"doc_id": "f1-copy-b", "cluster_id": "f1-orig", "cluster_size": 3, "kept": False},
        {"doc_id": "f2-high", "cluster_id": "f2-high", "cluster_size": 2, "kept": True},
        {"doc_id": "f2-low", "cluster_id": "f2-high", "cluster_size": 2, "kept": False},
    ]
    assert_that(out["clusters"], equal_to(expected_clusters), label="Clusters")
    result = run(p)
    assert counter(result, "MinHashDedup.dropped.minhash_dedup.near_duplicate") == 3
    assert counter(result, "MinHashDedup.no_shingles") == 1
    assert counter(result, "MinHashDedup.in") == 8


def test_chain_joins_documents_that_are_not_directly_similar(words: list[str]) -> None:
    """A~B and B~C but the A-C edge is rejected by verification: only B joins them in one component.

    Only B is dropped: C does not resemble A, the copy the cluster keeps, so dropping C would lose a
    document with no near-duplicate left in the corpus.
    """
    a = window(words, 20000, 1000)
    b = edited(a, 70)  # J(a, b) = J(b, c) = 0.85, J(a, c) = 0.73
    texts = {"a": a, "b": b, "c": edited(b, 70, 35)}
    cfg = DedupConfig(verify_jaccard=True, num_perm=256, bands=32, rows=8)  # 256: tight estimates
    hasher = MinHasher(cfg.num_perm, cfg.seed)
    sigs = {name: hasher(text) for name, text in texts.items()}
    assert estimate_jaccard(sigs["a"], sigs["c"]) < cfg.threshold  # precondition of the scenario
    assert estimate_jaccard(sigs["a"], sigs["b"]) >= cfg.threshold
    assert estimate_jaccard(sigs["b"], sigs["c"]) >= cfg.threshold

    p = BeamTestPipeline(runner="DirectRunner")
    out = p | beam.Create([doc(n, t) for n, t in texts.items()]) | MinHashDedup(cfg)
    assert_that(out["kept"] | beam.Map(lambda d: d.id), equal_to(["a", "c"]), label="Kept")
    assert_that(
        out["clusters"] | beam.Map(lambda r: (r["doc_id"], r["cluster_id"], r["cluster_size"], r["kept"])),
        equal_to([("a", "a", 3, True), ("b", "a", 3, False), ("c", "a", 3, True)]),
        label="OneComponent",
    )
    result = run(p)
    assert counter(result, "MinHashDedup.verify.kept_unlike_cluster_root") == 1


def test_verify_jaccard_rejects_band_collisions_below_threshold(words: list[str]) -> None:
    """With 56 bands of 2 rows, a pair of Jaccard ~0.33 collides; only verification separates it."""
    docs = [doc("x", window(words, 30000)), doc("y", window(words, 30300))]
    loose = dict(bands=56, rows=2, max_rounds=3)  # two nodes converge in one round
    for verify, kept in ((False, ["x"]), (True, ["x", "y"])):
        p = BeamTestPipeline(runner="DirectRunner")
        out = p | beam.Create(docs) | MinHashDedup(DedupConfig(verify_jaccard=verify, **loose))
        assert_that(out["kept"] | beam.Map(lambda d: d.id), equal_to(kept))
        result = run(p)
        assert (counter(result, "MinHashDedup.verify.rejected_edges") > 0) == verify


def test_previous_dump_wins_over_its_near_duplicates(words: list[str]) -> None:
    old = window(words, 40000)
    cfg = DedupConfig(max_rounds=4)  # components of three nodes converge in two rounds
    sig = MinHasher(cfg.num_perm, cfg.seed)(old)
    store = [{"band": b, "bucket": k, "doc_id": "old"} for b, k in enumerate(band_keys(sig, 14, 8))]

    p1 = BeamTestPipeline(runner="DirectRunner")
    first = p1 | beam.Create([doc("old", old)]) | MinHashDedup(cfg)
    assert_that(first["band_keys"], equal_to(store), label="BandKeyStore")
    run(p1)

    p2 = BeamTestPipeline(runner="DirectRunner")
    previous = p2 | "Previous" >> beam.Create(store)
    docs = [doc("copy", edited(old, 100)), doc("copy-of-copy", edited(old, 80, 3)), doc("new", window(words, 42000))]
    out = p2 | "Docs" >> beam.Create(docs) | MinHashDedup(cfg, previous=previous)
    assert_that(out["kept"] | beam.Map(lambda d: d.id), equal_to(["new"]), label="Kept")
    assert_that(
        reasons(out["dropped"]),
        equal_to([(i, "MinHashDedup", SEEN_IN_PREVIOUS_DUMP) for i in ("copy", "copy-of-copy")]),
        label="Dropped",
    )
    assert_that(
        out["clusters"] | beam.Map(lambda r: (r["doc_id"], r["cluster_id"], r["kept"])),
        equal_to([("copy", "old", False), ("copy-of-copy", "old", False)]),
        label="Clusters",
    )
    run(p2)


def scrambled_path(n: int, offset: int) -> list[tuple[str, str]]:
    """A path graph whose labels are scrambled so the minimum sits mid-path (slow for naive CC)."""
    label = [f"n{(i * 37 + offset) % 1000:04d}" for i in range(n)]
    return [(label[i], label[i + 1]) for i in range(n - 1)]


def test_connected_components_finds_each_component_root() -> None:
    path_a, path_b = scrambled_path(60, 0), scrambled_path(25, 500)
    expected = []
    for edges in (path_a, path_b):
        nodes = {x for e in edges for x in e}
        root = min(nodes)
        expected += [(x, root) for x in nodes if x != root]
    p = BeamTestPipeline(runner="DirectRunner")
    roots = p | beam.Create(path_a + path_b + [("n9999", "n9999")]) | ConnectedComponents(max_rounds=8)
    assert_that(roots, equal_to(expected))
    run(p)


def test_connected_components_fails_loudly_when_not_converged() -> None:
    p = BeamTestPipeline(runner="DirectRunner")
    _ = p | beam.Create(scrambled_path(200, 0)) | ConnectedComponents(max_rounds=2)
    with pytest.raises(Exception, match="did not converge in max_rounds=2"):
        run(p)


def read_gutenberg(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # the -8 and 8-bit editions are ISO-8859-1


@pytest.mark.integration
def test_gutenberg_editions_cluster_by_work() -> None:
    files = sorted(GUTENBERG.glob("*.txt"))
    assert len(files) == 11
    docs = [Document(id=f.name, text=read_gutenberg(f)) for f in files]

    def check(rows: list[dict]) -> None:
        cluster = {r["doc_id"]: r["cluster_id"] for r in rows}
        work = {f.name: f.name.split("__")[0] for f in files}
        for x, y in combinations(sorted(work), 2):
            same = x in cluster and y in cluster and cluster[x] == cluster[y]
            assert same == (work[x] == work[y]), (x, y)
        per_cluster = defaultdict(list)
        for r in rows:
            per_cluster[r["cluster_id"]].append(r["kept"])
        assert len(per_cluster) == 4 and all(sum(k) == 1 for k in per_cluster.values())

    p = BeamTestPipeline(runner="DirectRunner")
    out = p | beam.Create(docs) | MinHashDedup(DedupConfig())
    assert_that(out["clusters"], check)
    run(p)


def test_exact_and_near_in_one_join_match_the_two_stages(words: list[str]) -> None:
    """Deduplicate(exact and near) joins documents once; its decisions are those of the two stages
    run one after the other, including exact copies, one id used twice and a shingle-less page."""
    base = [window(words, 50000 + 700 * i) for i in range(4)]
    docs = [doc("a", base[0], ts="2019-01-01T00:00:00Z"), doc("a-exact", base[0].upper()),
            doc("a-near", edited(base[0], 100)), doc("a-near-exact", edited(base[0], 100)),
            doc("b", base[1]), doc("b-near", edited(base[1], 80, 3), quality=0.5),
            doc("twice", base[2]), doc("twice", base[3]), doc("twice", base[2]),
            doc("empty", "..."), doc("empty-too", "!!")]
    cfg = DedupConfig(max_rounds=4)
    p = BeamTestPipeline(runner="DirectRunner")
    created = p | beam.Create(docs)
    together = created | "Together" >> MinHashDedup(cfg, exact=True)
    exact = created | "Exact" >> ExactDedup(cfg)
    apart = exact["kept"] | "Near" >> MinHashDedup(cfg)
    apart = {**apart, "dropped": (exact["dropped"], apart["dropped"]) | "AllDropped" >> beam.Flatten()}

    def collected(out: dict, name: str) -> beam.PCollection:
        as_rows = {"kept": lambda d: (d.id, d.text[:40]), "dropped": lambda d: (d.doc.id, d.stage, d.reason),
                   "clusters": lambda r: tuple(sorted(r.items())),
                   "band_keys": lambda r: tuple(sorted(r.items()))}
        return ([out[k] | f"{name}{k}" >> beam.Map(as_rows[k]) | f"{name}{k}List" >> beam.combiners.ToList()
                 | f"{name}{k}Sorted" >> beam.Map(lambda rows, k=k: (k, sorted(rows))) for k in as_rows]
                | f"{name}All" >> beam.Flatten() | f"{name}Dict" >> beam.combiners.ToDict())

    expected = beam.pvalue.AsSingleton(collected(apart, "A"))
    same = collected(together, "T") | beam.Map(lambda t, a: t == a, expected)
    assert_that(same, equal_to([True]), label="SameAsTwoStages")
    # b-near has a quality score and b none; "..." and "!!" normalize to the same (empty) text.
    assert_that(together["kept"] | "KeptIds" >> beam.Map(lambda d: d.id),
                equal_to(["a", "b-near", "twice", "empty"]), label="Kept")
    assert_that(reasons(together["dropped"]),
                equal_to([("a-exact", "ExactDedup", EXACT_DUPLICATE),
                          ("a-near-exact", "ExactDedup", EXACT_DUPLICATE),
                          ("twice", "ExactDedup", EXACT_DUPLICATE),
                          ("empty-too", "ExactDedup", EXACT_DUPLICATE),
                          ("twice", "MinHashDedup", DUPLICATE_ID), ("a-near", "MinHashDedup", NEAR_DUPLICATE),
                          ("b", "MinHashDedup", NEAR_DUPLICATE)]), label="Dropped")
    run(p)
