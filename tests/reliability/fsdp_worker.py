"""One rank of a two-rank gloo run for ``test_fsdp_safety.py``, started the way ``test_fsdp_cpu.py``
starts the trainer, by torchrun:

    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        -m tests.reliability.fsdp_worker MIXTURE OUT SCENARIO...

Each scenario trains the tiny model through ``trainer.train.Trainer``, in one or more runs that share
the process group (torchrun and the imports, most of the time, are paid once for all of them), and
writes ``OUT/<scenario>.rank<r>.json`` for the test to compare. Faults are injected here, inside the
worker, on one rank only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

import trainer.train as train_module
from trainer.guard import SilentCorruptionError, TrainingDivergedError
from trainer.train import Trainer
from trainer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
FAULTY_RANK = 1

# 2 ranks x 2 windows x 64 tokens = 256 tokens per micro-batch: 2 micro-batches per step.
BASE = TrainConfig(
    steps=6, seq_len=64, micro_batch_size=2, tokens_per_step=512, lr=3.0e-3, warmup_steps=2,
    device="cpu", heldout_every=20, eval_every=0, eval_windows=4, checkpoint_every=0, progress=False,
    verify_checksums=False, guard_warmup_steps=100,
)


def run(name: str, mixture: Path, out: Path, until: int, *, resume: bool = False,
        prepare: Callable[[Trainer], None] | None = None, keep: dict[str, Any] | None = None,
        **overrides: Any) -> dict[str, Any]:
    """Train one run to ``until`` and describe it; an exception is recorded, not raised (every rank
    must reach the end of the scenario, or its peers would wait in the next collective). ``keep``
    receives this rank's final parameter shards under ``name``."""
    cfg = dataclasses.replace(BASE, **overrides)
    trainer = Trainer(TINY_MODEL, mixture, out / name, cfg, resume=resume)
    report: dict[str, Any] = {"start": trainer.step, "error": None}
    try:
        if prepare is not None:
            prepare(trainer)
        result = trainer.train(until)
        report.update(rollbacks=result.rollbacks)
        history = result.history
    except (SilentCorruptionError, TrainingDivergedError) as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        history = []
    report.update(
        steps=[r.step for r in history], losses=[r.loss for r in history],
        grad_norms=[r.grad_norm for r in history], statuses=[r.status for r in history],
        step=trainer.step, weights=digest(trainer.model), heldout=trainer.heldout,
    )
    if keep is not None:
        keep[name] = local_params(trainer.model)
    trainer.close()
    return report


def digest(model: torch.nn.Module) -> str:
    """SHA-256 of this rank's parameter shards: equal digests are bit-equal weights."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        h.update(name.encode())
        h.update(local.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def local_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of this rank's parameter shards (the whole parameter without FSDP)."""
    return {
        name: (p.to_local() if hasattr(p, "to_local") else p).detach().clone()
        for name, p in model.named_parameters()
    }


# -- fault injection --------------------------------------------------------------------------------


def faulty_recompute(times: int) -> Callable[[Trainer], None]:
    """On ``FAULTY_RANK`` only, scale the logits of the next ``times`` no-grad forwards by 1.01: a
    device that computes something else when asked again (only the check runs without grad here)."""

    def arm(trainer: Trainer) -> None:
        if trainer.rank != FAULTY_RANK:
            return
        left = [times]

        def hook(module: torch.nn.Module, inputs: object, out: torch.Tensor) -> torch.Tensor | None:
            if torch.is_grad_enabled() or left[0] == 0:
                return None
            left[0] -= 1
            return out * 1.01

        trainer.model.output.register_forward_hook(hook)

    return arm


@contextmanager
def counting_reduce_scatters() -> Iterator[list[int]]:
    """Count FSDP2's gradient reduce-scatters (``dist.reduce_scatter_single``) per optimizer step."""
    per_step: list[int] = []
    original_rs = dist.reduce_scatter_single
    original_step = Trainer._train_step

    def rs(*args: Any, **kwargs: Any) -> Any:
        per_step[-1] += 1
        return original_rs(*args, **kwargs)

    def step(self: Trainer) -> Any:
        per_step.append(0)
        return original_step(self)

    dist.reduce_scatter_single = rs
    Trainer._train_step = step  # type: ignore[method-assign]
    try:
        yield per_step
    finally:
        dist.reduce_scatter_single = original_rs
        Trainer._train_step = original_step  # type: ignore[method-assign]


