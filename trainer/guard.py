"""Deciding whether a step's update may be applied: the loss-spike / NaN guard and the SDC comparison.

Kept apart from the loop so the decision rules can be read (and tested) on plain numbers. The
loop calls :meth:`LossGuard.judge` with values already reduced over ranks, so every rank reaches the
same verdict and FSDP's collectives stay in step.
"""

from __future__ import annotations

import math
from typing import Any


class TrainingDivergedError(RuntimeError):
    """Bad steps persisted past what the rollback budget allows."""


class SilentCorruptionError(RuntimeError):
    """A recomputed forward disagreed with the original: a device computed wrong numbers."""


class LossGuard:
    """Flags non-finite steps and loss spikes against a running mean of accepted losses."""

    def __init__(self, *, spike_ratio: float, warmup_steps: int, ema_beta: float) -> None:
        self.spike_ratio = spike_ratio
        self.warmup_steps = warmup_steps
        self.ema_beta = ema_beta
        self.ema: float | None = None
        self.accepted = 0
        self.bad_streak = 0

    def judge(self, loss: float, grad_norm: float) -> str | None:
        """``None`` to apply the update, else the reason to skip it (``nonfinite`` or ``spike``)."""
        reason = None
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            reason = "nonfinite"
        elif self.ema is not None and self.accepted >= self.warmup_steps:
            if loss > self.spike_ratio * self.ema:
                reason = "spike"
        if reason is None:
            self.ema = loss if self.ema is None else self.ema_beta * self.ema + (1 - self.ema_beta) * loss
            self.accepted += 1
            self.bad_streak = 0
        else:
            self.bad_streak += 1
        return reason

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "accepted": self.accepted, "bad_streak": self.bad_streak}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema = state["ema"]
        self.accepted = int(state["accepted"])
        self.bad_streak = int(state["bad_streak"])


def losses_agree(first: float, second: float, tolerance: float) -> bool:
    """Equal within ``tolerance`` relative difference; two NaNs agree (the NaN guard handles those)."""
    if math.isnan(first) and math.isnan(second):
        return True
    return abs(first - second) <= tolerance * max(abs(first), abs(second))
