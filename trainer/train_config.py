"""How to train (not what): optimizer, schedule, batch, checkpoints and guards, from ``configs/train/*.yaml``.

Load with ``filters.config.load_yaml(TrainConfig, path)``. The defaults are LLaMA-1's recipe
(Touvron et al. 2023, sec. 2.2 and Table 2) for a 2,048-token context; ``configs/train/default.yaml``
spells them out and ``configs/train/tiny.yaml`` is the CPU debug run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run's hyperparameters; validated on construction."""

    steps: int = 250_000
    """Optimizer steps; also the length of the cosine schedule. ``--steps`` overrides it."""

    seed: int = 1337
    """Seeds the weight init and the data order (the held-out split does not depend on it)."""

    seq_len: int = 2048
    """Tokens per training window (LLaMA-1: 2,048); at most the model's ``max_seq_len``."""

    micro_batch_size: int = 4
    """Windows per forward/backward on one rank; set by device memory."""

    tokens_per_step: int = 4 * 1024 * 1024
    """Tokens per optimizer step over all ranks (LLaMA-1: 4M). Gradients are accumulated over
    ``tokens_per_step / (micro_batch_size * seq_len * ranks)`` micro-batches, which must be whole."""

    lr: float = 3.0e-4
    """Peak learning rate (LLaMA-1 Table 2: 3e-4 for 7B and 13B, 1.5e-4 for 33B and 65B)."""

    warmup_steps: int = 2000
    """Linear warmup steps (LLaMA-1: 2,000)."""

    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak (LLaMA-1: cosine to 10%)."""

    weight_decay: float = 0.1
    """AdamW decoupled weight decay on matrices (LLaMA-1: 0.1); norm gains are not decayed."""

    beta1: float = 0.9
    """AdamW beta1 (LLaMA-1: 0.9)."""

    beta2: float = 0.95
    """AdamW beta2 (LLaMA-1: 0.95)."""

    eps: float = 1.0e-8
    """AdamW epsilon (PyTorch's default; LLaMA-1 does not state one)."""

    grad_clip: float = 1.0
    """Clip the global gradient norm to this (LLaMA-1: 1.0)."""

    vocab_size_from_data: bool = True
    """Take the model's ``vocab_size`` from the mixture's tokenizer; if false the model YAML's value
    must match it exactly."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses the GPU when torch sees one."""

    bf16: bool = True
    """bf16 autocast on GPU (parameters stay float32); ignored on CPU, where bf16 matmuls are slow."""

    compile: bool = False
    """``torch.compile`` each block (via ``trainer.parallelize``)."""

    activation_checkpointing: bool = False
    """Recompute each block in the backward: about a third more compute for far less activation memory."""

    heldout_every: int | None = 1000
    """One window in this many is held out of training for the per-source held-out loss; null: none."""

    eval_every: int = 1000
    """Steps between held-out evaluations; 0 turns them off."""

    eval_windows: int = 256
    """Held-out windows per source per evaluation (the same ones each time)."""

    checkpoint_every: int = 1000
    """Steps between checkpoints; 0 saves only at the end. Also bounds the work lost on a rollback."""

    keep_checkpoints: int = 3
    """Newest checkpoints kept on disk; older ones are deleted after each save."""

    log_every: int = 10
    """Steps between log lines (metrics.csv gets every step; skipped steps are always logged)."""

    progress: bool = True
    """Show a tqdm progress bar on rank 0."""

    verify_checksums: bool = True
    """Hash every shard before the first step. Sizes and offsets are always checked; turn hashing off
    only when the corpus is too large to re-read at each start."""

    spike_ratio: float = 3.0
    """Skip the update when the step's loss exceeds this multiple of the running mean loss. A
    heuristic, not a published figure: healthy steps stay within a few percent of the mean."""

    guard_warmup_steps: int = 100
    """Steps before spike detection starts (the loss falls fast early, so its mean lags)."""

    guard_ema_beta: float = 0.99
    """Decay of the running mean loss the spike test compares against."""

    max_bad_steps: int = 5
    """After this many skipped steps in a row, roll back to the last checkpoint."""

    max_rollbacks: int = 3
    """Stop the run after this many rollbacks instead of looping on bad data or bad hardware."""

    sdc_check_every: int = 0
    """Every this many steps, recompute one micro-batch's forward and compare the losses, to catch
    silent data corruption on a faulty device; 0 turns it off."""

    sdc_tolerance: float = 0.0
    """Relative loss difference the silent-corruption check allows; 0 demands bitwise equality.

    Measured with ``benchmarks/sdc_recompute.py`` (tiny model, 50 AdamW steps of 4x128 tokens, torch
    2.13, CPU): the no-grad recompute was bitwise equal to the training forward at every step in
    float32 eager, with activation checkpointing, with bf16 autocast and with ``compile`` in float32.
    Under FSDP2 (2 gloo ranks, float32) so was every check that ``tests/reliability/test_fsdp_safety.py``
    asserts (9 per rank). So 0, the most sensitive setting, raises no false alarm there.

    ``compile`` with bf16 autocast was never bitwise equal (0 of 50: the compiled training and
    inference graphs fuse, and so round, differently); the largest difference was 7.8e-6. Such a run
    (on GPU, where bf16 is the default) needs about 10x what the benchmark measures on its own device, 1e-4
    by the CPU figure, and ``Trainer`` refuses it with 0. Not measured on GPU here. A tolerance hides
    faults smaller than itself: the tests' fault, logits scaled by 1.01, moves an early loss by only
    5e-5 relative."""

    sdc_action: Literal["stop", "rollback"] = "stop"
    """On a failed silent-corruption check: stop the run, or roll back to the last checkpoint."""

    peak_tflops: float | None = None
    """Peak dense bf16 TFLOP/s of one device (e.g. 312 for an A100) for the MFU column; null: no MFU."""

    def __post_init__(self) -> None:
        positive = (
            "steps", "seq_len", "micro_batch_size", "tokens_per_step", "keep_checkpoints", "log_every",
            "max_bad_steps", "eval_windows",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        non_negative = (
            "warmup_steps", "eval_every", "checkpoint_every", "guard_warmup_steps", "max_rollbacks",
            "sdc_check_every", "weight_decay", "sdc_tolerance",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if not self.lr > 0 or not self.grad_clip > 0 or not self.eps > 0:
            raise ValueError(
                f"lr, grad_clip and eps must be positive, got {self.lr}, {self.grad_clip}, {self.eps}"
            )
        for name in ("beta1", "beta2", "guard_ema_beta", "min_lr_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0 and not (name == "min_lr_ratio" and value == 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.spike_ratio <= 1.0:
            raise ValueError(f"spike_ratio must exceed 1, got {self.spike_ratio}")
        if self.heldout_every is not None and self.heldout_every < 2:
            raise ValueError(f"heldout_every must be >= 2 or null, got {self.heldout_every}")
        if self.peak_tflops is not None and not self.peak_tflops > 0:
            raise ValueError(f"peak_tflops must be positive or null, got {self.peak_tflops}")
