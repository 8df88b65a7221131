"""A LLaMA-1 / Mistral-style decoder, top to bottom: RMSNorm, RoPE, attention, SwiGLU, block, model.

Only modules live here. Sharding, activation checkpointing and compilation are applied from outside
by ``trainer.parallelize`` to a model built on the meta device, which is why ``init_weights`` is a
separate method: it runs after the parameters have been materialized on their real device.

Parameter names follow Meta's LLaMA reference code (``attention.wq``, ``feed_forward.w1``, ...);
``trainer.hf_keys`` renames them to Hugging Face's. The rotary embedding uses Hugging Face's
convention (rotate the two halves of a head, not interleaved pairs), so weights copy across with a
rename only and no permutation of the query/key rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig

# --------------------------------------------------------------------------------------------------
# RMSNorm (Zhang & Sennrich 2019), as in LLaMA: no mean subtraction, no bias.


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalize in float32 even under bf16 autocast/FSDP: the mean of squares loses too much in bf16.
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., dim)
        return self.weight * normed.to(x.dtype)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


# --------------------------------------------------------------------------------------------------
# Rotary position embedding (Su et al. 2021), Hugging Face layout: channel i pairs with i + head_dim/2.


class RotaryTables(nn.Module):
    """Precomputed cos/sin for every position up to ``max_seq_len``.

    The tables are non-persistent buffers: they are a pure function of the config, so they stay out of
    checkpoints, and ``reset()`` recomputes them after a meta-device model is materialized.
    """

    def __init__(self, head_dim: int, max_seq_len: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.max_seq_len, self.theta = head_dim, max_seq_len, theta
        self.register_buffer("cos", torch.empty(max_seq_len, head_dim), persistent=False)
        self.register_buffer("sin", torch.empty(max_seq_len, head_dim), persistent=False)
        if self.cos.device.type != "meta":
            self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        device = self.cos.device
        # float32 throughout, as Hugging Face computes them, so the two models agree to rounding.
        channels = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device)  # (hd/2,)
        inv_freq = 1.0 / (self.theta ** (channels / self.head_dim))  # (hd/2,)
        t = torch.arange(self.max_seq_len, dtype=torch.float32, device=device)  # (S,)
        freqs = torch.outer(t, inv_freq)  # (S, hd/2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (S, hd)
        self.cos.copy_(angles.cos())
        self.sin.copy_(angles.sin())

    def forward(self, positions: torch.Tensor | None, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin shaped to broadcast against (B, H, T, hd): (T, hd) or (B, 1, T, hd)."""
        if positions is None:
            return self.cos[:seq_len], self.sin[:seq_len]  # (T, hd)
        cos, sin = self.cos[positions], self.sin[positions]  # (T, hd) or (B, T, hd)
        if positions.dim() == 2:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, hd)
        return cos, sin

    def at(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (B, 1, T, hd) for positions (B, T) that may lie beyond the tables.

        A sliding-window model decodes past ``max_seq_len`` (its cache holds only W keys), and RoPE
        scores depend only on the distance q - k < W, so far positions need nothing but their phases.
        Inside the tables they are looked up, so there the phases are exactly the full forward's.
        """
        if int(positions.max()) < self.max_seq_len:
            return self(positions, positions.size(-1))
        channels = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=positions.device)  # (hd/2,)
        inv_freq = 1.0 / (self.theta ** (channels / self.head_dim))  # (hd/2,)
        freqs = positions.to(torch.float32)[..., None] * inv_freq  # (B, T, hd/2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (B, T, hd)
        return angles.cos().unsqueeze(1), angles.sin().unsqueeze(1)  # (B, 1, T, hd)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)  # (..., hd/2) each
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)  # (B, H, T, hd)


# --------------------------------------------------------------------------------------------------
# Attention masks. Window convention: with window W a token sees W keys, itself and the W-1 before it
# (key k is visible from query q iff 0 <= q - k < W). That is the Hugging Face convention
# (transformers masking_utils.sliding_window_overlay: kv_idx > q_idx - W; its flash-attn path passes
# window_size=(W-1, W-1), which with causal=True is the same W keys). Mistral's reference code
# (mistral-src one_file_ref.py: tril, then triu(diagonal=-W)) lets a token see W+1 keys. The two agree up
# to position W-1 and then differ by the one key at the far edge of the window; Hugging Face's Mistral
# port, whose weights most users load, uses W keys, and tests/trainer/test_parity_hf.py pins it.


def in_window(q_idx: torch.Tensor, kv_idx: torch.Tensor, window: int | None) -> torch.Tensor:
    """The one visibility rule, shared by the dense band mask and the FlexAttention mask_mod."""
    causal = kv_idx <= q_idx
    if window is None:
        return causal
    return causal & (q_idx - kv_idx < window)


def band_mask(seq_len: int, window: int | None, device: torch.device) -> torch.Tensor:
    """Boolean (T, T) mask, True where attention is allowed."""
    idx = torch.arange(seq_len, device=device)
    return in_window(idx[:, None], idx[None, :], window)  # (T, T)


def sliding_window_mask_mod(window: int) -> Callable[..., torch.Tensor]:
    """A FlexAttention ``mask_mod(b, h, q_idx, kv_idx)`` for the sliding-window causal mask."""

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        return in_window(q_idx, kv_idx, window)

    return mask_mod


# The masks are cached, one per shape, and fetched once per forward by ``Transformer.forward``, which runs
# eagerly (``trainer.parallelize`` compiles the blocks, not the model). They must not be fetched inside a
# compiled block: Dynamo ignores ``functools.lru_cache`` and traces the builder into the graph, so the
# mask would be rebuilt on every call of every block (measured: 2 layers x 3 forwards = 6 builds of the
# FlexAttention block mask, with no graph break to give it away). ``attention_mask`` is therefore
# excluded from compilation: called where it should not be, it costs a visible graph break, never a
# silent rebuild. tests/trainer/test_attention_mask.py pins both.


@functools.lru_cache(maxsize=16)
def _band_bias(seq_len: int, window: int, device: torch.device) -> torch.Tensor:
    # An additive 0 / -inf mask rather than a boolean one: torch 2.13's CPU SDPA runs about 3x slower
    # forward+backward with a boolean mask (measured, T=128, 4 heads, GQA). Float32; ``attend`` casts.
    allowed = band_mask(seq_len, window, device)  # (T, T)
    return torch.zeros(seq_len, seq_len, device=device).masked_fill_(~allowed, float("-inf"))


@functools.lru_cache(maxsize=16)
def _sliding_block_mask(seq_len: int, window: int, device: torch.device):  # -> BlockMask
    # Built once per (T, W, device): create_block_mask walks the whole (T, T) grid, far too slow per step.
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(sliding_window_mask_mod(window), None, None, seq_len, seq_len, device=device)


@functools.cache
def _compiled_flex_attention() -> Callable[..., torch.Tensor]:
    # Uncompiled flex_attention falls back to a dense reference implementation; compile it once.
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def attention_backend(device: torch.device, seq_len: int, window: int | None) -> str:
    """Which kernel ``attend`` uses; separate so the dispatch can be tested on a CPU-only machine.

    - "causal":  no window binds (none set, or T <= W): SDPA is_causal (the flash kernel on GPU).
    - "flex":    GPU with a binding window: FlexAttention with a cached sliding-window block mask.
    - "band":    CPU (or any non-CUDA device) with a binding window: SDPA with an explicit band mask.
                 FlexAttention has no CPU backward in torch 2.13, so this is also the fallback.
    """
    if window is None or seq_len <= window:
        return "causal"
    if device.type == "cuda":
        return "flex"
    return "band"


AttentionMask = Any  # None ("causal"), a float (T, T) bias ("band") or a FlexAttention BlockMask ("flex")


@torch.compiler.disable
def attention_mask(seq_len: int, window: int | None, device: torch.device) -> AttentionMask:
    """The cached mask ``attend`` needs at this shape; call it outside compiled code (see above)."""
    backend = attention_backend(device, seq_len, window)
    if backend == "flex":
        assert window is not None
        return _sliding_block_mask(seq_len, window, device)
    if backend == "band":
        assert window is not None
        return _band_bias(seq_len, window, device)
    return None


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None, mask: AttentionMask = None
) -> torch.Tensor:
    """Causal (optionally sliding-window) attention with grouped K/V heads, never repeating K/V.

    q: (B, H, T, hd); k, v: (B, KV, T, hd) with KV dividing H. Returns (B, H, T, hd). ``mask`` is
    ``attention_mask(T, window, q.device)``; without it the mask is fetched here, which inside a compiled
    block is a graph break.
    """
    seq_len = q.size(2)
    backend = attention_backend(q.device, seq_len, window)
    if backend == "causal":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    if mask is None:
        mask = attention_mask(seq_len, window, q.device)
    if backend == "flex":
        # Inside a compiled block Dynamo lowers flex_attention itself; eagerly it needs the compiled wrapper.
        if torch.compiler.is_compiling():
            from torch.nn.attention.flex_attention import flex_attention

            return flex_attention(q, k, v, block_mask=mask, enable_gqa=True)
        return _compiled_flex_attention()(q, k, v, block_mask=mask, enable_gqa=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), enable_gqa=True)


class LayerCache(Protocol):
    """One layer's slice of a decoding cache (``trainer.kv_cache``): it stores the new keys/values and
    attends over them together with the cached ones, applying its own causal/window/padding mask."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...


class DecodeCache(Protocol):
    """What ``Transformer.forward(cache=...)`` needs from a cache: positions of the new tokens, one
    ``LayerCache`` per layer, and a call once every layer has stored its keys/values."""

    def start(self, n_new: int) -> torch.Tensor:
        """Rotary positions (B, T) of the next ``n_new`` tokens; prepares the chunk's mask."""
        ...

    def layer(self, index: int) -> LayerCache: ...

    def advance(self, n_new: int) -> None: ...


# --------------------------------------------------------------------------------------------------
# Grouped-query attention (Ainslie et al. 2023); n_kv_heads == n_heads is ordinary multi-head attention.


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.window = cfg.sliding_window
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None = None,
        mask: AttentionMask = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = attend(q, k, v, self.window, mask) if cache is None else cache.attend(q, k, v)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)  # (B, T, dim)
        return self.wo(y)


