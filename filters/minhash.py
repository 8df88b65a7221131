"""Pure building blocks of exact and near-duplicate detection: normalize, shingle, sign, band, rank.

Everything here works on one document and is deterministic across processes and machines (no
``hash()``, whose seed changes per process), so the Beam transforms in ``pipeline/dedup.py``
can shard the work freely and a re-run produces the same buckets and the same survivors.

Signatures are computed for a whole document at once with numpy: word hashes come from a
polynomial hash over the UTF-8 bytes (prefix sums, no per-word Python call), word n-gram hashes
from a vectorized combination of consecutive word hashes, and the min-wise permutations are
datasketch 2.0's default "affine32" scheme (MurmurHash3 fmix32 pre-mix, then ``a*h + b`` mod 2^32
with odd ``a`` drawn from ``RandomState(seed)``). Fed the same 32-bit shingle hashes, a datasketch
``MinHash(seed=seed)`` yields bit-identical hash values; the test suite checks that.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import Literal

import numpy as np

from filters.count_sketch import check_cells
from filters.document import Document

KeepRule = Literal["earliest_timestamp", "highest_quality", "lowest_id"]

_U64 = np.uint64
# Odd multipliers for the byte-level polynomial hash and the n-gram combination; any odd 64-bit
# constants work (odd => invertible mod 2^64, which the prefix-sum trick in _word_hashes needs).
_BYTE_BASE = _U64(0x100000001B3)  # the 64-bit FNV prime
_BYTE_BASE_INV = _U64(pow(0x100000001B3, -1, 1 << 64))
_NGRAM_BASE = _U64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd
_SPACE = 0x20
_MAX_HASH32 = np.uint32(0xFFFFFFFF)
_BLOCK_ROWS = 8192  # shingles per permutation block: 8192 x 112 x 4 B = 3.7 MB of scratch

_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_DIGITS = re.compile(r"\d+")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class DedupConfig:
    """Switches and parameters of ExactDedup and MinHashDedup (the ``dedup`` block of a run config).

    ``bands``/``rows`` set to ``None`` are derived from ``threshold`` and ``num_perm`` with
    datasketch's false-positive/false-negative optimiser; the defaults keep FineWeb's fixed 14 x 8,
    which at 0.8 finds pairs of Jaccard 0.85 with probability 0.99 (the optimiser's 9 x 12 only
    0.75), trading recall in the 0.7-0.8 grey zone for precision that ``verify_jaccard`` can buy back.
    """

    # Lee et al. 2022, "Deduplicating Training Data Makes Language Models Better" (NearDup):
    # word 5-gram MinHash, pairs with estimated Jaccard >= 0.8 are near-duplicates.
    threshold: float = 0.8
    # Penedo et al. 2024, "The FineWeb Datasets" (MinHash dedup, datatrove config): 112 hash
    # functions split into 14 buckets of 8 hashes over word 5-grams.
    num_perm: int = 112
    bands: int | None = 14
    rows: int | None = 8
    ngram: int = 5
    seed: int = 1
    # Which copy of a cluster survives: first the earliest crawl (the original usually predates its
    # copies), then the best quality score, then the id so the choice is total and reproducible.
    keep_rule: tuple[KeepRule, ...] = ("earliest_timestamp", "highest_quality", "lowest_id")
    # Drop LSH edges whose signature Jaccard estimate is below the threshold before they join
    # components. Measured on 10k mutated real documents (benchmarks/dedup.py): pair precision
    # 0.71 -> 0.90 and no cross-family merges, for recall 0.999 -> 0.992 on pairs with J >= 0.85.
    verify_jaccard: bool = True
    # What verification compares a dropped copy against: the smallest this-many shingle hashes of
    # the document its cluster keeps (a bottom-k sample, at most 4 bytes x this per document, so
    # the shuffle that carries it does not grow with document length). A kept document with no
    # more shingles than this is compared exactly; a longer one through the sample, whose Jaccard
    # estimate has stddev sqrt(J(1-J)/k): 0.0125 at J = 0.8. See sampled_jaccard.
    verify_sample: int = 1024
    # Cells per row of the count sketch that spares single-member LSH buckets the grouping (a
    # power of two; 2 bytes per cell, 8 MB at 2^22, held by every worker). It is loose once the
    # run's buckets (bands per document) outnumber the cells several times: more buckets are then
    # grouped, which costs shuffle and memory, never correctness. Tight up to ~100k documents.
    sketch_cells: int = 1 << 22
    # Large-star/small-star rounds unrolled in the Beam graph. Kiveris et al. 2014 bound them by
    # O(log^2 n) and report single-digit counts on real graphs; the last round must change nothing.
    max_rounds: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 1 or self.ngram < 1 or self.max_rounds < 2 or self.verify_sample < 1:
            raise ValueError("num_perm, ngram and verify_sample must be >= 1 and max_rounds >= 2")
        check_cells(self.sketch_cells, "dedup.sketch_cells")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they are derived)")
        bands, rows = self.band_layout()
        if bands * rows > self.num_perm:
            raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {self.num_perm}")
        unknown = set(self.keep_rule) - {"earliest_timestamp", "highest_quality", "lowest_id"}
        if unknown:
            raise ValueError(f"unknown keep_rule entries: {sorted(unknown)}")

    def band_layout(self) -> tuple[int, int]:
        """(bands, rows): the configured pair, or datasketch's optimum for threshold and num_perm."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        from datasketch.lsh import _optimal_param

        return _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Chance that a pair of this Jaccard shares at least one band (the LSH S-curve)."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def normalize_for_dedup(text: str) -> str:
    """Lower-case words without accents, punctuation or digit values, separated by single spaces.

    Copies of a page differ in exactly these ways (re-encodings that drop accents, re-typeset
    quotes, updated dates and counters), so they are erased before hashing, as datatrove does.
    """
    text = _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()
    text = _DIGITS.sub("0", text)
    return _NON_WORD.sub(" ", text).strip()


