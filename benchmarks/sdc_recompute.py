"""How far a no-grad recompute of the loss lands from the training forward's: the measurement behind
``TrainConfig.sdc_tolerance``.

    python benchmarks/sdc_recompute.py --device cpu
    python benchmarks/sdc_recompute.py --device cuda --model small --modes eager bf16 compile compile+bf16

The silent-corruption check (``Trainer._silent_corruption_failed``) compares the loss of a training
forward (grad on) with a second forward of the same micro-batch under ``torch.no_grad()``, before the
optimizer step. Healthy hardware may still disagree when the two grad modes run different kernels:
``torch.compile`` builds separate graphs for inference and training (different fusions, so different
rounding), and some attention/matmul paths choose kernels by ``requires_grad``. This script trains the
model for ``--steps`` AdamW steps on random tokens and, at every step, records the relative difference
``|l1 - l2| / max(|l1|, |l2|)`` (the test ``losses_agree`` applies), per mode:

- ``eager``: float32, as the trainer runs on CPU;
- ``ckpt``: float32 with activation checkpointing (``trainer.parallelize``);
- ``bf16``: bf16 autocast, as the trainer runs on GPU;
- ``compile`` / ``compile+bf16``: each block compiled (``trainer.parallelize``).

It prints one row per mode: checks, how many were bitwise equal, and the largest relative difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from filters.config import load_yaml
from trainer.config import ModelConfig
from trainer.model import Transformer
from trainer.parallelize import parallelize

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
MODES = ("eager", "ckpt", "bf16", "compile", "compile+bf16")


def measure(cfg: ModelConfig, mode: str, *, device: torch.device, steps: int, batch: int, seq_len: int,
            seed: int) -> list[float]:
    """Relative loss differences (grad-on forward vs no-grad recompute), one per training step."""
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = Transformer(cfg)
    model = parallelize(
        model, device, activation_checkpointing=mode == "ckpt", compile=mode.startswith("compile")
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    autocast = mode.endswith("bf16")
    gen = torch.Generator().manual_seed(seed)
    diffs = []

    def loss_of(tokens: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(tokens[:, :-1])  # (B, T, V) float32
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))

    for _ in range(steps):
        tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), generator=gen).to(device)
        loss = loss_of(tokens)
        loss.backward()
        with torch.no_grad():
            again = loss_of(tokens)
        first, second = float(loss.detach()), float(again)
        diffs.append(abs(first - second) / max(abs(first), abs(second)))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="a configs/model/<name>.yaml (default tiny)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)
    cfg = load_yaml(ModelConfig, MODEL_CONFIGS / f"{args.model}.yaml")
    cfg = dataclasses.replace(cfg, max_seq_len=max(cfg.max_seq_len, args.seq_len))
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# {args.model}, {args.steps} steps of {args.batch_size}x{args.seq_len}, "
          f"torch {torch.__version__}, {where}")
    print(f"{'mode':<14} {'checks':>6} {'bitwise':>8} {'max rel diff':>13}")
    for mode in args.modes:
        try:
            diffs = measure(cfg, mode, device=device, steps=args.steps, batch=args.batch_size,
                            seq_len=args.seq_len, seed=args.seed)
        except Exception as exc:  # e.g. no C++ compiler for compile on CPU
            print(f"{mode:<14} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
            continue
        print(f"{mode:<14} {len(diffs):>6} {sum(d == 0 for d in diffs):>8} {max(diffs):>13.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
