"""Deciding whether a step's update may be applied: the loss-spike / NaN guard and the SDC comparison.

Kept apart from the loop so the decision rules can be read (and tested) on plain numbers. The
loop uses :class:`DeviceLossGuard`, the same rules on device tensors, so deciding a step costs no host
sync; it is called with values already reduced over ranks, so every rank reaches the same verdict and
FSDP's collectives stay in step.
"""

from __future__ import annotations

import math
from typing import Any

import torch


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


class DeviceLossGuard:
    """:class:`LossGuard`'s rules on 0-dim device tensors, so the verdict never has to reach the host.

    Reading the loss every step to decide whether to apply the update is a host sync per step: the
    CPU waits for the GPU to drain its queue before it can launch the next step. Here the verdict
    stays on the device and the optimizer skips on the device (``found_inf`` of the fused AdamW); the
    loop reads verdicts with the losses on log steps only. The arithmetic is float64 like Python's, so
    verdicts, running mean and streak equal ``LossGuard``'s bit for bit (tests/trainer/test_host_syncs.py).
    ``state_dict`` reads the device (checkpoint steps only) and has ``LossGuard``'s format, so
    checkpoints written with either load into the other.
    """

    REASONS: tuple[str | None, ...] = (None, "nonfinite", "spike", "sdc")
    """Verdict codes: index 0 applies the update; ``sdc`` is set by the loop, never by :meth:`judge`."""

    def __init__(
        self, *, spike_ratio: float, warmup_steps: int, ema_beta: float, device: torch.device
    ) -> None:
        self.spike_ratio = spike_ratio
        self.warmup_steps = warmup_steps
        self.ema_beta = ema_beta
        self.ema = torch.zeros((), dtype=torch.float64, device=device)
        self.has_ema = torch.zeros((), dtype=torch.bool, device=device)
        self.accepted = torch.zeros((), dtype=torch.int64, device=device)
        self.bad_streak = torch.zeros((), dtype=torch.int64, device=device)

    def judge(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
        """The verdict code (an int64 0-dim tensor indexing :attr:`REASONS`); updates the state in place."""
        loss = loss.detach().to(torch.float64)
        grad_norm = grad_norm.detach().to(torch.float64)
        finite = torch.isfinite(loss) & torch.isfinite(grad_norm)
        spike = self.has_ema & (self.accepted >= self.warmup_steps) & (loss > self.spike_ratio * self.ema)
        code = torch.where(finite, torch.where(spike, 2, 0), 1)
        ok = code == 0
        running = torch.where(self.has_ema, self.ema_beta * self.ema + (1 - self.ema_beta) * loss, loss)
        self.ema.copy_(torch.where(ok, running, self.ema))
        self.has_ema |= ok
        self.accepted += ok
        self.bad_streak.copy_(torch.where(ok, 0, self.bad_streak + 1))
        return code

    def state_dict(self) -> dict[str, Any]:
        return {
            "ema": float(self.ema) if bool(self.has_ema) else None,
            "accepted": int(self.accepted),
            "bad_streak": int(self.bad_streak),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.has_ema.fill_(state["ema"] is not None)
        self.ema.fill_(0.0 if state["ema"] is None else state["ema"])
        self.accepted.fill_(int(state["accepted"]))
        self.bad_streak.fill_(int(state["bad_streak"]))


def losses_agree(first: float, second: float, tolerance: float) -> bool:
    """Equal within ``tolerance`` relative difference; two NaNs agree (the NaN guard handles those)."""
    if math.isnan(first) and math.isnan(second):
        return True
    return abs(first - second) <= tolerance * max(abs(first), abs(second))