def text_digest(text: str) -> str:
    """Exact-dedup key: 128-bit BLAKE2b of the normalized text, hex (a stable, shardable Beam key)."""
    return normalized_digest(normalize_for_dedup(text))


def normalized_digest(normalized: str) -> str:
    """:func:`text_digest` of text already passed through :func:`normalize_for_dedup`."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).hexdigest()


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads the polynomial hashes' linear structure over all bits."""
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> _U64(33))


def _powers(base: np.uint64, count: int) -> np.ndarray:
    """base^0 .. base^(count-1) mod 2^64 (numpy integer arrays wrap on overflow, which is the modulo)."""
    out = np.full(count, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _word_hashes(normalized: str) -> np.ndarray:
    """64-bit hash of every space-separated word, all words in a handful of numpy passes.

    hash(word) = sum c_j * B^(e-1-j) over its bytes; with prefix sums T of c_j * B^-j the hash of
    bytes [s, e) is B^(e-1) * (T[e] - T[s]), so no Python code runs per word.
    """
    raw = np.frombuffer(normalized.encode("utf-8"), dtype=np.uint8)
    if raw.size == 0:
        return np.empty(0, dtype=np.uint64)
    codes = raw.astype(np.uint64) + _U64(1)
    prefix = np.zeros(raw.size + 1, dtype=np.uint64)
    np.cumsum(codes * _powers(_BYTE_BASE_INV, raw.size), dtype=np.uint64, out=prefix[1:])
    spaces = np.flatnonzero(raw == _SPACE)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [raw.size]))
    return _fmix64(_powers(_BYTE_BASE, raw.size)[ends - 1] * (prefix[ends] - prefix[starts]))


def shingle_hashes(normalized: str, ngram: int = 5) -> np.ndarray:
    """Sorted unique 32-bit hashes of the word n-grams of already-normalized text.

    A text shorter than ``ngram`` words is one shingle (all its words), so short pages can still be
    matched against their exact copies; an empty text has no shingles.
    """
    words = _word_hashes(normalized)
    if words.size == 0:
        return np.empty(0, dtype=np.uint32)
    width = min(ngram, words.size)
    count = words.size - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    for k in range(width):  # over the n positions of a gram, not over shingles
        combined = combined * _NGRAM_BASE + words[k : k + count]
    return np.unique((_fmix64(combined) >> _U64(32)).astype(np.uint32))


