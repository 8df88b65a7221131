"""Score a proxy on the whole reference, per document, and bootstrap over the reference's documents.

Why not ``refinery eval``. That scores the loader's held-out windows of training data (1 window in
``heldout_every``, capped), which is right for a training curve but leaves most of a reference
unscored and gives no per-document figure. Here every token of the reference after the first is a
target exactly once: the reference's token stream (documents in order, separators included, as the
trainer reads shards) is cut into windows of the run's ``seq_len`` starting every ``stride`` tokens,
and each window scores only the targets no earlier window scored. ``stride == seq_len`` (the
default) is non-overlapping windows; a smaller stride gives every scored token more context, at
``seq_len / stride`` times the compute (the sliding-window perplexity of Press et al. 2021).

Each target is credited to the document it belongs to, so the result has per-document nats and
bytes: the bootstrap over documents (:func:`bootstrap_ratio`) says how much the bits-per-byte figure
would move on another reference of the same size and kind, which seeds alone cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class ReferenceScore:
    """Per-document totals of one model on the reference."""

    nats: np.ndarray  # (D,) float64
    bytes: np.ndarray  # (D,) int64
    tokens_scored: int
    windows: int
    seq_len: int
    stride: int

    def summary(self) -> dict[str, Any]:
        tokens, nbytes, nats = self.tokens_scored, int(self.bytes.sum()), float(self.nats.sum())
        return {"bits_per_byte": nats / (np.log(2) * nbytes), "loss": nats / tokens, "tokens_scored": tokens,
                "bytes": nbytes, "documents": int(self.nats.size), "windows": self.windows,
                "seq_len": self.seq_len, "stride": self.stride}


def reference_stream(shards: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Every token of a shard directory in order, the document index of each, and the tokenizer sha256."""
    from trainer.shards import MANIFEST_NAME, ShardReader, read_manifest

    manifest = read_manifest(shards / MANIFEST_NAME)
    tokens, docs, first = [], [], 0
    for info in manifest.shards:
        reader = ShardReader(manifest, info)
        tokens.append(np.asarray(reader.tokens, dtype=np.int64))
        docs.append(first + np.repeat(np.arange(info.documents), np.diff(np.asarray(reader.offsets, dtype=np.int64))))
        first += info.documents
    return np.concatenate(tokens), np.concatenate(docs), manifest.tokenizer_sha256


def window_starts(n_tokens: int, seq_len: int, stride: int) -> list[tuple[int, int]]:
    """(start, first scored offset) per window over a stream of ``n_tokens``: targets 1..n-1 once each.

    Windows are all ``min(seq_len, n - 1)`` long; the last is moved back to end at the stream's end
    and scores only what its predecessors did not."""
    if not 0 < stride <= seq_len:
        raise ValueError(f"--eval-stride must be in [1, seq_len={seq_len}], got {stride}")
    length = min(seq_len, n_tokens - 1)
    if length < 1:
        raise ValueError("the reference has fewer than two tokens")
    windows, scored_to, start = [], 0, 0  # targets at stream positions 1..scored_to are done
    while scored_to < n_tokens - 1:
        start = min(start, n_tokens - 1 - length)
        end = start + length  # this window's targets: positions start+1 .. end
        windows.append((start, scored_to - start))
        scored_to, start = end, start + stride
    return windows


def score_reference(ckpt: Path, shards: Path, *, stride: int | None = None, batch_size: int = 8,
                    device: str = "cpu") -> ReferenceScore:
    """Per-document nats and bytes of the checkpoint on every target token of ``shards``."""
    import torch
    import torch.nn.functional as F

    from trainer.evaluate import token_bytes
    from trainer.load import load_trained, train_setting

    loaded = load_trained(ckpt, device=device)
    stream, doc_of, sha = reference_stream(shards)
    if sha != loaded.tokenizer_sha256:
        raise ValueError(f"{shards}: encoded with tokenizer {sha[:12]}, the checkpoint's is "
                         f"{loaded.tokenizer_sha256[:12]}")
    seq_len = int(train_setting(loaded.meta, "seq_len", loaded.config.max_seq_len))
    stride = stride or seq_len
    windows = window_starts(len(stream), seq_len, stride)
    length = min(seq_len, len(stream) - 1)
    sizes = token_bytes(loaded.tokenizer)
    n_docs = int(doc_of[-1]) + 1
    nats, nbytes = np.zeros(n_docs), np.zeros(n_docs, dtype=np.int64)
    scored = 0
    model, dev = loaded.model, next(loaded.model.parameters()).device
    offsets = np.arange(length)
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            batch = windows[i:i + batch_size]
            starts = np.array([s for s, _ in batch])[:, None]  # (B, 1)
            inputs = torch.from_numpy(stream[starts + offsets]).to(dev)  # (B, T)
            targets = stream[starts + offsets + 1]  # (B, T)
            logits = model(inputs)  # (B, T, V)
            per_token = F.cross_entropy(logits.float().transpose(1, 2), torch.from_numpy(targets).to(dev),
                                        reduction="none").double().cpu().numpy()  # (B, T)
            keep = offsets[None, :] >= np.array([f for _, f in batch])[:, None]  # (B, T)
            docs = doc_of[(starts + offsets + 1)[keep]]
            np.add.at(nats, docs, per_token[keep])
            np.add.at(nbytes, docs, sizes[targets[keep]])
            scored += int(keep.sum())
    return ReferenceScore(nats, nbytes, scored, len(windows), seq_len, stride)


def bootstrap_ratio(nats: np.ndarray, nbytes: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """The ``CONFIDENCE`` interval of sum(nats) / (ln 2 * sum(bytes)) over documents resampled with
    replacement: bits per byte, or a difference of them when ``nats`` is a per-document difference."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, nats.size, size=(samples, nats.size))  # (S, D)
    ratios = nats[picks].sum(axis=1) / (np.log(2) * nbytes[picks].sum(axis=1))
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)
