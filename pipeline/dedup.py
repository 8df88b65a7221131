"""Exact and MinHash near-duplicate removal over a whole run, as Beam aggregations.

Both are decided from small records while the documents wait on disk (``pipeline/spill.py``);
text crosses no shuffle here. :class:`Deduplicate` does either or both:

1. The documents are spilled where they are, and ``Sign`` reads each once and emits only what
   the decisions need: its place (file, row) with its digest and keep-rule sort key, its
   normalized-text digest, its LSH band buckets with its MinHash signature, and a bounded
   sample of its shingle hashes (``dedup.verify_sample``).
2. Exact dedup groups ``digest -> (sort key, id, buckets, signature)`` and keeps the keep-rule
   minimum of each digest; the others become ``(id, exact verdict)``. Only the survivors' buckets
   go on to LSH, so exact duplicates never enter the near-duplicate graph.
3. MinHash dedup sums every member's (band, bucket) keys into a fixed-size count sketch
   (``filters/count_sketch.py``), groups by (band, bucket) only the memberships of buckets the
   sketch says may be shared (a bucket with one member makes no edge), links each bucket's
   members to its smallest member, finds connected components with large-star/small-star
   (``pipeline/connected_components.py``) and keeps each component's root. Graph nodes are the
   documents' keep-rule sort keys, so the root *is* the document the keep rule picks. Band keys of
   an earlier dump enter as extra nodes that sort before every current one; a component that
   reaches one of them belongs to the earlier dump, which wins. Each cluster member then receives
   its root's shingle sample (a join of samples, not of documents).
4. ``JoinVerdicts`` (CoGroupByKey by id) brings each id's places together with its verdicts, and
   ``Route`` sends each verdict to the file and row of the copy it concerns. ``Decide`` reads each
   spill file once with its verdicts and keeps or drops every document in it (a clustered
   document's text is needed once more here, to verify it against its root's sample).

``ExactDedup`` and ``MinHashDedup`` are the two halves alone; ``pipeline/stages.py`` runs both as
one :class:`Deduplicate` when a recipe lists them back to back, which spills and reads the
documents once instead of twice. Memory per worker is bounded by one digest group of small
records, one bucket, one node's neighbourhood, or one spill file's verdicts; none of them is the
corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from filters.count_sketch import CountSketch
from filters.document import Document
from filters.minhash import (
    DedupConfig,
    MinHasher,
    band_keys,
    estimate_jaccard,
    keep_key,
    normalize_for_dedup,
    normalized_digest,
    sampled_jaccard,
    shingle_hashes,
    shingle_sample,
)
from pipeline.connected_components import ConnectedComponents
from pipeline.count_sketch import SketchCounts
from pipeline.spill import FILES, ApplyVerdicts, Place, SpillDocuments, Spilled, spill_directory
from pipeline.stage import DROPPED, KEPT, METRICS_NAMESPACE, Dropped

EXACT_STAGE = "ExactDedup"
MINHASH_STAGE = "MinHashDedup"
EXACT_DUPLICATE = "exact_dedup.duplicate"
NEAR_DUPLICATE = "minhash_dedup.near_duplicate"
SEEN_IN_PREVIOUS_DUMP = "minhash_dedup.seen_in_previous_dump"
DUPLICATE_ID = "minhash_dedup.duplicate_id"
CLUSTERS = "clusters"
BAND_KEYS = "band_keys"
SAMPLES = "samples"
_MEMBERS = "members"
_DIGESTS = "digests"
_EXACT_DROPS = "exact_drops"
_COPIES = "copies"

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

SortKey = tuple[str, ...]


class Signed(NamedTuple):
    """The near-dedup half of a document's small record: LSH buckets and, to verify, its signature."""

    buckets: list[int]
    signature: bytes | None


class DigestEntry(NamedTuple):
    """What exact dedup groups by digest instead of the document: a few hundred bytes at most."""

    key: SortKey
    doc_id: str
    signed: Signed | None  # None: near dedup is off, or the document has no shingles


class Copy(NamedTuple):
    """One document with a given id, as the verdicts meet it: where it waits, and what tells it
    apart from another document with the same id."""

    place: Place
    key: SortKey
    digest: str


class Drop(NamedTuple):
    """Verdict: drop the document for ``reason``, decided by ``stage``."""

    stage: str
    reason: str