class MinHasher:
    """Min-wise signatures of shingle-hash sets, ``num_perm`` permutations drawn from ``seed``.

    The permutation parameters are datasketch 2.0's affine32 ones, so signatures are
    interchangeable with ``datasketch.MinHash(num_perm, seed)`` fed the same 32-bit hashes.
    """

    def __init__(self, num_perm: int = 112, seed: int = 1) -> None:
        gen = np.random.RandomState(seed)
        self.num_perm = num_perm
        self.seed = seed
        self._a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self._b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """uint32[num_perm]: per permutation the minimum over all shingles (all max for no shingles)."""
        sig = np.full(self.num_perm, _MAX_HASH32, dtype=np.uint32)
        hashes = _fmix32(np.asarray(hashes, dtype=np.uint32))
        for start in range(0, hashes.size, _BLOCK_ROWS):  # blocks bound the scratch matrix
            block = hashes[start : start + _BLOCK_ROWS, None] * self._a + self._b
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig

    def __call__(self, text: str, ngram: int = 5) -> np.ndarray:
        return self.signature(shingle_hashes(normalize_for_dedup(text), ngram))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's affine32 scheme."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[int]:
    """One signed 64-bit bucket id per band (BLAKE2b of the band's rows, Parquet int64 friendly).

    Two documents land in the same bucket of band b exactly when their ``rows`` hash values there
    agree (up to a 2^-64 collision); the band index is kept apart in the Beam key, so equal rows
    in different bands never meet.
    """
    sig = np.ascontiguousarray(signature, dtype=np.uint32)
    return [
        int.from_bytes(hashlib.blake2b(sig[b * rows : (b + 1) * rows].tobytes(), digest_size=8).digest(),
                       "little", signed=True)
        for b in range(bands)
    ]


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of agreeing min-hashes: an unbiased Jaccard estimate with stddev sqrt(J(1-J)/num_perm)."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures differ in length: {sig_a.shape} vs {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.size


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted unique hash arrays (what the signatures estimate); 0 for two empty sets."""
    union = np.union1d(a, b).size
    return np.intersect1d(a, b, assume_unique=True).size / union if union else 0.0


def shingle_sample(hashes: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """The bottom-k sample of a document's shingles, and whether it is the whole set.

    ``hashes`` come sorted and unique from :func:`shingle_hashes`, and are uniform 32-bit hash
    values, so their k smallest are a uniform random sample of the set, of a size that does not
    grow with the document, and the same sample for every document that shares the shingles.
    """
    return hashes[:k], hashes.size <= k


def sampled_jaccard(sample: np.ndarray, complete: bool, other: np.ndarray) -> float:
    """Jaccard of a set known by its bottom-k ``sample`` with a set known in full (``other``).

    A complete sample is the set: the result is :func:`exact_jaccard`. Otherwise the bottom-k of
    the union is known exactly (every element of the sampled set below its k-th smallest is in
    the sample), and the share of it that lies in both sets is the standard bottom-k estimate
    (Broder 1997; Cohen and Kaplan 2007), unbiased with stddev about sqrt(J(1-J)/k).
    """
    if complete:
        return exact_jaccard(sample, other)
    k = sample.size
    union_bottom = np.union1d(sample, other[other <= sample[-1]])[:k]
    in_sample = np.intersect1d(union_bottom, sample, assume_unique=True)
    in_both = np.intersect1d(in_sample, other, assume_unique=True)
    return in_both.size / k


def _sortable_float(value: float) -> str:
    """16 hex digits whose string order is the numeric order of ``value`` (IEEE 754 bit trick)."""
    bits = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


_MISSING_LAST = "~"  # sorts after any ISO 8601 timestamp and after any hex digit


def keep_key(doc: Document, rule: tuple[KeepRule, ...]) -> tuple[str, ...]:
    """Sort key whose minimum is the copy to keep; strings only, so it is a deterministic Beam key.

    Missing timestamps and quality scores sort last, so a document that lacks them never beats
    one that has them. The id always closes the key: two documents never tie, which lets the
    connected-components root (the minimum key) be the survivor itself.
    """
    parts: list[str] = []
    for item in rule:
        if item == "earliest_timestamp":
            parts.append(doc.timestamp or _MISSING_LAST)
        elif item == "highest_quality":
            q = doc.quality_score
            parts.append(_sortable_float(-q) if q is not None and not math.isnan(q) else _MISSING_LAST)
        elif item == "lowest_id":
            parts.append(doc.id)
        else:
            raise ValueError(f"unknown keep rule {item!r}")
    parts.append(doc.id)
    return tuple(parts)
