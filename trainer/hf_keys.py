"""Rename state-dict keys between our model and Hugging Face's ``LlamaForCausalLM``/``MistralForCausalLM``.

Pure functions on dicts of tensors, with no ``transformers`` import, so the parity test and the
``export-hf`` command share one mapping. It is a rename only: ``trainer.model`` uses Hugging Face's
rotate-half RoPE layout, so the query/key rows need none of the permutation that converting Meta's
original interleaved checkpoints requires.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from trainer.config import ModelConfig

# Per-layer names: ours (Meta's LLaMA reference naming) -> Hugging Face's.
_LAYER_KEYS: dict[str, str] = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TOP_KEYS: dict[str, str] = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def _key_map(cfg: ModelConfig) -> dict[str, str]:
    """Every parameter of our model -> its Hugging Face name."""
    mapping = dict(_TOP_KEYS)
    for i in range(cfg.n_layers):
        for ours, theirs in _LAYER_KEYS.items():
            mapping[f"layers.{i}.{ours}"] = f"model.layers.{i}.{theirs}"
    return mapping


def _rename(
    sd: Mapping[str, torch.Tensor], mapping: dict[str, str], optional: set[str], side: str
) -> dict[str, torch.Tensor]:
    missing = sorted(k for k in mapping if k not in sd and k not in optional)
    unexpected = sorted(k for k in sd if k not in mapping)
    if missing or unexpected:
        raise KeyError(
            f"{side} state dict does not fit the config: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    return {mapping[k]: v for k, v in sd.items()}


def to_hf_state_dict(sd: Mapping[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our state dict -> Hugging Face's. With tied embeddings ``lm_head.weight`` is the same tensor as
    ``model.embed_tokens.weight``, which is what ``LlamaForCausalLM.state_dict()`` holds when tied."""
    out = _rename(sd, _key_map(cfg), optional={"output.weight"} if cfg.tie_embeddings else set(), side="our")
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["model.embed_tokens.weight"]
    return out


def from_hf_state_dict(sd: Mapping[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Hugging Face's state dict -> ours. A tied checkpoint may omit ``lm_head.weight`` (``save_pretrained``
    drops the duplicate); rotary ``inv_freq`` buffers, if an old checkpoint carries them, are ignored."""
    sd = {k: v for k, v in sd.items() if not k.endswith("rotary_emb.inv_freq")}
    inverse = {theirs: ours for ours, theirs in _key_map(cfg).items()}
    optional = {"lm_head.weight"} if cfg.tie_embeddings else set()
    out = _rename(sd, inverse, optional=optional, side="Hugging Face")
    if cfg.tie_embeddings:
        out["output.weight"] = out["tok_embeddings.weight"]
    return out


def hf_config_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for ``transformers.LlamaConfig`` / ``MistralConfig`` describing the same model.

    ``sliding_window`` carries over unchanged because both sides use the same convention (a token sees
    W keys, itself included); pass it only to ``MistralConfig`` (Llama has no window).
    """
    kwargs: dict[str, Any] = {
        "hidden_size": cfg.dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "intermediate_size": cfg.ffn_hidden,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": cfg.init_std,
        "hidden_act": "silu",
        "head_dim": cfg.head_dim,
    }
    if cfg.sliding_window is not None:
        kwargs["sliding_window"] = cfg.sliding_window
    return kwargs
