import pickle
from collections import Counter

import numpy as np
import pytest

from filters.count_sketch import CountSketch


@pytest.mark.parametrize("cells", [16, 1 << 12, 1 << 20])  # dense, turns dense, stays sparse
def test_sketch_bound_is_never_below_the_true_count(cells):
    """Crowded (16 cells for 300 lines) or roomy, no line may be under-counted: that would let a
    frequent line skip the exact count and stay in every page."""
    rng = np.random.default_rng(0)
    vocabulary = rng.integers(-(2**63), 2**63 - 1, size=300, dtype=np.int64)
    sketch, truth = CountSketch(cells), Counter()
    for _ in range(200):
        doc = np.unique(rng.choice(vocabulary, size=int(rng.integers(1, 40))))
        sketch.add(doc)
        truth.update(doc.tolist())
    bounds = sketch.upper_bounds(vocabulary)
    exact = np.array([min(truth[h], 255) for h in vocabulary.tolist()])
    assert (bounds >= exact).all()
    if cells > 1000:  # a roomy table is tight for most lines
        assert (bounds == exact).mean() > 0.9


def test_sketch_merge_and_pickle_keep_the_counts_and_saturate():
    a, b = CountSketch(1 << 20), CountSketch(1 << 20)
    line = np.array([42], dtype=np.int64)
    for _ in range(200):
        a.add(line)
        b.add(line)
    a.merge(b)
    assert a.upper_bounds(line).tolist() == [255]  # saturated, never wrapped to a small count
    copy = pickle.loads(pickle.dumps(a))
    assert copy.upper_bounds(line).tolist() == [255]
    assert copy.upper_bounds(np.array([7], dtype=np.int64)).tolist() == [0]
    assert len(pickle.dumps(a)) < 1_000  # only non-zero cells cross a shuffle, not 2 MB of table


def test_sketch_size_is_checked():
    with pytest.raises(ValueError, match="power of two"):
        CountSketch(1000)
    with pytest.raises(ValueError, match="cannot merge"):
        CountSketch(16).merge(CountSketch(32))


def test_sparse_and_dense_tables_give_the_same_bounds(monkeypatch):
    from filters import count_sketch

    rng = np.random.default_rng(1)
    docs = [rng.integers(-(2**63), 2**63 - 1, size=50, dtype=np.int64) for _ in range(100)]

    def sketch_of_parts() -> CountSketch:
        whole = CountSketch(1 << 18)
        for doc in docs:  # as a runner merges partial sketches
            part = CountSketch(1 << 18)
            part.add(np.concatenate([doc, doc[:5]]))
            whole.merge(pickle.loads(pickle.dumps(part)))
        return whole

    sparse = sketch_of_parts()
    monkeypatch.setattr(count_sketch, "_DENSE_SHARE", 0.0)
    dense = sketch_of_parts()
    assert sparse._dense is None and dense._dense is not None
    probe = np.concatenate(docs[:10] + [np.arange(100, dtype=np.int64)])
    assert sparse.upper_bounds(probe).tolist() == dense.upper_bounds(probe).tolist()
