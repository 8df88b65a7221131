"""Our decoder against Hugging Face's Llama and Mistral: eager attention, fp32, CPU, random init, no download.

Weights go across through ``trainer.hf_keys`` only, with no permutation; logits must agree to 1e-4.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from trainer.config import ModelConfig  # noqa: E402
from trainer.hf_keys import from_hf_state_dict, hf_config_kwargs, to_hf_state_dict  # noqa: E402
from trainer.model import Transformer  # noqa: E402

TOL = 1e-4
SEQ = 40
# Random init at HF's default 0.02 leaves attention almost uniform, so a one-key difference in the window
# would hide below the tolerance; a larger init makes attention peaked and every mask difference visible.
INIT_STD = 0.3


def tiny(**overrides: object) -> ModelConfig:
    base = dict(
        dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=97, ffn_hidden=96,
        max_seq_len=64, norm_eps=1e-5, rope_theta=10000.0, init_std=INIT_STD,
    )  # fmt: skip
    base.update(overrides)
    return ModelConfig(**base)  # type: ignore[arg-type]


def hf_model(cfg: ModelConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = hf_config_kwargs(cfg)
    if cfg.sliding_window is None:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**kwargs, attn_implementation="eager"))
    else:
        mistral = transformers.MistralConfig(**kwargs, attn_implementation="eager")
        model = transformers.MistralForCausalLM(mistral)
    assert model.config._attn_implementation == "eager"
    return model.eval()


def ours_from(hf: torch.nn.Module, cfg: ModelConfig) -> Transformer:
    model = Transformer(cfg)
    model.load_state_dict(from_hf_state_dict(hf.state_dict(), cfg), strict=True)
    return model.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 97, (2, SEQ), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("tie", [False, True])
def test_llama_gqa_logits_match(tokens: torch.Tensor, tie: bool) -> None:
    cfg = tiny(tie_embeddings=tie)
    hf = hf_model(cfg)
    assert hf.config.num_key_value_heads == 2 < hf.config.num_attention_heads
    ours = ours_from(hf, cfg)
    with torch.no_grad():
        assert max_diff(ours(tokens), hf(tokens).logits) < TOL


@pytest.mark.parametrize("window", [1, 7, 16])
def test_mistral_window_logits_match(tokens: torch.Tensor, window: int) -> None:
    cfg = tiny(sliding_window=window)
    assert window < SEQ
    hf = hf_model(cfg)
    ours = ours_from(hf, cfg)
    with torch.no_grad():
        assert max_diff(ours(tokens), hf(tokens).logits) < TOL


def test_hf_mistral_applies_the_window_with_our_convention(tokens: torch.Tensor) -> None:
    """HF's eager Mistral really masks (it differs from no window), and by exactly our W, not W +- 1."""
    window = 7
    cfg = tiny(sliding_window=window)
    hf = hf_model(cfg)
    with torch.no_grad():
        hf_logits = hf(tokens).logits
        for other in (None, window - 1, window + 1):
            shifted = ours_from(hf, tiny(sliding_window=other))(tokens)
            # Identical up to position W-1 (no window binds there yet), clearly different after.
            assert max_diff(shifted[:, : window - 1], hf_logits[:, : window - 1]) < TOL
            assert max_diff(shifted[:, window + 1 :], hf_logits[:, window + 1 :]) > 100 * TOL, other


def test_positions_match_hf_position_ids(tokens: torch.Tensor) -> None:
    cfg = tiny(sliding_window=7)
    hf = hf_model(cfg)
    ours = ours_from(hf, cfg)
    positions = torch.stack([torch.arange(SEQ) + 5, torch.arange(SEQ) + 11])  # (B, T)
    with torch.no_grad():
        assert max_diff(ours(tokens, positions=positions), hf(tokens, position_ids=positions).logits) < TOL


def test_state_dict_round_trip_is_exact() -> None:
    for cfg in (tiny(), tiny(sliding_window=7, tie_embeddings=True)):
        hf = hf_model(cfg)
        hf_sd = hf.state_dict()
        back = to_hf_state_dict(from_hf_state_dict(hf_sd, cfg), cfg)
        assert set(back) == set(hf_sd)
        assert all(torch.equal(back[k], hf_sd[k]) for k in hf_sd)
        hf.load_state_dict(back, strict=True)


def test_mapping_rejects_a_checkpoint_of_another_shape() -> None:
    cfg = tiny()
    sd = Transformer(cfg).state_dict()
    with pytest.raises(KeyError, match=r"missing \['layers\.2\."):
        to_hf_state_dict(sd, tiny(n_layers=3))
    hf_sd = hf_model(cfg).state_dict()
    with pytest.raises(KeyError, match=r"unexpected \['model\.layers\.1\."):
        from_hf_state_dict(hf_sd, tiny(n_layers=1))
