"""The training loop reads device values on log steps only (issue 22, item 3).

A host sync (``loss.item()``, ``float(loss)``, ``if tensor:``, ``torch.cuda.synchronize()``) makes the CPU
wait for the GPU to drain its queue, so the next step's kernels are not queued ahead and the GPU idles
while Python launches them. torch's own detector, ``torch.cuda.set_sync_debug_mode``, needs a CUDA
build (on this CPU build it raises "Torch not compiled with CUDA enabled"), so these tests count the
Python-level doors through which a value reaches the host instead: every ``Tensor`` method that
returns a Python value or text, and ``torch.cuda.synchronize``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from filters.config import load_yaml
from tests.trainer.conftest import Corpus
from trainer.guard import DeviceLossGuard, LossGuard
from trainer.train import Trainer
from trainer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
TINY_TRAIN = REPO / "configs" / "train" / "tiny.yaml"

# Each of these hands a tensor's value (or its text) to Python, which on a GPU waits for the device.
HOST_READS = (
    "item", "tolist", "numpy", "cpu", "__float__", "__int__", "__index__", "__bool__",
    "__repr__", "__str__", "__format__",
)


def tiny(**overrides: object) -> TrainConfig:
    cfg = load_yaml(TrainConfig, TINY_TRAIN)
    return dataclasses.replace(cfg, progress=False, **overrides)


class SyncCounter:
    """Counts host reads per loop iteration: iteration ``s`` runs from the start of step ``s`` to the
    start of step ``s + 1``, so whatever the loop does after a step (logging, eval, a checkpoint)
    is charged to that step."""

    def __init__(self) -> None:
        self.iteration = 0
        self.calls: dict[int, Counter[str]] = {}

    def record(self, name: str) -> None:
        self.calls.setdefault(self.iteration, Counter())[name] += 1

    def wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.record(name)
            return original(*args, **kwargs)

        return counted


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncCounter]:
    counts = SyncCounter()
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counts.wrap(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.cuda, "synchronize", counts.wrap("cuda.synchronize", torch.cuda.synchronize))
    original_step = Trainer._train_step

    def step(trainer: Trainer) -> Any:
        counts.iteration = trainer.step + 1
        return original_step(trainer)

    monkeypatch.setattr(Trainer, "_train_step", step)
    yield counts


def test_the_counter_sees_each_kind_of_host_read(counter: SyncCounter) -> None:
    """Without this the zero below could mean the patching missed: each door is exercised once."""
    t = torch.tensor(2.0)
    float(t), int(t), t.item(), t.tolist(), bool(t), f"{t}", str(t)
    seen = counter.calls[0]
    assert {"__float__", "__int__", "item", "tolist", "__bool__", "__format__", "__str__"} <= set(seen)


def test_no_host_sync_between_log_steps(corpus: Corpus, tmp_path: Path, counter: SyncCounter) -> None:
    until = 7
    cfg = tiny(steps=until, log_every=3, eval_every=0, checkpoint_every=0)
    trainer = Trainer(TINY_MODEL, corpus.mixture, tmp_path / "run", cfg)
    counter.calls.clear()
    try:
        result = trainer.train(until)
    finally:
        trainer.close()
    assert [r.step for r in result.history] == list(range(1, until + 1))
    assert all(r.status == "ok" for r in result.history)
    reading = {s for s in range(1, until + 1) if s % cfg.log_every == 0 or s == until}  # 3, 6 and the last
    synced = {s: dict(c) for s, c in counter.calls.items() if s not in reading and s <= until}
    assert synced == {}, f"host reads on non-log steps: {synced}"
    # The log steps do read (the loss for the log line): proof that the counter sees the loop's reads.
    assert all(counter.calls.get(s) for s in reading), counter.calls


def test_device_guard_agrees_with_the_host_rules() -> None:
    """The loop judges on the device; its verdicts, running mean and streak must be the host guard's."""
    kw: dict[str, Any] = {"spike_ratio": 2.0, "warmup_steps": 3, "ema_beta": 0.5}
    host, device = LossGuard(**kw), DeviceLossGuard(**kw, device=torch.device("cpu"))
    inf, nan = float("inf"), float("nan")
    steps = [(nan, 1.0), (4.0, 1.0), (9.0, 1.0), (4.0, 1.0), (4.0, 1.0), (20.0, 1.0), (4.0, inf),
             (4.1, nan), (4.1, 1.0), (3.0, 1.0), (inf, 1.0), (3.5, 1.0)]
    for value, norm in steps:
        loss, grad_norm = torch.tensor(value), torch.tensor(norm)  # float32, as the loop has them
        expected = host.judge(float(loss), float(grad_norm))  # what the loop read before it judged on device
        code = device.judge(loss, grad_norm)
        assert DeviceLossGuard.REASONS[int(code)] == expected, (value, norm)
        assert int(device.bad_streak) == host.bad_streak
    assert device.state_dict() == host.state_dict()
    restored = DeviceLossGuard(**kw, device=torch.device("cpu"))
    restored.load_state_dict(host.state_dict())
    assert restored.state_dict() == host.state_dict()


def test_a_skipped_step_leaves_weights_and_optimizer_untouched(corpus: Corpus, tmp_path: Path) -> None:
    """The skip is decided on the device (the fused AdamW's ``found_inf``), not by a Python ``if``:
    a non-finite step must change no parameter, moment or step count."""
    trainer = Trainer(TINY_MODEL, corpus.mixture, tmp_path / "run", tiny(eval_every=0, checkpoint_every=0))
    try:
        trainer.train(2)
        params = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        state = {k: {n: v.clone() for n, v in s.items()} for k, s in trainer.optimizer.state.items()}
        hook = trainer.model.output.register_forward_hook(lambda m, i, out: out * float("nan"))
        record = trainer.train(3).history[-1]
        hook.remove()
    finally:
        trainer.close()
    assert record.status == "skipped:nonfinite"
    for name, p in trainer.model.named_parameters():
        assert torch.equal(p, params[name]), name
    for key, saved in state.items():
        for name, value in saved.items():
            assert torch.equal(trainer.optimizer.state[key][name], value), name