# --------------------------------------------------------------------------------------------------
# SwiGLU feed-forward (Shazeer 2020), LLaMA naming: w1 gate, w3 up, w2 down.


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # (B, T, dim)


# --------------------------------------------------------------------------------------------------
# Pre-norm block and the model.


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.ffn_hidden)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None = None,
        mask: AttentionMask = None,
    ) -> torch.Tensor:
        """``mask`` is ``attention_mask(...)`` for this shape, fetched once per forward by the model."""
        h = x + self.attention(self.attention_norm(x), cos, sin, cache, mask)  # (B, T, dim)
        return h + self.feed_forward(self.ffn_norm(h))  # (B, T, dim)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.rotary = RotaryTables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        if self.output.weight.device.type != "meta":
            self.init_weights()

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        cache: DecodeCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Float32 logits (B, T, V) for token ids (B, T).

        ``positions`` ((T,) or (B, T), default 0..T-1) only sets the rotary phases; the causal and window
        masks always follow the order of tokens within the sequence.

        With ``cache`` (``trainer.kv_cache.RollingKVCache``) the tokens continue the cached sequence: the
        cache supplies positions and masks and keeps the new keys/values. ``last_only`` returns only the
        final position's logits (B, 1, V), all decoding needs, without a (B, T, V) tensor per chunk.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, seq_len), got shape {tuple(tokens.shape)}")
        T = tokens.size(1)
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.cfg.max_seq_len}")
        if cache is not None:
            if positions is not None:
                raise ValueError("positions come from the cache; pass one or the other")
            return self._forward_cached(tokens, cache, last_only)
        if positions is not None:
            if positions.shape[-1] != T or positions.dim() not in (1, 2):
                raise ValueError(f"positions must be (T,) or (B, T) with T={T}, got {tuple(positions.shape)}")
            # Checked off-GPU only: on CUDA the check would cost a host sync every step.
            if positions.device.type == "cpu" and positions.numel():
                last = int(positions.max())
                if last >= self.cfg.max_seq_len:
                    raise ValueError(f"positions reach {last}, beyond max_seq_len {self.cfg.max_seq_len}")
        cos, sin = self.rotary(positions, T)  # (T, hd) or (B, 1, T, hd)
        mask = attention_mask(T, self.cfg.sliding_window, tokens.device)  # cached; outside compiled blocks
        h = self.tok_embeddings(tokens)  # (B, T, dim)
        for layer in self.layers:
            h = layer(h, cos, sin, mask=mask)  # (B, T, dim)
        if last_only:
            h = h[:, -1:]  # (B, 1, dim)
        h = self.norm(h)  # (B, T, dim)
        return self.output(h).float()  # (B, T, V)

    def _forward_cached(self, tokens: torch.Tensor, cache: DecodeCache, last_only: bool) -> torch.Tensor:
        positions = cache.start(tokens.size(1))  # (B, T)
        cos, sin = self.rotary.at(positions)  # (B, 1, T, hd)
        h = self.tok_embeddings(tokens)  # (B, T, dim)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, cache.layer(i))  # (B, T, dim)
        cache.advance(tokens.size(1))
        if last_only:
            h = h[:, -1:]  # (B, 1, dim)
        return self.output(self.norm(h)).float()  # (B, T, V)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialize in place; safe to call on sharded (DTensor) parameters after ``to_empty``.

        Normal(0, init_std) for embeddings and linears (GPT-2; Hugging Face's LLaMA init). The two
        projections that write into the residual stream (``wo``, ``w2``) get std / sqrt(2 * n_layers),
        GPT-2's scaling for the accumulation along depth (Radford et al. 2019, sec. 2.3), as nanoGPT does.
        """
        std = self.cfg.init_std
        residual_std = std / math.sqrt(2 * self.cfg.n_layers)
        self.rotary.reset()
        nn.init.normal_(self.tok_embeddings.weight, mean=0.0, std=std)
        for layer in self.layers:
            block = _unwrap(layer)
            attn, ffn = block.attention, block.feed_forward
            for lin in (attn.wq, attn.wk, attn.wv, ffn.w1, ffn.w3):
                nn.init.normal_(lin.weight, mean=0.0, std=std)
            for lin in (attn.wo, ffn.w2):
                nn.init.normal_(lin.weight, mean=0.0, std=residual_std)
            block.attention_norm.reset_parameters()
            block.ffn_norm.reset_parameters()
        self.norm.reset_parameters()
        if not self.cfg.tie_embeddings:
            nn.init.normal_(self.output.weight, mean=0.0, std=std)

    def num_params(self, *, exclude_input_embedding: bool = False) -> int:
        """Parameter count, each tied tensor once.

        ``exclude_input_embedding`` drops the embedding table unless it is tied to the output head: a
        lookup does no matmul FLOPs, while the head does (see ``trainer.mfu``).
        """
        total = sum(p.numel() for p in self.parameters())
        if exclude_input_embedding and not self.cfg.tie_embeddings:
            total -= self.tok_embeddings.weight.numel()
        return total


def _unwrap(module: nn.Module) -> nn.Module:
    """The block inside an activation-checkpoint wrapper, if ``parallelize`` put one around it."""
    return getattr(module, "_checkpoint_wrapped_module", module)
