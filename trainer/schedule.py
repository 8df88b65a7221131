"""The learning-rate schedule as a pure function of the step, so resuming needs no scheduler state.

LLaMA-1 (Touvron et al. 2023, sec. 2.2): linear warmup (2,000 steps), then cosine decay to 10% of
the peak rate at the end of training. A checkpoint only has to store the step number; the rate at
any step can be recomputed, plotted or tested without building an optimizer.
"""

from __future__ import annotations

import math


def lr_at(
    step: int, *, peak_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1
) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Warmup is linear from ``peak_lr / warmup_steps`` at step 0 (not 0, which would waste a step) to
    ``peak_lr`` at step ``warmup_steps - 1``; the cosine then runs from ``peak_lr`` at
    ``warmup_steps`` to ``min_lr_ratio * peak_lr`` at ``total_steps`` and stays there afterwards.
    """
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if warmup_steps < 0 or total_steps <= 0:
        raise ValueError(f"need warmup_steps >= 0 and total_steps > 0, got {warmup_steps} and {total_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    min_lr = peak_lr * min_lr_ratio
    decay_steps = total_steps - warmup_steps
    if step >= total_steps or decay_steps <= 0:
        return min_lr
    progress = (step - warmup_steps) / decay_steps  # in [0, 1)
    return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
