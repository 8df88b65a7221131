"""Unit tests of the pure dedup functions: normalization, shingles, signatures, bands, keep rule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from filters.config import ConfigError, from_dict
from filters.document import Document
from filters.minhash import (
    DedupConfig,
    MinHasher,
    band_keys,
    candidate_probability,
    estimate_jaccard,
    exact_jaccard,
    keep_key,
    normalize_for_dedup,
    sampled_jaccard,
    shingle_hashes,
    shingle_sample,
    text_digest,
)

WIKITEXT = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "quality" / "positive" / "wikipedia"
    / "wikitext-2-raw-v1_wiki.test.raw"
)


@pytest.fixture(scope="module")
def words() -> list[str]:
    return WIKITEXT.read_text(encoding="utf-8").split()[:20000]


def string_shingles(text: str, n: int) -> set[tuple[str, ...]]:
    """Reference shingles the slow, obvious way, to check the vectorized hashes against."""
    toks = normalize_for_dedup(text).split()
    if not toks:
        return set()
    if len(toks) < n:
        return {tuple(toks)}
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def test_normalize_erases_case_accents_punctuation_and_digit_values() -> None:
    assert normalize_for_dedup("  Café, NAÏVE déjà-vu!\r\n2024 vs. 1999_x ") == "cafe naive deja vu 0 vs 0 x"
    assert normalize_for_dedup("…—!!") == ""


def test_text_digest_equal_for_reformatted_copies_only() -> None:
    assert text_digest("Hello,  World!\n") == text_digest("hello world")
    assert text_digest("hello world") != text_digest("hello there world")
    assert re.fullmatch(r"[0-9a-f]{32}", text_digest("x"))


def test_shingle_hashes_match_reference_shingle_count(words: list[str]) -> None:
    text = " ".join(words[:5000])
    for n in (1, 3, 5):
        hashes = shingle_hashes(normalize_for_dedup(text), n)
        assert hashes.dtype == np.uint32 and np.all(np.diff(hashes.astype(np.int64)) > 0)
        # 32-bit hashes of a few thousand shingles: collisions are ~1e-3 likely, so counts agree
        assert hashes.size == len(string_shingles(text, n))


def test_shingle_hashes_depend_on_word_order_and_content() -> None:
    a = shingle_hashes("a b c d e f", 5)
    assert set(a) == set(shingle_hashes("a b c d e f", 5))
    assert set(shingle_hashes("b a c d e f", 5)).isdisjoint(a)  # {bacde, acdef} vs {abcde, bcdef}
    assert set(shingle_hashes("a b c d e f g", 5)) > set(a)
    assert set(shingle_hashes("ab c d e f", 5)).isdisjoint(a)  # a b != ab: word boundaries count


def test_short_and_empty_texts() -> None:
    assert shingle_hashes("two words", 5).size == 1
    assert shingle_hashes("", 5).size == 0
    sig = MinHasher(16, 1).signature(shingle_hashes("", 5))
    assert np.all(sig == np.iinfo(np.uint32).max)


def test_signature_is_bit_identical_to_datasketch(words: list[str]) -> None:
    hashes = shingle_hashes(normalize_for_dedup(" ".join(words[:3000])), 5)
    ours = MinHasher(num_perm=112, seed=7).signature(hashes)
    theirs = MinHash(num_perm=112, seed=7, hashfunc=lambda h: h)
    theirs.update_batch([int(h) for h in hashes])
    assert np.array_equal(ours, theirs.hashvalues)


def test_jaccard_estimate_tracks_exact_jaccard(words: list[str]) -> None:
    hasher = MinHasher(num_perm=256, seed=1)
    base = words[:2000]
    for cut in (200, 600, 1000):  # windows overlapping in 1800, 1400 and 1000 words
        a = shingle_hashes(normalize_for_dedup(" ".join(base)), 5)
        b = shingle_hashes(normalize_for_dedup(" ".join(words[cut : cut + 2000])), 5)
        truth = exact_jaccard(a, b)
        est = estimate_jaccard(hasher.signature(a), hasher.signature(b))
        assert abs(est - truth) < 4 * np.sqrt(truth * (1 - truth) / 256) + 0.01


def test_band_keys_agree_exactly_on_equal_bands() -> None:
    sig = np.arange(112, dtype=np.uint32)
    other = sig.copy()
    other[9] += 1  # row 9 is in band 1 (rows 8..15)
    keys, other_keys = band_keys(sig, 14, 8), band_keys(other, 14, 8)
    assert len(keys) == 14 and all(-(2**63) <= k < 2**63 for k in keys)
    assert [k == o for k, o in zip(keys, other_keys)] == [True, False] + [True] * 12


def test_candidate_probability_s_curve_of_default_layout() -> None:
    bands, rows = DedupConfig().band_layout()
    assert (bands, rows) == (14, 8)
    assert candidate_probability(0.85, bands, rows) > 0.98
    assert candidate_probability(0.5, bands, rows) < 0.06


def test_keep_key_orders_by_timestamp_then_quality_then_id() -> None:
    rule = DedupConfig().keep_rule
    old = Document("z", "t", timestamp="2019-01-01T00:00:00Z", quality_score=0.1)
    new_good = Document("a", "t", timestamp="2024-01-01T00:00:00Z", quality_score=0.9)
    new_better = Document("b", "t", timestamp="2024-01-01T00:00:00Z", quality_score=1.5)
    new_negative = Document("c", "t", timestamp="2024-01-01T00:00:00Z", quality_score=-2.0)
    no_time = Document("0", "t", quality_score=9.0)
    no_score = Document("1", "t", timestamp="2024-01-01T00:00:00Z")
    ranked = sorted([no_time, no_score, new_negative, new_good, old, new_better], key=lambda d: keep_key(d, rule))
    assert [d.id for d in ranked] == ["z", "b", "a", "c", "1", "0"]
    assert min(keep_key(d, ("lowest_id",)) for d in ranked)[-1] == "0"


def test_config_validation_and_derived_layout() -> None:
    assert DedupConfig(bands=None, rows=None).band_layout() == (9, 12)  # datasketch's optimum at 0.8
    with pytest.raises(ValueError, match="exceeds num_perm"):
        DedupConfig(bands=20, rows=8)
    with pytest.raises(ValueError, match="both bands and rows"):
        DedupConfig(bands=None)
    with pytest.raises(ConfigError, match="keep_rule"):
        from_dict(DedupConfig, {"keep_rule": ["newest"]})
    cfg = from_dict(DedupConfig, {"threshold": 0.7, "keep_rule": ["highest_quality"]})
    assert cfg.keep_rule == ("highest_quality",) and cfg.threshold == 0.7


def test_sampled_jaccard_is_exact_for_complete_samples_and_close_otherwise(words: list[str]) -> None:
    a = shingle_hashes(normalize_for_dedup(" ".join(words[:4000])), 5)
    b = shingle_hashes(normalize_for_dedup(" ".join(words[400:4400])), 5)  # J ~ 0.82
    truth = exact_jaccard(a, b)
    sample, complete = shingle_sample(a, a.size)
    assert complete and sampled_jaccard(sample, complete, b) == truth
    sample, complete = shingle_sample(a, 1024)
    assert not complete and sample.size == 1024 and np.array_equal(sample, np.sort(a)[:1024])
    assert abs(sampled_jaccard(sample, complete, b) - truth) < 4 * np.sqrt(truth * (1 - truth) / 1024)
    assert sampled_jaccard(sample, complete, a) == 1.0
