"""Keys and values of earlier tokens, kept so each decoding step computes only the new token.

Rolling buffer (Mistral, Jiang et al. 2023, sec. 2 "Rolling Buffer Cache"). With a sliding window of
W keys no query ever looks further back than W - 1 tokens, so the cache has W slots and the keys and
values of sequence column ``c`` go to slot ``c mod W``, overwriting column ``c - W``, which no later
query can see. Memory is W per layer however long the generation runs. A model without a window gets
one slot per column of the whole generation (prompt plus new tokens), which therefore has to fit in
``max_seq_len``.

A forward over ``T`` new tokens (one decoding step, or a pre-fill chunk of up to W) attends over the
concatenation [cached slots | new keys]: the cache is read before the chunk overwrites any slot, so
a query early in the chunk still sees the old columns that a later column of the same chunk is about
to evict. Which key a query may see is decided from the column each slot holds, with the model's own
rule (``trainer.model.in_window``), so the cached path and the full forward mask the same keys.

Batches are left-padded: row ``b`` starts with ``pad[b]`` filler columns. Every row then advances one
column per step in lockstep, so one slot index serves the whole batch, and the rotary position of
column ``c`` in row ``b`` is ``c - pad[b]``. Filler keys are masked for every real query. A filler
query may see only itself: a query that sees no key at all would give NaN, and NaN values would leak
through a zero attention weight (0 * NaN = NaN) into real rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from trainer.config import ModelConfig
from trainer.model import in_window


class _Layer:
    """The ``LayerCache`` the model's attention calls for layer ``index``."""

    __slots__ = ("cache", "index")

    def __init__(self, cache: RollingKVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.cache.attend(self.index, q, k, v)


class RollingKVCache:
    """Per-layer key/value buffers of ``capacity`` slots for a left-padded batch (see module docstring)."""

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        pad: Sequence[int],
        total_len: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """``pad``: filler columns at the start of each row; ``total_len``: columns the batch will hold
        (padded prompt plus new tokens), which sizes the cache of a model without a window."""
        if total_len <= 0:
            raise ValueError(f"total_len must be positive, got {total_len}")
        self.window = cfg.sliding_window
        if self.window is None and total_len > cfg.max_seq_len:
            raise ValueError(f"{total_len} columns exceed max_seq_len {cfg.max_seq_len} (no sliding window)")
        self.capacity = min(self.window, total_len) if self.window is not None else total_len
        self.pad = torch.as_tensor(list(pad), dtype=torch.long, device=device)  # (B,)
        batch = self.pad.numel()
        shape = (cfg.n_layers, batch, cfg.kv_heads, self.capacity, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, KV, S, hd)
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, KV, S, hd)
        self.slot_col = torch.full((self.capacity,), -1, dtype=torch.long, device=device)  # (S,) -1: empty
        self.next_col = 0
        self._bias: torch.Tensor | None = None
        self._new_cols: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the key/value buffers; constant for the cache's lifetime."""
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    def start(self, n_new: int) -> torch.Tensor:
        if self.window is None and self.next_col + n_new > self.capacity:
            raise ValueError(
                f"cache full: {self.next_col} + {n_new} columns exceed its {self.capacity} slots"
            )
        device = self.slot_col.device
        new_cols = torch.arange(self.next_col, self.next_col + n_new, device=device)  # (T,)
        key_cols = torch.cat((self.slot_col, new_cols))  # (S + T,)
        allowed = in_window(new_cols[:, None], key_cols[None, :], self.window)  # (T, S + T)
        allowed = allowed & (key_cols >= 0)[None, :]  # empty slots hold nothing
        real_key = key_cols[None, :] >= self.pad[:, None]  # (B, S + T)
        itself = new_cols[:, None] == key_cols[None, :]  # (T, S + T)
        allowed = (allowed[None] & real_key[:, None, :]) | itself[None]  # (B, T, S + T)
        bias = torch.zeros(allowed.shape, dtype=self.k.dtype, device=device)
        self._bias = bias.masked_fill_(~allowed, float("-inf")).unsqueeze(1)  # (B, 1, T, S + T)
        self._new_cols = new_cols
        return (new_cols[None, :] - self.pad[:, None]).clamp_min(0)  # (B, T)

    def layer(self, index: int) -> _Layer:
        return _Layer(self, index)

    def attend(self, index: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, H, T, hd), k/v (B, KV, T, hd) of the new tokens -> (B, H, T, hd); stores k/v."""
        assert self._bias is not None and self._new_cols is not None, "start() must precede attend()"
        keys = torch.cat((self.k[index], k.to(self.k.dtype)), dim=2)  # (B, KV, S + T, hd)
        values = torch.cat((self.v[index], v.to(self.v.dtype)), dim=2)  # (B, KV, S + T, hd)
        y = F.scaled_dot_product_attention(
            q, keys.to(q.dtype), values.to(q.dtype), attn_mask=self._bias.to(q.dtype), enable_gqa=True
        )  # (B, H, T, hd)
        keep = min(k.size(2), self.capacity)  # of a chunk longer than the buffer, only the tail survives
        slots = self._new_cols[-keep:] % self.capacity  # (keep,) distinct
        self.k[index].index_copy_(2, slots, k[:, :, -keep:].to(self.k.dtype))
        self.v[index].index_copy_(2, slots, v[:, :, -keep:].to(self.v.dtype))
        return y

    def advance(self, n_new: int) -> None:
        assert self._new_cols is not None and self._new_cols.numel() == n_new
        keep = min(n_new, self.capacity)
        self.slot_col[self._new_cols[-keep:] % self.capacity] = self._new_cols[-keep:]
        self.next_col += n_new
        self._bias = self._new_cols = None
