"""Exact and MinHash near-duplicate removal over a whole run, as Beam aggregations.

``ExactDedup`` groups documents by the digest of their normalized text and keeps one per digest.
``MinHashDedup`` signs every document, groups documents by (band, bucket), links each bucket's
members to its smallest member, finds connected components with large-star/small-star
(``pipeline/connected_components.py``) and keeps each component's root. Graph nodes are the
documents' keep-rule sort keys, so the root *is* the document the keep rule picks: no per-cluster
ranking pass is needed. Band keys of an earlier dump enter as extra nodes that sort before every
current one; a component that reaches one of them belongs to the earlier dump, which wins.

Memory per worker is bounded by one digest group, one bucket, or one node's neighbourhood; none
of them is the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from filters.document import Document
from filters.minhash import (
    DedupConfig,
    MinHasher,
    band_keys,
    estimate_jaccard,
    exact_jaccard,
    keep_key,
    normalize_for_dedup,
    shingle_hashes,
    text_digest,
)
from pipeline.connected_components import ConnectedComponents
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped

EXACT_STAGE = "ExactDedup"
MINHASH_STAGE = "MinHashDedup"
EXACT_DUPLICATE = "exact_dedup.duplicate"
NEAR_DUPLICATE = "minhash_dedup.near_duplicate"
SEEN_IN_PREVIOUS_DUMP = "minhash_dedup.seen_in_previous_dump"
DUPLICATE_ID = "minhash_dedup.duplicate_id"
CLUSTERS = "clusters"
BAND_KEYS = "band_keys"
SHINGLES = "shingles"

CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),  # id of the document the cluster kept
        pa.field("cluster_size", pa.int64(), nullable=False),  # documents of this run in the cluster
        pa.field("kept", pa.bool_(), nullable=False),
    ]
)
"""One row per document of a near-duplicate cluster of two or more (singletons are omitted)."""

BAND_KEYS_SCHEMA = pa.schema(
    [
        pa.field("band", pa.int32(), nullable=False),
        pa.field("bucket", pa.int64(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
    ]
)
"""The LSH store of a dump: feed it back as ``MinHashDedup(previous=...)`` to dedup a later dump."""

_CURRENT, _PREVIOUS = "1", "0"  # node-key prefixes: an earlier dump's nodes sort first and win


def _counter(name: str):
    return Metrics.counter(METRICS_NAMESPACE, name)


class _KeepOnePerDigest(beam.DoFn):
    """Keeps the keep-rule minimum of a digest group; the group is read twice, never copied."""

    def __init__(self, config: DedupConfig) -> None:
        self._rule = config.keep_rule

    def setup(self) -> None:
        self._in = _counter(f"{EXACT_STAGE}.in")
        self._kept = _counter(f"{EXACT_STAGE}.kept")
        self._dropped = _counter(f"{EXACT_STAGE}.dropped.{EXACT_DUPLICATE}")

    def process(self, element: tuple[str, Iterable[Document]]) -> Iterator[Any]:
        _, docs = element
        best = min(keep_key(d, self._rule) for d in docs)
        kept_one = False
        for doc in docs:
            self._in.inc()
            if not kept_one and keep_key(doc, self._rule) == best:
                kept_one = True  # identical ids would tie; only the first of them survives
                self._kept.inc()
                yield doc
            else:
                self._dropped.inc()
                yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, EXACT_STAGE, EXACT_DUPLICATE))


class ExactDedup(beam.PTransform):
    """One document per normalized-text digest: ``{"kept": docs, "dropped": Dropped records}``."""

    def __init__(self, config: DedupConfig = DedupConfig()) -> None:
        super().__init__(label=EXACT_STAGE)
        self._config = config

    def expand(self, docs):
        out = (
            docs
            | "KeyByDigest" >> beam.Map(lambda d: (text_digest(d.text), d))
            | "GroupByDigest" >> beam.GroupByKey()
            | "KeepOnePerDigest" >> beam.ParDo(_KeepOnePerDigest(self._config)).with_outputs(DROPPED, main=KEPT)
        )
        return {KEPT: out[KEPT], DROPPED: out[DROPPED]}


class _Sign(beam.DoFn):
    """Document -> (id, doc), its band memberships and its band-key store rows."""

    def __init__(self, config: DedupConfig) -> None:
        self._config = config
        self._bands, self._rows = config.band_layout()

    def setup(self) -> None:
        self._hasher = MinHasher(self._config.num_perm, self._config.seed)
        self._no_shingles = _counter(f"{MINHASH_STAGE}.no_shingles")

    def process(self, doc: Document) -> Iterator[Any]:
        yield (doc.id, doc)
        hashes = shingle_hashes(normalize_for_dedup(doc.text), self._config.ngram)
        if hashes.size == 0:
            self._no_shingles.inc()  # nothing to compare: it stays a singleton and is kept
            return
        sig = self._hasher.signature(hashes)
        node = (_CURRENT, *keep_key(doc, self._config.keep_rule))
        payload = sig.tobytes() if self._config.verify_jaccard else None
        if payload is not None:
            yield beam.pvalue.TaggedOutput(SHINGLES, (doc.id, np.unique(hashes).tobytes()))
        for band, bucket in enumerate(band_keys(sig, self._bands, self._rows)):
            yield beam.pvalue.TaggedOutput("members", ((band, bucket), (node, payload)))
            yield beam.pvalue.TaggedOutput(BAND_KEYS, {"band": band, "bucket": bucket, "doc_id": doc.id})


def _previous_member(row: dict[str, Any]) -> tuple[tuple[int, int], tuple[tuple[str, ...], None]]:
    return (int(row["band"]), int(row["bucket"])), ((_PREVIOUS, str(row["doc_id"])), None)


class _BucketEdges(beam.DoFn):
    """Edges of one bucket: a star from its smallest member, not all pairs.

    With ``verify`` the bucket is sorted (the one place a worker holds a whole bucket) and each
    member links to the first earlier member whose signature estimate reaches the threshold;
    usually that is the first one tried, so a bucket of true duplicates costs one comparison per
    member. An earlier dump's members carry no signature, so a bucket that holds one sends every
    member to it unverified.
    """

    def __init__(self, verify: bool, threshold: float) -> None:
        self._verify = verify
        self._threshold = threshold

    def setup(self) -> None:
        self._rejected = _counter(f"{MINHASH_STAGE}.verify.rejected_edges")

    def process(self, element: tuple[Any, Iterable[tuple[tuple[str, ...], bytes | None]]]) -> Iterator[Any]:
        _, members = element
        root = min(node for node, _ in members)
        if not self._verify or root[0] == _PREVIOUS:
            for node, _ in members:
                if node != root:
                    yield (node, root)
            return
        earlier: list[tuple[tuple[str, ...], np.ndarray]] = []
        for node, payload in sorted(members, key=lambda m: m[0]):
            sig = np.frombuffer(payload, dtype=np.uint32)
            for other, other_sig in earlier:
                if estimate_jaccard(sig, other_sig) >= self._threshold:
                    yield (node, other)
                    break
                self._rejected.inc()
            earlier.append((node, sig))


def _memberships(element: tuple[tuple[str, ...], Iterable[tuple[str, ...]]]) -> Iterator[Any]:
    """(root, its members) -> (doc id, (cluster id, size, earlier-dump root)) per current member."""
    root, children = element
    size = sum(1 for c in children if c[0] == _CURRENT) + (root[0] == _CURRENT)
    info = (root[-1], size, root[0] == _PREVIOUS)
    for node in (root, *children) if root[0] == _CURRENT else children:
        if node[0] == _CURRENT:
            yield (node[-1], info)


def _root_shingles(element: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, bytes]]:
    """(cluster id, {its kept document's shingle set, the cluster's members}) -> (member id, that set)."""
    _, joined = element
    for shingles in joined["root"][:1]:
        for member in joined["member"]:
            yield member, shingles


class _Decide(beam.DoFn):
    """Per document id: kept, or dropped with the reason its cluster gives; plus its cluster row.

    With ``verify_jaccard``, a document is dropped only if the exact Jaccard of its shingles with
    those of the document its cluster keeps reaches the threshold. Connected components join
    A~B~C even where A and C differ, and a 112-hash estimate errs by about 0.04 near 0.8; without
    this check C would be dropped for resembling B, which is not kept.
    """

    def __init__(self, config: DedupConfig) -> None:
        self._rule = config.keep_rule
        self._threshold = config.threshold
        self._ngram = config.ngram

    def setup(self) -> None:
        self._in = _counter(f"{MINHASH_STAGE}.in")
        self._kept = _counter(f"{MINHASH_STAGE}.kept")
        self._rescued = _counter(f"{MINHASH_STAGE}.verify.kept_unlike_cluster_root")

    def _drop(self, doc: Document, reason: str) -> beam.pvalue.TaggedOutput:
        _counter(f"{MINHASH_STAGE}.dropped.{reason}").inc()
        return beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, MINHASH_STAGE, reason))

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        doc_id, joined = element
        docs = sorted(joined["doc"], key=lambda d: keep_key(d, self._rule))
        infos = list(joined["cluster"])
        if not docs:
            return
        self._in.inc(len(docs))
        doc, extras = docs[0], docs[1:]
        for extra in extras:  # two documents with one id would be one graph node; keep the first
            yield self._drop(extra, DUPLICATE_ID)
        if not infos:
            self._kept.inc()
            yield doc
            return
        cluster_id, size, previous_root = infos[0]
        kept = not previous_root and cluster_id == doc_id
        root = joined.get("root_shingles") or []
        if not kept and root:
            own = np.unique(shingle_hashes(normalize_for_dedup(doc.text), self._ngram))
            if exact_jaccard(own, np.frombuffer(root[0], dtype=np.uint32)) < self._threshold:
                self._rescued.inc()
                kept = True
        row = {"doc_id": doc_id, "cluster_id": cluster_id, "cluster_size": size, "kept": kept}
        yield beam.pvalue.TaggedOutput(CLUSTERS, row)
        if kept:
            self._kept.inc()
            yield doc
        else:
            yield self._drop(doc, SEEN_IN_PREVIOUS_DUMP if previous_root else NEAR_DUPLICATE)


class MinHashDedup(beam.PTransform):
    """Near-duplicate removal: ``{"kept", "dropped", "clusters", "band_keys"}``.

    ``clusters`` holds :data:`CLUSTERS_SCHEMA` rows, ``band_keys`` :data:`BAND_KEYS_SCHEMA` rows
    for every signed document of this run. ``previous`` is an earlier dump's ``band_keys``
    (dicts with band, bucket, doc_id): documents in a cluster with any of them are dropped as
    ``minhash_dedup.seen_in_previous_dump``.
    """

    def __init__(self, config: DedupConfig = DedupConfig(), previous=None) -> None:
        super().__init__(label=MINHASH_STAGE)
        self._config = config
        self._previous = previous

    def expand(self, docs):
        config = self._config
        signed = docs | "Sign" >> beam.ParDo(_Sign(config)).with_outputs("members", BAND_KEYS, SHINGLES,
                                                                          main="docs")
        members = signed.members
        if self._previous is not None:
            earlier = self._previous | "PreviousMembers" >> beam.Map(_previous_member)
            members = (members, earlier) | "WithPreviousDump" >> beam.Flatten()
        roots = (
            members
            | "GroupByBucket" >> beam.GroupByKey()
            | "BucketEdges" >> beam.ParDo(_BucketEdges(config.verify_jaccard, config.threshold))
            | "Components" >> ConnectedComponents(config.max_rounds, label="ConnectedComponents")
        )
        clusters = (
            roots
            | "ByRoot" >> beam.Map(lambda e: (e[1], e[0]))
            | "GroupByRoot" >> beam.GroupByKey()
            | "Memberships" >> beam.FlatMap(_memberships)
        )
        joined = {"doc": signed.docs, "cluster": clusters}
        if config.verify_jaccard:
            joined["root_shingles"] = (
                {"root": signed[SHINGLES],
                 "member": clusters | "MemberOfRoot" >> beam.Map(lambda e: (e[1][0], e[0]))}
                | "JoinRootShingles" >> beam.CoGroupByKey()
                | "RootShingles" >> beam.FlatMap(_root_shingles)
            )
        out = (
            joined
            | "JoinClusters" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_Decide(config)).with_outputs(DROPPED, CLUSTERS, main=KEPT)
        )
        return {KEPT: out[KEPT], DROPPED: out[DROPPED], CLUSTERS: out[CLUSTERS], BAND_KEYS: signed[BAND_KEYS]}
