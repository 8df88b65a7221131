"""The mixture loader on real shards: proportions, rank disjointness, held-out split, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.trainer.conftest import WEIGHTS, Corpus
from trainer.data import MixtureLoader, _Permutation
from trainer.mixture import load_mixture
from trainer.shards import ShardReader

SEQ_LEN = 32


def loader(corpus: Corpus, **kwargs) -> MixtureLoader:
    args = dict(seq_len=SEQ_LEN, batch_size=16, seed=7, heldout_every=10)
    args.update(kwargs)
    return MixtureLoader(load_mixture(corpus.mixture), **args)


def test_realized_source_frequencies_match_the_weights(corpus: Corpus) -> None:
    data = loader(corpus, batch_size=100)
    sources = np.concatenate([data.next_batch().sources for _ in range(100)])  # 10,000 samples
    for i, name in enumerate(data.source_names):
        share = float(np.mean(sources == i))
        assert abs(share - WEIGHTS[name]) < 0.02, (name, share)


def test_two_ranks_never_yield_the_same_window(corpus: Corpus) -> None:
    seen: list[set[tuple[int, int]]] = []
    for rank in (0, 1):
        data = loader(corpus, rank=rank, world_size=2)
        pairs = set()
        for _ in range(60):
            batch = data.next_batch()
            pairs |= set(zip(batch.sources.tolist(), batch.windows.tolist()))
        assert len(pairs) == 60 * 16, "a rank repeated a window inside one epoch"
        seen.append(pairs)
    assert not seen[0] & seen[1]


def test_resume_mid_stream_gives_the_same_next_batches(corpus: Corpus) -> None:
    straight = loader(corpus, rank=1, world_size=2)
    for _ in range(7):
        straight.next_batch()
    state = straight.state_dict()
    expected = [straight.next_batch() for _ in range(5)]
    resumed = loader(corpus, rank=1, world_size=2)
    resumed.load_state_dict(state)
    for want, got in zip(expected, (resumed.next_batch() for _ in range(5))):
        assert torch.equal(want.inputs, got.inputs) and torch.equal(want.targets, got.targets)
        assert want.windows.tolist() == got.windows.tolist()


def test_resume_under_a_different_layout_is_refused(corpus: Corpus) -> None:
    state = loader(corpus, rank=0, world_size=2).state_dict()
    with pytest.raises(ValueError, match="world_size=2 but this run has 1"):
        loader(corpus).load_state_dict(state)


def test_windows_are_shifted_shard_slices_and_cross_documents(corpus: Corpus) -> None:
    data = loader(corpus)
    batch = data.next_batch()
    assert batch.inputs.shape == batch.targets.shape == (16, SEQ_LEN)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    manifest = load_mixture(corpus.mixture).manifests[0]
    shard = ShardReader(manifest, manifest.shards[0])
    src = data.sources[0]
    assert src.read(3).tolist() == shard.tokens[3 * SEQ_LEN : 4 * SEQ_LEN + 1].tolist()
    boundary = int(shard.offsets[1])  # first token of document 1; its EOS sits just before
    window = src.read((boundary - 1) // SEQ_LEN)
    cut = (boundary - 1) % SEQ_LEN
    assert window[cut] == manifest.eos_id
    assert window[cut + 1 :].tolist() == shard.document(1)[: SEQ_LEN - cut].tolist()


def test_heldout_windows_are_never_trained_on(corpus: Corpus) -> None:
    data = loader(corpus, batch_size=64)
    trained = set()
    for _ in range(40):
        batch = data.next_batch()
        trained |= set(zip(batch.sources.tolist(), batch.windows.tolist()))
    for s, src in enumerate(data.sources):
        held = {int(w) for b in data.heldout_batches(s, max_windows=10**9, batch_size=50) for w in b.windows}
        assert len(held) == src.n_heldout > 0
        assert all(w % 10 == 9 for w in held)
        assert not held & {w for (ts, w) in trained if ts == s}


def test_feistel_permutation_is_a_bijection() -> None:
    for n in (1, 2, 7, 1000, 4097):
        perm = _Permutation(n, key=12345)
        assert sorted(perm(i) for i in range(n)) == list(range(n))
    assert [_Permutation(1000, 1)(i) for i in range(10)] != [_Permutation(1000, 2)(i) for i in range(10)]
