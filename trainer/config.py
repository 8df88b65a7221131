"""The decoder's shape: one frozen dataclass that a YAML file under ``configs/model/`` fills in.

Load it with the project's one loader, ``filters.config.load_yaml(ModelConfig, path)``; unknown keys
fail there with the file and key named, and the checks below turn an inconsistent shape into a
``ValueError`` that names the fields (the loader re-raises it as a ``ConfigError``).

The vocabulary size belongs to the tokenizer, not to the architecture. A YAML file states one so the
model can be built (and its parameters counted) on its own; a trainer that has a tokenizer overrides it
either when loading, ``load_yaml(ModelConfig, path, overrides={"vocab_size": sp.vocab_size()})``, or on
an existing config, ``cfg.with_vocab_size(sp.vocab_size())``. Both run the same validation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A LLaMA-1 / Mistral-style pre-norm decoder: RMSNorm, RoPE, (grouped-query) attention, SwiGLU."""

    dim: int
    """Width of the residual stream (LLaMA's and Mistral's ``dim``, Hugging Face's ``hidden_size``)."""

    n_layers: int
    """Number of transformer blocks."""

    n_heads: int
    """Number of query heads; the head width is ``dim // n_heads``."""

    vocab_size: int
    """Rows of the embedding and of the output head; the trainer overrides it from the tokenizer."""

    ffn_hidden: int
    """Width of the SwiGLU hidden layer. Given explicitly rather than derived from ``dim`` because the
    published models round it differently (LLaMA-7B 11008 = 2/3 * 4 * 4096 rounded up to 256;
    Mistral-7B 14336 = 3.5 * 4096)."""

    n_kv_heads: int | None = None
    """Number of key/value heads for grouped-query attention (Ainslie et al. 2023); ``None`` means one per
    query head, i.e. plain multi-head attention as in LLaMA-1."""

    norm_eps: float = 1e-5
    """Epsilon inside RMSNorm's square root (LLaMA-1 used 1e-6, Mistral 1e-5)."""

    rope_theta: float = 10000.0
    """Base of the rotary frequencies (Su et al. 2021 use 10000)."""

    max_seq_len: int = 2048
    """Longest sequence the model accepts; the rotary tables are precomputed up to this length."""

    sliding_window: int | None = None
    """Keys each token sees, itself included (Mistral's sliding-window attention); ``None`` means full
    causal attention. See ``trainer.model`` for the off-by-one against Mistral's reference code."""

    tie_embeddings: bool = False
    """Share the input embedding with the output head (off in LLaMA and Mistral)."""

    init_std: float = 0.02
    """Standard deviation of the normal init of embeddings and linear layers (GPT-2 and Hugging Face's
    LLaMA ``initializer_range``); residual output projections are further scaled in ``init_weights``."""

    def __post_init__(self) -> None:
        for name in ("dim", "n_layers", "n_heads", "vocab_size", "ffn_hidden", "max_seq_len"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("norm_eps", "rope_theta", "init_std"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.dim % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide dim ({self.dim})")
        if self.head_dim % 2:
            # RoPE rotates pairs of channels, so every head needs an even width.
            raise ValueError(
                f"head width dim / n_heads = {self.dim} / {self.n_heads} = {self.head_dim} must be even"
            )
        if self.n_kv_heads is not None:
            if self.n_kv_heads <= 0:
                raise ValueError(f"n_kv_heads must be positive or null, got {self.n_kv_heads}")
            if self.n_heads % self.n_kv_heads:
                raise ValueError(f"n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})")
        if self.sliding_window is not None:
            if self.sliding_window <= 0:
                raise ValueError(f"sliding_window must be positive or null, got {self.sliding_window}")
            if self.sliding_window > self.max_seq_len:
                raise ValueError(
                    f"sliding_window ({self.sliding_window}) exceeds max_seq_len ({self.max_seq_len}); "
                    "a window that long never binds, set sliding_window: null for full causal attention"
                )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads actually built (``n_kv_heads`` with ``None`` resolved)."""
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    def with_vocab_size(self, vocab_size: int) -> ModelConfig:
        """The same shape with the tokenizer's vocabulary size; validated like a loaded config."""
        return dataclasses.replace(self, vocab_size=vocab_size)
