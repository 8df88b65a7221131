"""A trained model back from a ``refinery pretrain`` (or ``refinery import-hf``) output directory.

``generate``, ``eval`` and ``export-hf`` all start here, so a checkpoint that cannot serve them fails
in one place, before any compute, with a :class:`LoadError` naming the directory:

* ``--ckpt`` may be the run directory (its newest ``checkpoints/step-*`` is used) or one step directory;
* ``meta.json`` must describe our architecture: ``model_config`` has to build a
  :class:`~trainer.config.ModelConfig` (a checkpoint of another model family has other fields, and a
  Hugging Face directory has ``config.json`` instead, which ``refinery import-hf`` converts);
* the tokenizer must have exactly the model's ``vocab_size`` ids.

Only the model's tensors are read from the DCP checkpoint (``dcp.load`` reads the keys it is asked
for), so the optimizer state, twice the model's size, never enters memory.

Where the tokenizer comes from. A pretrain run directory does not hold the tokenizer: it belongs to the
mixture (``mixture.json``'s ``tokenizer.path``). In order, the first that exists is used: the path given
by the caller (``--tokenizer``), ``tokenizer.model`` in the step directory, then in the run directory
(``import-hf`` writes it there), then ``meta.json``'s ``tokenizer`` entry if the trainer recorded one.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from torch.distributed.checkpoint.api import CheckpointException

from trainer import safe_checkpoint
from trainer.checkpoint import META_NAME, CheckpointError, latest_checkpoint, read_meta
from trainer.config import ModelConfig
from trainer.model import Transformer
from trainer.safe_checkpoint import CheckpointReadError

TOKENIZER_NAME = "tokenizer.model"


class LoadError(ValueError):
    """A checkpoint, config or tokenizer that cannot be used as given; the message names the path."""


@dataclass(frozen=True)
class Loaded:
    """A model ready for inference, with what it was loaded from."""

    model: Transformer
    config: ModelConfig
    tokenizer: spm.SentencePieceProcessor
    tokenizer_path: Path
    checkpoint: Path
    """The step directory whose weights were loaded."""
    meta: dict[str, Any]
    """That checkpoint's ``meta.json`` (step, model and train configs)."""

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def tokenizer_sha256(self) -> str:
        return sha256_file(self.tokenizer_path)