class Clustered(NamedTuple):
    """Verdict: the document is in a near-duplicate cluster; whether it stays is settled when its
    text is read back (verification needs it)."""

    cluster_id: str  # id of the document the cluster keeps
    size: int
    previous_root: bool  # the cluster keeps a document of an earlier dump
    root_sample: tuple[bytes, bool] | None  # the kept document's shingle sample, to verify against


def _counter(name: str):
    return Metrics.counter(METRICS_NAMESPACE, name)


class Member(NamedTuple):
    """A document (or an earlier dump's band-key row) as LSH sees it: one record for all its
    buckets, so the sketch can tell which buckets are shared before any is grouped."""

    node: tuple[str, ...]
    signature: bytes | None
    buckets: list[tuple[int, int]]  # (band, bucket id)


def _members(doc_id: str, key: SortKey, signed: Signed) -> Iterator[beam.pvalue.TaggedOutput]:
    """A near-dedup survivor's LSH member record and band-key store rows."""
    yield beam.pvalue.TaggedOutput(_MEMBERS, Member((_CURRENT, *key), signed.signature,
                                                    list(enumerate(signed.buckets))))
    for band, bucket in enumerate(signed.buckets):
        yield beam.pvalue.TaggedOutput(BAND_KEYS, {"band": band, "bucket": bucket, "doc_id": doc_id})


# Odd; spreads the band index over the key so that bucket b of band 1 and of band 2 differ.
_BAND_SALT = np.uint64(0x9E3779B97F4A7C15)


def _bucket_keys(member: Member) -> np.ndarray:
    """int64 sketch keys of a member's (band, bucket) pairs (bucket ids are already uniform hashes)."""
    pairs = np.array(member.buckets, dtype=np.int64).reshape(-1, 2)
    with np.errstate(over="ignore"):
        return (pairs[:, 1].view(np.uint64) + pairs[:, 0].view(np.uint64) * _BAND_SALT).view(np.int64)


class _SharedBuckets(beam.DoFn):
    """Member -> ((band, bucket), (node, signature)) for the buckets the sketch says may be shared.

    A bucket with one member makes no edge, and nearly every bucket has one: grouping them all
    held an entry per bucket of the run (14 per document) in a worker that groups in memory.
    """

    def setup(self) -> None:
        self._shared = _counter(f"{MINHASH_STAGE}.shared_bucket_memberships")

    def process(self, member: Member, sketch: CountSketch) -> Iterator[tuple[tuple[int, int], Any]]:
        if not member.buckets:
            return
        shared = np.flatnonzero(sketch.upper_bounds(_bucket_keys(member)) >= 2)
        self._shared.inc(int(shared.size))
        for i in shared.tolist():
            yield member.buckets[i], (member.node, member.signature)


class _Sign(beam.DoFn):
    """Document -> its small records (module docstring, step 1); the text stays where it is.

    With exact dedup the main output is ``(digest, DigestEntry)`` and the memberships wait for
    the digest's decision; without it the memberships are emitted here.
    """

    def __init__(self, config: DedupConfig, exact: bool, near: bool) -> None:
        self._config = config
        self._exact = exact
        self._near = near
        self._bands, self._rows = config.band_layout()

    def setup(self) -> None:
        self._hasher = MinHasher(self._config.num_perm, self._config.seed)
        self._no_shingles = _counter(f"{MINHASH_STAGE}.no_shingles")

    def process(self, spilled: Spilled) -> Iterator[Any]:
        doc = spilled.doc
        key = keep_key(doc, self._config.keep_rule)
        normalized = normalize_for_dedup(doc.text)  # once, for both the digest and the shingles
        digest = normalized_digest(normalized)
        yield beam.pvalue.TaggedOutput(_COPIES, (doc.id, Copy(spilled.place, key, digest)))
        signed = None
        if self._near:
            hashes = shingle_hashes(normalized, self._config.ngram)
            if hashes.size:
                sig = self._hasher.signature(hashes)
                verify = self._config.verify_jaccard
                signed = Signed(band_keys(sig, self._bands, self._rows), sig.tobytes() if verify else None)
                if verify:
                    # The sample a copy of this document would be verified against, should it be
                    # kept in a cluster. Whether it is is not known yet, so every signed document
                    # sends one; at most 4 x verify_sample bytes, whatever the document's length.
                    sample, complete = shingle_sample(hashes, self._config.verify_sample)
                    yield beam.pvalue.TaggedOutput(SAMPLES, (doc.id, (sample.tobytes(), complete)))
        if self._exact:
            yield digest, DigestEntry(key, doc.id, signed)
        elif signed is None:
            if self._near:
                self._no_shingles.inc()  # nothing to compare: it stays a singleton and is kept
        else:
            yield from _members(doc.id, key, signed)


