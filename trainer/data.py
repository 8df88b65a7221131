"""The mixture-aware loader: fixed-length windows sampled across sources, from memory-mapped shards.

Windows. Each shard is cut into consecutive windows of ``seq_len + 1`` tokens with stride
``seq_len`` (inputs are the first ``seq_len`` tokens, targets the last ``seq_len``); the shard's tail
shorter than a window is not used. Windows ignore document boundaries, as LLaMA and GPT pretraining
do: documents are packed back to back and the EOS between them tells the model where one ends, so
no token is spent on padding. Windows never span shards.

Held-out split. With ``heldout_every = H``, window ``w`` of a source (numbered across its shards) is
held out when ``w % H == H - 1``: one window in ``H``, spread evenly over the source rather than
taken from its end (which would be the last worker's last documents). Training never reads these
windows; they give the per-source held-out loss. Neighbouring windows share one boundary token.

Sampling. Each sample first picks a source with probability equal to its mixture weight, then takes
that source's next training window. A source's training windows are visited in a pseudo-random
order that is a bijection on ``[0, n)`` (a keyed Feistel network, so no permutation array of
``n`` entries is ever built) and is redrawn for every epoch over the source.

Data-parallel ranks. Rank ``r`` of ``W`` takes positions ``r, r + W, r + 2W, ...`` of each source's
visiting order (epoch ``e`` is positions ``[e n, (e + 1) n)``), so within an epoch no two ranks ever
read the same window, whatever rates they consume sources at. Source choices use a generator keyed
by ``(seed, rank, batch number)``, so a rank's stream depends on nothing but the seed, its rank and
how many batches it has produced.

Position. ``state_dict()`` is that batch count plus one counter per source; restoring it continues
the exact stream. It also records seed, rank, world size and window counts, and restoring under
different ones fails, because the no-overlap guarantee holds only for an unchanged layout.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainer.mixture import Mixture
from trainer.shards import Manifest, ShardReader

_MASK64 = (1 << 64) - 1
_MAX_OPEN_SHARDS = 64  # each memmap holds a file descriptor; keep well under the usual ulimit of 1024


@dataclass(frozen=True, slots=True)
class Batch:
    """One micro-batch; ``sources``/``windows`` say where each row came from (for logging and tests)."""

    inputs: torch.Tensor  # (B, T) int64
    targets: torch.Tensor  # (B, T) int64
    sources: np.ndarray  # (B,) source index into the mixture
    windows: np.ndarray  # (B,) window number within that source


def _splitmix64(x: int) -> int:
    """A 64-bit mixing function (Steele et al. 2014); good enough to key a permutation."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class _Permutation:
    """A keyed bijection on ``[0, n)``: a 4-round Feistel network on the next even bit width,
    cycle-walking outputs that land at or above ``n`` (at most 4x the domain, so ~2 walks)."""

    def __init__(self, n: int, key: int) -> None:
        bits = max(2, (n - 1).bit_length())
        bits += bits % 2
        self.n = n
        self.half = bits // 2
        self.mask = (1 << self.half) - 1
        self.round_keys = [_splitmix64(key ^ (r * 0x632BE59BD9B4E019)) for r in range(4)]

    def __call__(self, i: int) -> int:
        x = i
        while True:
            left, right = x >> self.half, x & self.mask
            for k in self.round_keys:
                left, right = right, left ^ (_splitmix64(right ^ k) & self.mask)
            x = (left << self.half) | right
            if x < self.n:
                return x


