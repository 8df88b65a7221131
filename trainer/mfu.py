"""Training FLOPs per token and model FLOPs utilization (MFU), from the config alone.

MFU (Chowdhery et al. 2022, PaLM, appendix B) is the achieved throughput of the model's own matmul
FLOPs over the hardware peak: rematerialization (activation checkpointing) does not count, so MFU is
comparable across parallelism and checkpointing choices.

Derivation, per token, for one forward and backward pass:

* Weights. A token passing through a weight matrix with N entries costs 2N FLOPs forward (one
  multiply and one add per entry) and 4N backward (gradients with respect to the input and to the
  weight), so 6N in total (Kaplan et al. 2020, sec. 2.1). We take N as every parameter except the
  input embedding table: a lookup does no matmul, while the output head is a real dim x vocab matmul.
  PaLM counts all parameters; for LLaMA-7B that adds the 131M-entry table (2% of N), so our MFU reads
  about 2% lower than a PaLM-convention figure. Norm gains (elementwise, under 0.01% of N) stay in.
  With tied embeddings the one shared matrix is the head's, and counts once.
* Attention scores. Per layer and query head of width Q, a query attending to k keys costs 2Qk for
  q.K^T and 2Qk for the weighted sum of V: 4HQk forward over H heads, 12HQk forward plus backward, and
  12 L H Q k over L layers. PaLM writes 12 L H Q T, counting every one of the T keys. We count only the
  keys a token actually sees, as a causal (and windowed) kernel computes only those: the token at
  position t (0-based) sees min(t + 1, W) keys, with W = T when there is no window, so k is the mean
  of that over the sequence. Without a window this is (T + 1) / 2, about half of PaLM's term.
  GQA does not change it: every query head still attends, only K/V projections shrink (which N sees).

    flops_per_token = 6 N + 12 L H Q k_mean
    MFU = tokens_per_second * flops_per_token / peak_flops
"""

from __future__ import annotations

from trainer.config import ModelConfig


def count_params(cfg: ModelConfig, *, exclude_input_embedding: bool = False) -> int:
    """Parameters of ``trainer.model.Transformer(cfg)``, computed without building it."""
    q_width, kv_width = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    attn = 2 * cfg.dim * q_width + 2 * cfg.dim * kv_width  # wq, wo; wk, wv
    ffn = 3 * cfg.dim * cfg.ffn_hidden  # w1, w3, w2
    norms = 2 * cfg.dim
    embedding = cfg.vocab_size * cfg.dim
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.dim
    total = cfg.n_layers * (attn + ffn + norms) + cfg.dim + embedding + head
    if exclude_input_embedding and not cfg.tie_embeddings:
        total -= embedding
    return total


def mean_attended_keys(seq_len: int, window: int | None) -> float:
    """Mean over positions t = 0..T-1 of the keys seen, min(t + 1, W); W = T without a window."""
    if seq_len <= 0:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    w = seq_len if window is None else min(window, seq_len)
    # Positions 0..w-1 see 1..w keys; the remaining T - w positions see w each.
    return (w * (w + 1) / 2 + (seq_len - w) * w) / seq_len


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Model FLOPs of one forward+backward pass, per token, at sequence length ``seq_len``."""
    n = count_params(cfg, exclude_input_embedding=True)
    keys = mean_attended_keys(seq_len, cfg.sliding_window)
    attention = 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * keys
    return 6 * n + attention


def mfu(tokens_per_s: float, cfg: ModelConfig, seq_len: int, peak_flops: float) -> float:
    """Fraction of ``peak_flops`` (FLOP/s of the hardware, summed over devices) that training achieves."""
    if not peak_flops > 0:
        raise ValueError(f"peak_flops must be positive, got {peak_flops}")
    if tokens_per_s < 0:
        raise ValueError(f"tokens_per_s must be non-negative, got {tokens_per_s}")
    return tokens_per_s * flops_per_token(cfg, seq_len) / peak_flops