class _KeepOnePerDigest(beam.DoFn):
    """Keeps the keep-rule minimum of a digest group: its memberships go on to near dedup, the
    others become exact verdicts ``(id, (digest, sort key))``. The group is read twice, never copied."""

    def __init__(self, near: bool) -> None:
        self._near = near

    def setup(self) -> None:
        self._in = _counter(f"{EXACT_STAGE}.in")
        self._kept = _counter(f"{EXACT_STAGE}.kept")
        self._dropped = _counter(f"{EXACT_STAGE}.dropped.{EXACT_DUPLICATE}")
        self._no_shingles = _counter(f"{MINHASH_STAGE}.no_shingles")

    def process(self, element: tuple[str, Iterable[DigestEntry]]) -> Iterator[Any]:
        digest, entries = element
        best = min(entry.key for entry in entries)
        kept_one = False
        for entry in entries:
            self._in.inc()
            if not kept_one and entry.key == best:
                kept_one = True  # identical sort keys (one id twice) tie; only the first survives
                self._kept.inc()
                if not self._near:
                    continue
                if entry.signed is None:
                    self._no_shingles.inc()
                else:
                    yield from _members(entry.doc_id, entry.key, entry.signed)
            else:
                self._dropped.inc()
                yield beam.pvalue.TaggedOutput(_EXACT_DROPS, (entry.doc_id, (digest, entry.key)))


def _previous_member(row: dict[str, Any]) -> Member:
    return Member((_PREVIOUS, str(row["doc_id"])), None, [(int(row["band"]), int(row["bucket"]))])


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


def _needs_root_sample(element: tuple[str, tuple[str, int, bool]]) -> bool:
    """Every member but the root of a cluster of this run, which is kept without a comparison."""
    doc_id, (cluster_id, _, previous_root) = element
    return previous_root or cluster_id != doc_id


def _root_samples(element: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, tuple[bytes, bool]]]:
    """(cluster id, {its kept document's shingle sample, the members}) -> (member id, that sample)."""
    _, joined = element
    for sample in joined["root"][:1]:
        for member in joined["member"]:
            yield member, sample


class _Route(beam.DoFn):
    """Per document id: the copies with that id and their verdicts -> ``(file, (row, verdict))``
    for each copy that has one (a copy without one is kept).

    Exact verdicts come first (they name a digest and a sort key, so two documents that share an
    id are told apart). Of the rest, with near dedup, two documents with one id would be one graph
    node: the keep-rule first stays, the others are dropped as ``minhash_dedup.duplicate_id``.
    """

    def __init__(self, exact: bool, near: bool) -> None:
        self._exact = exact
        self._near = near

    def setup(self) -> None:
        self._in = _counter(f"{MINHASH_STAGE}.in")

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, tuple[int, Any]]]:
        _, joined = element
        copies = list(joined["copy"])
        if not copies:
            return
        if self._exact:
            survivors = []
            for copy, dropped in self._exact_verdicts(copies, joined["exact"]):
                if dropped:
                    yield _at(copy, Drop(EXACT_STAGE, EXACT_DUPLICATE))
                else:
                    survivors.append(copy)
            copies = survivors
        if not (self._near and copies):
            return
        self._in.inc(len(copies))
        first, *extras = sorted(copies, key=lambda c: c.key)
        for extra in extras:
            _counter(f"{MINHASH_STAGE}.dropped.{DUPLICATE_ID}").inc()
            yield _at(extra, Drop(MINHASH_STAGE, DUPLICATE_ID))
        for cluster_id, size, previous_root in list(joined["cluster"])[:1]:
            samples = list(joined.get(SAMPLES) or [])[:1]
            yield _at(first, Clustered(cluster_id, size, previous_root, samples[0] if samples else None))

    @staticmethod
    def _exact_verdicts(copies: list[Copy], drops: Iterable[tuple[str, SortKey]]) -> Iterator[tuple[Copy, bool]]:
        """Each copy, and whether its digest group kept another document."""
        pending = Counter(drops)
        if len(copies) == 1:  # the usual case: a verdict can only be this copy's
            yield copies[0], bool(pending)
            return
        for copy in copies:
            mark = (copy.digest, copy.key)
            dropped = pending[mark] > 0
            if dropped:
                pending[mark] -= 1
            yield copy, dropped


