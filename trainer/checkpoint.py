"""Checkpoints through torch.distributed.checkpoint (DCP): sharded tensors plus the run's own state.

Layout under ``<out>/checkpoints/``::

    step-00001000/            one complete checkpoint
        __0_0.distcp ...      DCP files, one per rank (each rank writes only its own shards)
        .metadata             DCP's index
        meta.json             step, model config, world size: readable without torch
    step-00002000.tmp/        a save in progress (ignored; replaced by the next save)

A checkpoint is written under a ``.tmp`` name and renamed once every rank has finished, so a
directory without ``.tmp`` is always complete. DCP reshards on load, so FSDP2 parameters and
optimizer state are saved as shards and come back as shards.

What goes in, and why each piece is needed for an exact resume:

* ``model`` and ``optim``: ``get_state_dict`` gives FSDP-aware, wrapper-free keys (no
  ``_orig_mod`` or checkpoint-wrapper prefixes), so a compiled run can resume uncompiled.
* ``train``: JSON of the run-wide counters (step, loss guard); the LR schedule is a pure
  function of the step, so the step *is* the scheduler state.
* ``rank<r>``: per-rank state that differs between ranks: the data loader's position (JSON) and
  the torch CPU/CUDA generator states (tensors). Keyed by rank so DCP does not deduplicate them.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from trainer import safe_checkpoint
from trainer.safe_checkpoint import NO_GROUP_WARNING, CheckpointReadError

META_NAME = "meta.json"
_PREFIX = "step-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed into this run; the message names the directory."""


@dataclass(frozen=True, slots=True)
class Restored:
    """What :func:`load_checkpoint` returns besides filling the model and optimizer in place."""

    step: int
    train_state: dict[str, Any]
    """Run-wide counters as saved (identical on every rank)."""
    rank_state: dict[str, Any]
    """This rank's own JSON state (the data loader's position)."""
    rng: dict[str, torch.Tensor]
    """This rank's generator states; apply with :func:`restore_rng`."""


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _barrier() -> None:
    if _world() > 1:
        dist.barrier()


def step_dir(root: Path, step: int) -> Path:
    return root / f"{_PREFIX}{step:08d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / META_NAME).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / META_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read {META_NAME}: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise CheckpointError(f"{path}/{META_NAME}: not a refinery checkpoint (no integer 'step')")
    return meta


def check_compatible(path: Path, *, model_config: Mapping[str, Any], world_size: int) -> dict[str, Any]:
    """Refuse, before any step, a checkpoint whose model or rank count differs from this run's."""
    meta = read_meta(path)
    saved = meta.get("model_config", {})
    differing = sorted(k for k in set(saved) | set(model_config) if saved.get(k) != model_config.get(k))
    if differing:
        details = ", ".join(
            f"{k}: checkpoint {saved.get(k)!r} vs run {model_config.get(k)!r}" for k in differing
        )
        raise CheckpointError(f"{path}: checkpoint is from a different model ({details})")
    if meta.get("world_size") != world_size:
        raise CheckpointError(
            f"{path}: saved by {meta.get('world_size')} ranks, this run has {world_size}; the data loader's "
            "per-rank positions only resume under the same number of ranks"
        )
    return meta


def save_checkpoint(
    root: Path,
    step: int,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_state: Mapping[str, Any],
    rank_state: Mapping[str, Any],
    meta: Mapping[str, Any],
    keep: int | None = None,
) -> Path:
    """Save collectively (every rank calls this) and return the finished directory."""
    final = step_dir(root, step)
    tmp = final.with_name(final.name + ".tmp")
    if _rank() == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {
        "model": model_sd,
        "optim": optim_sd,
        "train": json.dumps(dict(train_state), sort_keys=True),
        f"rank{_rank()}": {"state": json.dumps(dict(rank_state), sort_keys=True), **_rng_tensors()},
    }
    with warnings.catch_warnings():  # DCP warns when there is no process group; one process is fine here
        warnings.filterwarnings("ignore", message=NO_GROUP_WARNING)
        dcp.save(state, checkpoint_id=str(tmp))
    _barrier()
    if _rank() == 0:
        (tmp / META_NAME).write_text(
            json.dumps({**meta, "step": step, "world_size": _world()}, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if keep is not None:
            for old in list_checkpoints(root)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def load_checkpoint(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer) -> Restored:
    """Fill ``model`` and ``optimizer`` in place (collective) and return the run's own state."""
    meta = read_meta(path)
    model_sd, optim_sd = get_state_dict(model, optimizer)
    key = f"rank{_rank()}"
    state: dict[str, Any] = {
        "model": model_sd,
        "optim": optim_sd,
        "train": "",
        key: {"state": "", **{name: torch.empty_like(t) for name, t in _rng_tensors().items()}},
    }
    try:
        safe_checkpoint.load(state, path)  # never unpickles code from the checkpoint
    except CheckpointReadError as exc:
        raise CheckpointError(str(exc)) from None
    # DCP wraps per-rank failures in CheckpointException, which derives from BaseException.
    except (Exception, CheckpointException) as exc:
        raise CheckpointError(f"{path}: cannot load checkpoint: {exc}") from exc
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    mine = state[key]
    return Restored(
        step=int(meta["step"]),
        train_state=json.loads(state["train"]),
        rank_state=json.loads(mine["state"]),
        rng={k: v for k, v in mine.items() if k != "state"},
    )


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda_rng"] = torch.cuda.get_rng_state()
    return tensors


def restore_rng(rng: Mapping[str, torch.Tensor]) -> None:
    """Put back the generator states saved with the checkpoint (``Restored.rng``)."""
    torch.set_rng_state(rng["torch_rng"].cpu())
    if "cuda_rng" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda_rng"].cpu())