def add_checkpoint_arguments(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    """The flags every command that opens a trained checkpoint shares (eval, eval-mc, generate, export-hf)."""
    parser.add_argument("--ckpt", type=Path, required=True, help="pretrain output dir or a step dir")
    parser.add_argument("--tokenizer", type=Path, help="sentencepiece model (default: found beside the ckpt)")
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolve_checkpoint(path: str | Path) -> Path:
    """The step directory ``path`` designates: itself, or the newest complete one of a run directory."""
    path = Path(path)
    if not path.is_dir():
        raise LoadError(f"{path}: no such checkpoint directory")
    if (path / META_NAME).is_file():
        return path
    newest = latest_checkpoint(path / "checkpoints")
    if newest is not None:
        return newest
    if (path / "config.json").is_file():
        raise LoadError(
            f"{path}: looks like a Hugging Face checkpoint (config.json), not a refinery one; "
            "convert it first with `refinery import-hf --hf DIR --out DIR`"
        )
    raise LoadError(f"{path}: not a refinery checkpoint (no {META_NAME}, no checkpoints/step-* inside)")


def model_config_from_meta(meta: dict[str, Any], where: Path) -> ModelConfig:
    """The checkpoint's model shape; a mapping that does not fit :class:`ModelConfig` is another model."""
    raw = meta.get("model_config")
    if not isinstance(raw, dict):
        raise LoadError(f"{where}/{META_NAME}: no 'model_config' mapping")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise LoadError(
            f"{where}/{META_NAME}: model_config has fields {unknown} that this decoder does not have; "
            "the checkpoint is of another architecture"
        )
    try:
        return ModelConfig(**raw)
    except (TypeError, ValueError) as exc:
        raise LoadError(f"{where}/{META_NAME}: model_config is not a valid decoder shape: {exc}") from None


def find_tokenizer(step_dir: Path, meta: dict[str, Any], explicit: str | Path | None = None) -> Path:
    """See the module docstring for the search order."""
    if explicit is not None:
        explicit = Path(explicit)
        if not explicit.is_file():
            raise LoadError(f"{explicit}: tokenizer file not found")
        return explicit
    candidates = [step_dir / TOKENIZER_NAME, step_dir.parent.parent / TOKENIZER_NAME]
    recorded = meta.get("tokenizer")
    if isinstance(recorded, dict) and isinstance(recorded.get("path"), str):
        candidates.append(Path(recorded["path"]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise LoadError(
        f"{step_dir}: no tokenizer found (looked for {', '.join(str(c) for c in candidates)}); pass "
        "--tokenizer with the mixture's tokenizer.model"
    )


def load_tokenizer(path: Path, cfg: ModelConfig) -> spm.SentencePieceProcessor:
    """The sentencepiece model at ``path``, refused unless its id space is the model's."""
    try:
        sp = spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise LoadError(f"{path}: not a sentencepiece model: {exc}") from None
    if sp.vocab_size() != cfg.vocab_size:
        raise LoadError(
            f"{path}: tokenizer has {sp.vocab_size()} ids but the model's vocab_size is {cfg.vocab_size}; "
            "it is not the tokenizer this model was trained with"
        )
    return sp


def build_empty(cfg: ModelConfig, device: torch.device) -> Transformer:
    """A model with uninitialized weights on ``device`` (skipping a random init about to be overwritten)."""
    with torch.device("meta"):
        model = Transformer(cfg)
    model.to_empty(device=device)
    model.rotary.reset()  # non-persistent, so no checkpoint restores it
    if cfg.tie_embeddings:
        model.output.weight = model.tok_embeddings.weight
    return model


def load_weights(step_dir: Path, cfg: ModelConfig, device: torch.device) -> Transformer:
    """Read the ``model`` entries of a DCP checkpoint into a fresh model."""
    model = build_empty(cfg, device)
    state = {"model": model.state_dict()}
    try:
        safe_checkpoint.load(state, step_dir)  # never unpickles code from the checkpoint
    except CheckpointReadError as exc:
        raise LoadError(str(exc)) from None
    except (Exception, CheckpointException) as exc:  # a BaseException: DCP wraps per-rank failures in it
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = lines[-1] if lines else type(exc).__name__  # the last line holds the inner error
        raise LoadError(f"{step_dir}: weights do not fit its model_config: {cause}") from exc
    model.load_state_dict(state["model"])
    return model.eval()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LoadError("--device cuda requested but torch sees no GPU")
    if name not in ("cpu", "cuda"):
        raise LoadError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def load_trained(
    ckpt: str | Path, *, tokenizer: str | Path | None = None, device: str | torch.device = "cpu"
) -> Loaded:
    """Model, config and tokenizer of a checkpoint; every check runs before the weights are read."""
    step_dir = resolve_checkpoint(ckpt)
    try:
        meta = read_meta(step_dir)
    except CheckpointError as exc:
        raise LoadError(str(exc)) from None
    cfg = model_config_from_meta(meta, step_dir)
    tok_path = find_tokenizer(step_dir, meta, tokenizer)
    sp = load_tokenizer(tok_path, cfg)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = load_weights(step_dir, cfg, dev)
    return Loaded(
        model=model, config=cfg, tokenizer=sp, tokenizer_path=tok_path, checkpoint=step_dir, meta=meta
    )


def train_setting(meta: dict[str, Any], key: str, default: Any) -> Any:
    """One field of the run's ``train_config`` as saved in ``meta.json`` (``default`` if absent)."""
    train = meta.get("train_config")
    return train.get(key, default) if isinstance(train, dict) else default


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