def _at(copy: Copy, verdict: Any) -> tuple[str, tuple[int, Any]]:
    return copy.place.file, (copy.place.row, verdict)


class _Judge:
    """The :class:`~pipeline.spill.Judge` of dedup: a document read back and its verdict -> kept,
    or dropped with a reason; plus each clustered document's cluster row.

    With ``verify_jaccard``, a clustered document is dropped only if its shingle Jaccard with the
    document its cluster keeps reaches the threshold. Connected components join A~B~C even where A
    and C differ, and a 112-hash estimate errs by about 0.04 near 0.8; without this check C would
    be dropped for resembling B, which is not kept. The kept document is known by its bottom-k
    sample (exact when it has at most ``verify_sample`` shingles), this document in full.
    """

    def __init__(self, config: DedupConfig, near: bool) -> None:
        self._config = config
        self._near = near

    def setup(self) -> None:
        self._kept = _counter(f"{MINHASH_STAGE}.kept")
        self._rescued = _counter(f"{MINHASH_STAGE}.verify.kept_unlike_cluster_root")

    def apply(self, doc: Document, verdicts: list[Any]) -> Iterator[Any]:
        if not verdicts:
            if self._near:
                self._kept.inc()
            yield doc
            return
        verdict = verdicts[0]  # one per copy: _Route gives each copy at most one
        if isinstance(verdict, Drop):  # counted where it was decided
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, verdict.stage, verdict.reason))
            return
        kept = not verdict.previous_root and verdict.cluster_id == doc.id
        if not kept and verdict.root_sample is not None:
            sample, complete = verdict.root_sample
            own = shingle_hashes(normalize_for_dedup(doc.text), self._config.ngram)
            similarity = sampled_jaccard(np.frombuffer(sample, dtype=np.uint32), complete, own)
            if similarity < self._config.threshold:
                self._rescued.inc()
                kept = True
        row = {"doc_id": doc.id, "cluster_id": verdict.cluster_id, "cluster_size": verdict.size, "kept": kept}
        yield beam.pvalue.TaggedOutput(CLUSTERS, row)
        if kept:
            self._kept.inc()
            yield doc
        else:
            reason = SEEN_IN_PREVIOUS_DUMP if verdict.previous_root else NEAR_DUPLICATE
            _counter(f"{MINHASH_STAGE}.dropped.{reason}").inc()
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, MINHASH_STAGE, reason))


