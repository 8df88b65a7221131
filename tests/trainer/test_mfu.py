"""FLOPs per token and MFU against arithmetic written out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from filters.config import load_yaml
from trainer.config import ModelConfig
from trainer.mfu import count_params, flops_per_token, mean_attended_keys, mfu
from trainer.model import Transformer

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"

# dim 8, 2 layers, 2 query heads of width 4, 1 K/V head, SwiGLU hidden 16, vocab 10.
SHAPE = dict(dim=8, n_layers=2, n_heads=2, ffn_hidden=16, vocab_size=10, max_seq_len=6)
HAND = ModelConfig(**SHAPE, n_kv_heads=1, sliding_window=4)  # type: ignore[arg-type]


def test_hand_computed_parameter_count() -> None:
    # Per layer: wq 8*8=64, wk 8*4=32, wv 8*4=32, wo 8*8=64 -> 192; w1, w3, w2 3*8*16=384; 2 norms 16.
    per_layer = 192 + 384 + 16  # 592
    # Two layers 1184, final norm 8, output head 10*8=80; the input table 10*8=80 is left out.
    assert count_params(HAND, exclude_input_embedding=True) == 2 * per_layer + 8 + 80 == 1272
    assert count_params(HAND) == 1272 + 80 == 1352


def test_hand_computed_flops_with_window() -> None:
    # T=6, W=4: positions 0..5 see 1, 2, 3, 4, 4, 4 keys -> mean 18/6 = 3.0.
    assert mean_attended_keys(6, 4) == 3.0
    # 6N = 6*1272 = 7632; attention 12 * L=2 * H=2 * Q=4 * 3.0 = 576.
    assert flops_per_token(HAND, 6) == 7632 + 576 == 8208


def test_hand_computed_flops_without_window() -> None:
    # Full causal, T=6: 1..6 keys -> mean 21/6 = 3.5; attention 12*2*2*4*3.5 = 672.
    full = ModelConfig(**SHAPE, n_kv_heads=1)  # type: ignore[arg-type]
    assert mean_attended_keys(6, None) == 3.5
    assert flops_per_token(full, 6) == 7632 + 672 == 8304
    # A window no shorter than the sequence is the same as none.
    assert flops_per_token(HAND, 4) == flops_per_token(full, 4) == 7632 + 12 * 2 * 2 * 4 * 2.5


def test_hand_computed_mfu() -> None:
    # 1000 tokens/s * 8208 FLOP/token = 8.208e6 FLOP/s on a 1e7 FLOP/s device.
    assert mfu(1000.0, HAND, 6, 1e7) == pytest.approx(0.8208, rel=1e-12)
    with pytest.raises(ValueError, match="peak_flops must be positive"):
        mfu(1000.0, HAND, 6, 0.0)


def test_tied_head_counts_once() -> None:
    tied = ModelConfig(**SHAPE, tie_embeddings=True)  # type: ignore[arg-type]
    # Per layer with 2 K/V heads: attention 4*64=256, FFN 384, norms 16 -> 656;
    # two layers, the final norm, and the one shared table.
    assert count_params(tied, exclude_input_embedding=True) == 2 * 656 + 8 + 80 == 1400


def test_long_sequence_mean_keys_closed_form() -> None:
    T, W = 8192, 4096
    assert mean_attended_keys(T, W) == pytest.approx(sum(min(t + 1, W) for t in range(T)) / T, rel=1e-15)


@pytest.mark.parametrize("name", ["llama-7b", "mistral-7b", "tiny", "proxy-tiny"])
def test_count_matches_the_built_model(name: str) -> None:
    cfg = load_yaml(ModelConfig, CONFIGS / f"{name}.yaml")
    with torch.device("meta"):
        model = Transformer(cfg)
    assert count_params(cfg) == model.num_params()
    assert count_params(cfg, exclude_input_embedding=True) == model.num_params(exclude_input_embedding=True)


def test_llama_7b_flops_are_about_six_n() -> None:
    # At T=2048 the causal attention term adds 12*32*4096*1024.5 = 1.61 GFLOP to 6N = 39.6 GFLOP (4%).
    cfg = load_yaml(ModelConfig, CONFIGS / "llama-7b.yaml")
    n = 6_738_415_616 - 32000 * 4096
    assert flops_per_token(cfg, 2048) == 6 * n + 12 * 32 * 4096 * 1024.5