class _SourceWindows:
    """Window arithmetic and lazily opened shards for one source."""

    def __init__(self, name: str, manifest: Manifest, seq_len: int, heldout_every: int | None) -> None:
        self.name = name
        self.manifest = manifest
        self.seq_len = seq_len
        per_shard = np.array([max(0, (s.tokens - 1) // seq_len) for s in manifest.shards], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(per_shard)])
        self.n_windows = int(self.shard_starts[-1])
        self.heldout_every = heldout_every
        self.n_heldout = self.n_windows // heldout_every if heldout_every else 0
        self.n_train = self.n_windows - self.n_heldout
        if self.n_train <= 0:
            raise ValueError(
                f"source '{name}' ({manifest.path}) has {manifest.tokens} tokens: no training window of "
                f"seq_len + 1 = {seq_len + 1} tokens fits in any of its shards"
            )
        self._open: OrderedDict[int, ShardReader] = OrderedDict()

    def train_window(self, i: int) -> int:
        """Window number of training window ``i`` (skipping every held-out one)."""
        if not self.heldout_every:
            return i
        return i + i // (self.heldout_every - 1)

    def heldout_window(self, k: int) -> int:
        assert self.heldout_every
        return k * self.heldout_every + self.heldout_every - 1

    def read(self, window: int) -> np.ndarray:
        shard = int(np.searchsorted(self.shard_starts, window, side="right")) - 1
        reader = self._open.get(shard)
        if reader is None:
            reader = ShardReader(self.manifest, self.manifest.shards[shard])
            self._open[shard] = reader
            if len(self._open) > _MAX_OPEN_SHARDS:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(shard)
        start = (window - int(self.shard_starts[shard])) * self.seq_len
        return np.asarray(reader.tokens[start : start + self.seq_len + 1], dtype=np.int64)


class MixtureLoader:
    """Training batches for one data-parallel rank; see the module docstring for the scheme."""

    def __init__(
        self,
        mixture: Mixture,
        *,
        seq_len: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        heldout_every: int | None = 1000,
    ) -> None:
        if seq_len <= 0 or batch_size <= 0:
            raise ValueError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if heldout_every is not None and heldout_every < 2:
            raise ValueError(f"heldout_every must be >= 2 or null, got {heldout_every}")
        self.mixture = mixture
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.sources = [
            _SourceWindows(s.name, m, seq_len, heldout_every)
            for s, m in zip(mixture.sources, mixture.manifests, strict=True)
        ]
        weights = np.array(mixture.weights, dtype=np.float64)
        self.weights = weights / weights.sum()
        self.batches = 0
        self.consumed = [0] * len(self.sources)
        self._perms: dict[tuple[int, int], _Permutation] = {}

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, self.batches])
        chosen = rng.choice(len(self.sources), size=self.batch_size, p=self.weights)
        rows, windows = [], []
        for s in chosen:
            window = self._next_train_window(int(s))
            rows.append(self.sources[s].read(window))
            windows.append(window)
        self.batches += 1
        return _make_batch(rows, chosen, windows)

    def _next_train_window(self, s: int) -> int:
        source = self.sources[s]
        position = self.consumed[s] * self.world_size + self.rank
        self.consumed[s] += 1
        epoch, index = divmod(position, source.n_train)
        perm = self._perms.get((s, epoch))
        if perm is None:
            key = _splitmix64(_splitmix64(_splitmix64(self.seed) ^ s) ^ epoch)
            perm = self._perms[(s, epoch)] = _Permutation(source.n_train, key)
            if len(self._perms) > 4 * len(self.sources):
                self._perms.pop(next(iter(self._perms)))
        return source.train_window(perm(index))

    def heldout_batches(self, source: int, *, max_windows: int, batch_size: int) -> Iterator[Batch]:
        """This rank's share of the first ``max_windows`` held-out windows of one source.

        Always the same windows, so successive evaluations are comparable; ranks take every
        ``world_size``-th one and the caller sums losses across ranks. The count is rounded down to
        a multiple of ``world_size`` so every rank runs the same number of forwards (FSDP's
        collectives would otherwise wait forever on the rank with one batch fewer).
        """
        src = self.sources[source]
        count = min(max_windows, src.n_heldout)
        count -= count % self.world_size
        mine = [src.heldout_window(k) for k in range(self.rank, count, self.world_size)]
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            yield _make_batch([src.read(w) for w in chunk], np.full(len(chunk), source), chunk)

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "consumed": list(self.consumed),
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "sources": [[s.name, s.n_windows, s.n_heldout] for s in self.sources],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = self.state_dict()
        for key in ("seed", "rank", "world_size", "seq_len", "batch_size", "sources"):
            saved = state.get(key)
            if isinstance(saved, tuple):
                saved = list(saved)
            if key == "sources" and saved is not None:
                saved = [list(entry) for entry in saved]
            if saved != expected[key]:
                raise ValueError(
                    f"data-loader state was saved with {key}={saved!r} but this run has {expected[key]!r}; "
                    "resuming needs the same seed, data layout and number of ranks"
                )
        self.batches = int(state["batches"])
        self.consumed = [int(c) for c in state["consumed"]]


def _make_batch(rows: list[np.ndarray], sources: np.ndarray, windows: list[int]) -> Batch:
    block = torch.from_numpy(np.stack(rows))  # (B, T + 1)
    return Batch(
        inputs=block[:, :-1].contiguous(),
        targets=block[:, 1:].contiguous(),
        sources=np.asarray(sources, dtype=np.int64),
        windows=np.asarray(windows, dtype=np.int64),
    )