class Deduplicate(beam.PTransform):
    """Exact and/or near-duplicate removal; the documents are spilled and read back once (module docstring).

    Returns ``{"kept", "dropped"}``, plus with ``near`` ``{"clusters", "band_keys"}``:
    :data:`CLUSTERS_SCHEMA` rows, and :data:`BAND_KEYS_SCHEMA` rows for every signed document that
    survived exact dedup. Dropped records name the stage that decided: ``ExactDedup`` or
    ``MinHashDedup``. ``previous`` is an earlier dump's ``band_keys`` (dicts with band, bucket,
    doc_id): documents in a cluster with any of them are dropped as
    ``minhash_dedup.seen_in_previous_dump``.
    """

    def __init__(self, config: DedupConfig = DedupConfig(), *, exact: bool = True, near: bool = True,
                 previous=None, label: str | None = None, spill_dir: str | None = None) -> None:
        super().__init__(label=label or "Deduplicate")
        if not (exact or near):
            raise ValueError("Deduplicate needs exact, near or both")
        self._config = config
        self._exact = exact
        self._near = near
        self._previous = previous
        self._spill_dir = spill_dir

    def expand(self, docs):
        config = self._config
        directory = spill_directory(docs.pipeline, self._spill_dir)
        spilled = docs | "Spill" >> SpillDocuments(directory)
        signed = spilled[KEPT] | "Sign" >> beam.ParDo(_Sign(config, self._exact, self._near)).with_outputs(
            _COPIES, _MEMBERS, BAND_KEYS, SAMPLES, main=_DIGESTS)
        # Every document's places by id, for the one join with every verdict (module docstring, step 4).
        joined: dict[str, Any] = {"copy": signed[_COPIES]}
        members, band_key_rows = signed[_MEMBERS], signed[BAND_KEYS]
        if self._exact:
            decided = (
                signed[_DIGESTS]
                | "GroupByDigest" >> beam.GroupByKey()
                | "KeepOnePerDigest" >> beam.ParDo(_KeepOnePerDigest(self._near)).with_outputs(
                    _EXACT_DROPS, _MEMBERS, BAND_KEYS)
            )
            joined["exact"] = decided[_EXACT_DROPS]
            members, band_key_rows = decided[_MEMBERS], decided[BAND_KEYS]
        if self._near:
            joined.update(self._near_verdicts(members, signed[SAMPLES]))
        verdicts = (
            joined
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "Route" >> beam.ParDo(_Route(self._exact, self._near))
        )
        out = (spilled[FILES], verdicts) | "Decide" >> ApplyVerdicts(
            directory, _Judge(config, self._near), (DROPPED, CLUSTERS))
        result = {KEPT: out[KEPT], DROPPED: out[DROPPED]}
        if self._near:
            result.update({CLUSTERS: out[CLUSTERS], BAND_KEYS: band_key_rows})
        return result

    def _near_verdicts(self, members, samples) -> dict[str, Any]:
        """LSH buckets -> components -> per document id its cluster and its root's sample."""
        config = self._config
        if self._previous is not None:
            earlier = self._previous | "PreviousMembers" >> beam.Map(_previous_member)
            members = (members, earlier) | "WithPreviousDump" >> beam.Flatten()
        sketch = members | "SketchBuckets" >> SketchCounts(config.sketch_cells, _bucket_keys)
        roots = (
            members
            | "SharedBuckets" >> beam.ParDo(_SharedBuckets(), beam.pvalue.AsSingleton(sketch))
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
        verdicts = {"cluster": clusters}
        if config.verify_jaccard:
            verdicts[SAMPLES] = (
                {"root": samples,
                 "member": clusters | "NeedsRootSample" >> beam.Filter(_needs_root_sample)
                 | "MemberOfRoot" >> beam.Map(lambda e: (e[1][0], e[0]))}
                | "JoinRootSamples" >> beam.CoGroupByKey()
                | "RootSamples" >> beam.FlatMap(_root_samples)
            )
        return verdicts


class ExactDedup(Deduplicate):
    """One document per normalized-text digest: ``{"kept": docs, "dropped": Dropped records}``."""

    def __init__(self, config: DedupConfig = DedupConfig(), *, spill_dir: str | None = None) -> None:
        super().__init__(config, exact=True, near=False, label=EXACT_STAGE, spill_dir=spill_dir)


class MinHashDedup(Deduplicate):
    """Near-duplicate removal: ``{"kept", "dropped", "clusters", "band_keys"}``.

    With ``exact=True`` it first does ExactDedup's work too, with the same spill of the documents
    (the ``minhash_dedup`` stage of a recipe that lists ``exact_dedup`` right before it).
    """

    def __init__(self, config: DedupConfig = DedupConfig(), previous=None, *, exact: bool = False,
                 spill_dir: str | None = None) -> None:
        super().__init__(config, exact=exact, near=True, previous=previous, label=MINHASH_STAGE,
                         spill_dir=spill_dir)


class ExactDedupWithNext(beam.PTransform):
    """The exact_dedup step of a recipe whose next step is ``MinHashDedup(exact=True)``.

    That step decides both (see ``pipeline/stages.py``), so this one passes every document on and
    drops none itself; it exists so the recipe and the funnel keep their ExactDedup stage.
    """

    def __init__(self) -> None:
        super().__init__(label=EXACT_STAGE)

    def expand(self, docs):
        return {KEPT: docs | "DecidedByNextStage" >> beam.Map(lambda doc: doc),
                DROPPED: docs | "NoDropsHere" >> beam.Filter(lambda _: False)}