# -- scenarios --------------------------------------------------------------------------------------


def sdc(mixture: Path, out: Path) -> dict[str, Any]:
    """The same 6 steps without the check, with it every step and with it every second step."""
    return {f"every{k}": run(f"every{k}", mixture, out, 6, sdc_check_every=k) for k in (0, 1, 2)}


def fault(mixture: Path, out: Path) -> dict[str, Any]:
    """A fault on one rank's recompute: stop, and a one-off fault with rollback."""
    stop = run("stop", mixture, out, 6, sdc_check_every=1, checkpoint_every=2,
               prepare=lambda t: (t.train(2), faulty_recompute(times=10**6)(t)))
    rollback = run("rollback", mixture, out, 6, sdc_check_every=1, sdc_action="rollback",
                   checkpoint_every=2, prepare=lambda t: (t.train(2), faulty_recompute(times=1)(t)))
    return {"stop": stop, "rollback": rollback}


def resume(mixture: Path, out: Path) -> dict[str, Any]:
    """6 steps straight, and 4 steps + a new Trainer resumed from step 4 to 6, with held-out
    evaluations and the corruption check in both (each runs a no-grad forward under FSDP2)."""
    extra = {"eval_every": 2, "sdc_check_every": 2}
    straight = run("straight", mixture, out, 6, **extra)
    head = run("resumed", mixture, out, 4, **extra)  # saves step 4 on return
    tail = run("resumed", mixture, out, 6, resume=True, **extra)
    return {"straight": straight, "head": head, "tail": tail}


def accumulation(mixture: Path, out: Path) -> dict[str, Any]:
    """Gradient accumulation with the gradient reduced after every micro-batch (the reference) and
    only after the last (what the trainer does): collectives counted, weights compared."""
    reports: dict[str, Any] = {}
    params: dict[str, dict[str, torch.Tensor]] = {}
    original = getattr(train_module, "set_gradient_sync", None)
    for name in ("every_micro_batch", "last_micro_batch"):
        if name == "every_micro_batch" and original is not None:
            train_module.set_gradient_sync = lambda model, enabled: original(model, True)
        try:
            with counting_reduce_scatters() as counts:
                reports[name] = run(
                    name, mixture, out, 4, steps=4, keep=params,
                    prepare=lambda t: params.setdefault("init", local_params(t.model)),
                )
        finally:
            if original is not None:
                train_module.set_gradient_sync = original
        reports[name]["reduce_scatters"] = counts
    ref, got, init = params["every_micro_batch"], params["last_micro_batch"], params["init"]
    reports["max_abs_weight_diff"] = max(float((ref[n] - got[n]).abs().max()) for n in ref)
    reports["max_abs_update"] = max(float((ref[n] - init[n]).abs().max()) for n in ref)
    try:
        for n in ref:
            torch.testing.assert_close(got[n], ref[n], msg=lambda m, n=n: f"{n}: {m}")
        reports["assert_close"] = None
    except AssertionError as exc:
        reports["assert_close"] = str(exc)
    return reports


SCENARIOS = {"sdc": sdc, "fault": fault, "resume": resume, "accumulation": accumulation}


def main(argv: list[str]) -> int:
    mixture, out, scenarios = Path(argv[0]), Path(argv[1]), argv[2:]
    torch.set_num_threads(1)
    logging.getLogger("trainer").setLevel(logging.INFO)
    # A rank left waiting in a collective its peer never joins fails after a minute, not gloo's 30.
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    for scenario in scenarios:
        try:
            report = SCENARIOS[scenario](mixture, out / scenario)
        except Exception:  # the test shows the traceback
            report = {"crash": traceback.format_exc()}
        (out / f"{scenario}.rank{rank}.json").write_text(json.dumps(report, indent=1))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
