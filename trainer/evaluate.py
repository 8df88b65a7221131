"""Held-out loss, perplexity and bits per byte of a checkpoint, per source: ``refinery eval``.

Which tokens. The data loader's held-out split (``trainer.data``): with the run's ``seq_len`` and
``heldout_every`` (read from the checkpoint's ``meta.json``) these are exactly the windows training
never read, and the first ``max_windows`` of them per source are the ones the trainer's periodic
held-out loss uses, so the two numbers agree for the same checkpoint.

Bits per byte. Loss per token depends on the tokenizer: a tokenizer with longer pieces has fewer,
harder tokens. Dividing the total nats by ln 2 times the UTF-8 bytes of the text those tokens stand
for gives a number comparable across tokenizers (Gao et al. 2020, The Pile, sec. 4.1). The bytes are
counted per token from a table over the vocabulary, so windows that cut a document, or a multi-byte
character split into byte-fallback pieces, count exactly the bytes the tokens decode to: a normal piece
gives its text with "▁" read as a space (the space sentencepiece's decoder strips at the very start of
a text is counted), a byte piece one byte, a control piece (BOS/EOS) none.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from tqdm import tqdm

from trainer.data import MixtureLoader
from trainer.load import Loaded, LoadError, add_checkpoint_arguments, dump_json, load_trained, train_setting
from trainer.mixture import Mixture, MixtureError, MixtureSource, TokenizerRef, load_mixture
from trainer.shards import MANIFEST_NAME, ShardError, read_manifest, verify


class EvalError(ValueError):
    """Data that cannot be scored with this checkpoint; the message names the path."""


@dataclass
class Score:
    """Running totals for one source (or all of them)."""

    windows: int = 0
    tokens: int = 0
    bytes: int = 0
    nats: float = 0.0

    def add(self, other: Score) -> None:
        self.windows += other.windows
        self.tokens += other.tokens
        self.bytes += other.bytes
        self.nats += other.nats

    def as_dict(self) -> dict[str, Any]:
        loss = self.nats / self.tokens if self.tokens else math.nan
        return {
            "windows": self.windows,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "loss": loss,
            "perplexity": math.exp(loss) if self.tokens else math.nan,
            "bits_per_byte": self.nats / (math.log(2) * self.bytes) if self.bytes else math.nan,
        }


def token_bytes(sp: spm.SentencePieceProcessor) -> np.ndarray:
    """UTF-8 bytes each id decodes to, (V,) int64; see the module docstring."""
    sizes = np.zeros(sp.vocab_size(), dtype=np.int64)
    for i in range(sp.vocab_size()):
        if sp.is_byte(i):
            sizes[i] = 1
        elif sp.is_unknown(i):
            sizes[i] = len(sp.decode([i]).encode("utf-8"))
        elif not sp.is_control(i):
            sizes[i] = len(sp.id_to_piece(i).replace("▁", " ").encode("utf-8"))
    return sizes


def load_eval_data(path: Path, loaded: Loaded) -> Mixture:
    """A mixture.json, or one shard directory treated as a one-source mixture; checked against the model."""
    if path.is_dir():
        try:
            manifest = read_manifest(path / MANIFEST_NAME)
        except ShardError as exc:
            raise EvalError(str(exc)) from None
        source = MixtureSource(
            name=manifest.source, weight=1.0, manifest=manifest.path, tokens=manifest.tokens,
            documents=manifest.documents, epochs=1.0, disk_bytes=manifest.disk_bytes,
        )  # fmt: skip
        ref = TokenizerRef(
            path=str(loaded.tokenizer_path), sha256=manifest.tokenizer_sha256, vocab_size=manifest.vocab_size
        )
        mixture = Mixture(
            path=manifest.path, token_budget=manifest.tokens, sources=(source,), tokenizer=ref,
            manifests=(manifest,),
        )  # fmt: skip
    else:
        mixture = load_mixture(path)
    if mixture.vocab_size != loaded.config.vocab_size:
        raise EvalError(
            f"{path}: shards have vocab_size {mixture.vocab_size}, the model {loaded.config.vocab_size}"
        )
    ours = loaded.tokenizer_sha256
    for manifest in mixture.manifests:
        if manifest.tokenizer_sha256 != ours:
            raise EvalError(
                f"{manifest.path}: encoded with tokenizer {manifest.tokenizer_sha256[:12]}, but the "
                f"checkpoint's tokenizer {loaded.tokenizer_path} is {ours[:12]}"
            )
        problems = verify(manifest.dir, checksums=False)
        if problems:
            raise EvalError(f"{manifest.path}: corrupt shards: {problems[0]}")
    return mixture


@torch.no_grad()
def evaluate(
    ckpt: str | Path,
    data: str | Path,
    *,
    max_windows: int = 256,
    batch_size: int = 8,
    tokenizer: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """The report ``refinery eval`` writes: per-source and overall loss, perplexity, bits per byte."""
    if max_windows <= 0 or batch_size <= 0:
        raise EvalError(f"max_windows and batch_size must be positive, got {max_windows} and {batch_size}")
    loaded = load_trained(ckpt, tokenizer=tokenizer, device=device)
    mixture = load_eval_data(Path(data), loaded)
    cfg, model = loaded.config, loaded.model
    seq_len = train_setting(loaded.meta, "seq_len", min(cfg.max_seq_len, 2048))
    heldout_every = train_setting(loaded.meta, "heldout_every", 1000)
    if heldout_every is None:
        raise EvalError(f"{loaded.checkpoint}: the run held nothing out (heldout_every: null)")
    if seq_len > cfg.max_seq_len:
        raise EvalError(f"{loaded.checkpoint}: train seq_len {seq_len} exceeds max_seq_len {cfg.max_seq_len}")
    try:
        loader = MixtureLoader(mixture, seq_len=seq_len, batch_size=batch_size, seed=0,
                               heldout_every=heldout_every)  # fmt: skip
    except ValueError as exc:  # a source too small for one window
        raise EvalError(f"{data}: {exc}") from None
    sizes = torch.from_numpy(token_bytes(loaded.tokenizer))  # (V,)
    dev = next(model.parameters()).device
    scores: dict[str, Score] = {}
    total = Score()
    for s, source in enumerate(loader.sources):
        score = scores[source.name] = Score()
        count = min(max_windows, source.n_heldout)
        bar = tqdm(total=count, disable=not progress, desc=f"eval {source.name}", unit="win")
        for batch in loader.heldout_batches(s, max_windows=max_windows, batch_size=batch_size):
            inputs, targets = batch.inputs.to(dev), batch.targets.to(dev)  # (B, T) each
            logits = model(inputs)  # (B, T, V)
            nats = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), reduction="sum")
            score.add(Score(windows=targets.size(0), tokens=targets.numel(),
                            bytes=int(sizes[batch.targets].sum()), nats=float(nats.double())))  # fmt: skip
            bar.update(targets.size(0))
        bar.close()
        total.add(score)
    return {
        "checkpoint": str(loaded.checkpoint),
        "step": loaded.step,
        "data": str(data),
        "tokenizer": str(loaded.tokenizer_path),
        "seq_len": seq_len,
        "heldout_every": heldout_every,
        "max_windows": max_windows,
        "sources": {name: sc.as_dict() for name, sc in scores.items()},
        "all": total.as_dict(),
    }


def format_table(report: dict[str, Any]) -> str:
    rows = [*report["sources"].items(), ("all", report["all"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'source':<{width}}  {'windows':>7}  {'tokens':>9}  {'loss':>7}  {'ppl':>9}  {'bits/byte':>9}"]
    for name, r in rows:
        lines.append(
            f"{name:<{width}}  {r['windows']:>7}  {r['tokens']:>9}  {r['loss']:>7.4f}  "
            f"{r['perplexity']:>9.2f}  {r['bits_per_byte']:>9.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refinery eval", description="Held-out loss, perplexity and bits per byte of a checkpoint.",
        allow_abbrev=False,
    )
    add_checkpoint_arguments(parser)
    parser.add_argument("--data", type=Path, required=True, help="mixture.json or one shard directory")
    parser.add_argument("--max-windows", type=int, default=256, help="held-out windows per source")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, help="JSON report (default: <ckpt>/eval-step-<step>.json)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        report = evaluate(
            args.ckpt, args.data, max_windows=args.max_windows, batch_size=args.batch_size,
            tokenizer=args.tokenizer, device=args.device, progress=sys.stderr.isatty(),
        )  # fmt: skip
        out = args.out or args.ckpt / f"eval-step-{report['step']:08d}.json"
        dump_json(out, report)
    # OSError: an unreadable shard or an unwritable --out; its message names the path.
    except (LoadError, EvalError, MixtureError, ShardError, OSError) as exc:
        print(f"refinery eval: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
