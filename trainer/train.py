"""Pretraining: a mixture of token shards in, a trained decoder and its metrics out.

``pretrain()`` is the Python API (notebooks, the Airflow DAGs); ``main()`` is what ``refinery
pretrain`` delegates to and what ``torchrun -m trainer.train`` runs on every rank. One process
trains on CPU or one GPU; under torchrun the model is sharded with FSDP2 by ``trainer.parallelize``.

Vocabulary rule. The tokenizer owns the vocabulary: with ``vocab_size_from_data: true`` (the
default) the model's ``vocab_size`` is replaced by the mixture's ``tokenizer.vocab_size``; with
``false`` the model YAML's value must equal it, and a mismatch stops the run before any step.

Everything a user can get wrong (config keys, a corrupt or missing shard, a vocabulary mismatch, a
checkpoint from another model, an out dir that already holds a run) fails before the first step as
a :class:`TrainError` / ``ConfigError`` / ``MixtureError`` / ``CheckpointError``, all ``ValueError``s
whose message names the file or key; ``main`` prints it on one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.tensor import DTensor
from tqdm import tqdm

from filters.config import ConfigError, load_yaml
from trainer.checkpoint import (
    CheckpointError,
    check_compatible,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from trainer.config import ModelConfig
from trainer.data import Batch, MixtureLoader
from trainer.guard import DeviceLossGuard, SilentCorruptionError, TrainingDivergedError, losses_agree
from trainer.metrics import MetricsFile, StepRecord, attach_log_file, configure_console_logging, memory_mb
from trainer.mfu import mfu
from trainer.mixture import Mixture, MixtureError, load_mixture
from trainer.model import Transformer
from trainer.parallelize import parallelize, reshard, set_gradient_sync
from trainer.schedule import lr_at
from trainer.shards import ShardError, verify
from trainer.train_config import TrainConfig

log = logging.getLogger("trainer")


class TrainError(ValueError):
    """A run that cannot start as configured; the message names the file or key at fault."""


@dataclass
class TrainResult:
    """What a call to :meth:`Trainer.train` / :func:`pretrain` did."""

    out: Path
    step: int
    """Optimizer steps completed (skipped steps count: they consumed data and a schedule slot)."""
    history: list[StepRecord] = field(default_factory=list)
    heldout: dict[str, float] = field(default_factory=dict)
    """Last held-out loss per source."""
    rollbacks: int = 0
    checkpoint: Path | None = None

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.history]

    @property
    def metrics_csv(self) -> Path:
        return self.out / "metrics.csv"


@dataclass
class _PendingStep:
    """A finished step whose loss, grad norm and verdict are still on the device.

    The loop keeps these until the next step that reads the device anyway (a log, eval, checkpoint
    or silent-corruption step, or the last one), then reads all of them with one host sync.
    """

    step: int
    lr: float
    values: torch.Tensor
    """float64 (loss, grad_norm, verdict code, bad streak after this step), on the device."""
    seconds: float
    """Host time of the step; on a GPU only the launch time, as nothing waited for the device."""
    memory_mb: float
    loader_state: dict[str, Any]
    """The data position after this step, for a rollback found only when the step is read."""


class Trainer:
    """Owns the model, optimizer, loader and guards of one run; ``train(until)`` may be called repeatedly."""

    def __init__(
        self, model_config: Path, data: Path, out: Path, cfg: TrainConfig, *, resume: bool = False
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self._log_handler: logging.Handler | None = None
        self._metrics: MetricsFile | None = None
        self.rank, self.world, self._owns_group = _init_distributed(cfg.device)
        try:
            self._setup(Path(model_config), Path(data), resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, model_config: Path, data: Path, resume: bool) -> None:
        cfg = self.cfg
        self.device = _pick_device(cfg.device)
        self._autocast = self.device.type == "cuda" and cfg.bf16
        if cfg.sdc_check_every and cfg.compile and self._autocast and cfg.sdc_tolerance == 0:
            raise TrainError(
                "sdc_check_every with compile and bf16 needs sdc_tolerance > 0: compiled bf16 forwards with "
                "and without grad round differently, so every check would fail on healthy hardware (see "
                "TrainConfig.sdc_tolerance; benchmarks/sdc_recompute.py measures the difference)"
            )
        self.mixture = load_mixture(data)
        self._check_shards(self.mixture)
        self.model_cfg = _model_config(model_config, self.mixture, cfg)
        per_micro = cfg.micro_batch_size * cfg.seq_len * self.world
        if cfg.tokens_per_step % per_micro:
            raise TrainError(
                f"tokens_per_step ({cfg.tokens_per_step}) must be a multiple of micro_batch_size x seq_len x "
                f"ranks = {cfg.micro_batch_size} x {cfg.seq_len} x {self.world} = {per_micro}"
            )
        self.grad_accum = cfg.tokens_per_step // per_micro
        self.ckpt_root = self.out / "checkpoints"
        existing = latest_checkpoint(self.ckpt_root)
        if existing is not None and not resume:
            raise TrainError(
                f"{self.out}: already holds checkpoints ({existing.name}); pass --resume or use a new --out"
            )
        if resume and existing is not None:
            check_compatible(existing, model_config=dataclasses.asdict(self.model_cfg), world_size=self.world)
        self.out.mkdir(parents=True, exist_ok=True)
        self._log_handler = attach_log_file(self.out, self.rank)
        self._keep_tokenizer()

        torch.manual_seed(cfg.seed)
        with torch.device("meta"):
            model = Transformer(self.model_cfg)
        self.model = parallelize(
            model, self.device, activation_checkpointing=cfg.activation_checkpointing, compile=cfg.compile
        )
        self.optimizer = build_optimizer(self.model, cfg)
        try:
            self.loader = MixtureLoader(
                self.mixture,
                seq_len=cfg.seq_len,
                batch_size=cfg.micro_batch_size,
                seed=cfg.seed,
                rank=self.rank,
                world_size=self.world,
                heldout_every=cfg.heldout_every,
            )
        except ValueError as exc:  # a source too small for one window
            raise TrainError(f"{self.mixture.path}: {exc}") from None
        for source in self.loader.sources:
            if cfg.eval_every and source.n_heldout < self.world:
                log.warning(
                    "source '%s' has %d windows, too few for one held-out window per rank at "
                    "heldout_every=%s; it gets no held-out loss",
                    source.name, source.n_windows, cfg.heldout_every,
                )
        self.guard = DeviceLossGuard(
            spike_ratio=cfg.spike_ratio, warmup_steps=cfg.guard_warmup_steps, ema_beta=cfg.guard_ema_beta,
            device=self.device,
        )
        self._pending: list[_PendingStep] = []
        self._window_started: float | None = None
        self.step = 0
        self.rollbacks = 0
        self.last_checkpoint: Path | None = None
        self.heldout: dict[str, float] = {}
        if resume and existing is not None:
            self._restore(existing, restore_data=True)
            log.info("resumed from %s at step %d", existing, self.step)
        self._metrics = MetricsFile(self.out / "metrics.csv", self.out / "heldout.csv", self.rank, self.step)
        sharded = any(isinstance(p, DTensor) for p in self.model.parameters())
        log.info(
            "model %d params (%s), %d rank(s), %s, %d micro-batch(es) of %dx%d per step, sources %s",
            sum(p.numel() for p in self.model.parameters()), model_config, self.world,
            "FSDP2-sharded" if sharded else "unsharded", self.grad_accum, cfg.micro_batch_size, cfg.seq_len,
            dict(zip(self.loader.source_names, self.loader.weights.round(4).tolist())),
        )

    # -- setup checks -------------------------------------------------------------------------------

    def _check_shards(self, mixture: Mixture) -> None:
        """Hash every shard on rank 0 only and share the verdict: one read of the corpus, not one per rank."""
        problems: list[str] = []
        if self.rank == 0:
            for manifest in mixture.manifests:
                problems += [str(p) for p in verify(manifest.dir, checksums=self.cfg.verify_checksums)]
        if self.world > 1:
            box = [problems]
            dist.broadcast_object_list(box, src=0)
            problems = box[0]
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise TrainError(f"{mixture.path}: corrupt shards: {'; '.join(problems[:3])}{more}")

    # -- the loop -----------------------------------------------------------------------------------

    def train(self, until: int) -> TrainResult:
        """Run optimizer steps until ``self.step == until``; a checkpoint is saved on return.

        No step reads a device value unless it must: losses, grad norms and the guard's verdicts stay
        on the device and are read together at the next log, eval, checkpoint or silent-corruption
        step and at ``until`` (:meth:`_read_pending`). A rollback found then happens exactly as if it
        had been seen at its own step: the steps run after it are discarded with the data they read.
        """
        result = TrainResult(out=self.out, step=self.step)
        quiet = self.rank != 0 or not self.cfg.progress
        bar = tqdm(total=until, initial=self.step, disable=quiet, desc="pretrain")
        try:
            while self.step < until:
                if self._window_started is None:
                    self._window_started = time.perf_counter()
                self._pending.append(self._train_step())
                bar.update(1)
                if not self._read_due(until):
                    continue
                if self._read_pending(result, bar):  # rolled back
                    bar.n = self.step
                    continue
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    self.evaluate()
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save()
        except BaseException:
            self._write_pending_after_failure(result, bar)
            raise
        finally:
            bar.close()
        if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step:08d}":
            self.save()
        result.step = self.step
        result.heldout = dict(self.heldout)
        result.rollbacks = self.rollbacks
        result.checkpoint = self.last_checkpoint
        return result

    def _read_due(self, until: int) -> bool:
        """Whether the step just taken reads the pending steps: a log step, the last step, a step that
        evaluates or checkpoints (both read the device, and neither may see a run that should have
        rolled back), and the steps around a silent-corruption check (the check reads the loss anyway;
        reading before it keeps metrics.csv complete if it stops the run)."""
        cfg, step = self.cfg, self.step
        return (
            step % cfg.log_every == 0
            or step >= until
            or bool(cfg.eval_every and step % cfg.eval_every == 0)
            or bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
            or bool(cfg.sdc_check_every and (step % cfg.sdc_check_every in (0, cfg.sdc_check_every - 1)))
        )

    def _read_pending(self, result: TrainResult, bar: tqdm, *, act: bool = True) -> bool:
        """Read every pending step with one host sync, then write, log and judge them in order as the
        loop once did step by step. True when a step called for a rollback (done here, after putting
        the step counter and the data position back to that step: later steps never happened)."""
        if not self._pending:
            return False
        pending, self._pending = self._pending, []
        rows = torch.stack([p.values for p in pending]).tolist()  # the one host sync of the window
        window = time.perf_counter() - (self._window_started or 0.0)
        self._window_started = None
        for p, (loss, grad_norm, code, streak) in zip(pending, rows):
            reason = DeviceLossGuard.REASONS[int(code)]
            status = "ok" if reason is None else f"skipped:{reason}"
            if reason is not None:
                log.warning(
                    "step %d skipped (%s): loss %s, grad_norm %s; update not applied (%d bad in a row)",
                    p.step, reason, loss, grad_norm, int(streak),
                )
            # On CPU each step's own time is real; on a GPU only the window's time, taken after its
            # one sync, says how long the device worked, so its steps share it evenly.
            seconds = p.seconds if self.device.type == "cpu" else window / len(pending)
            tokens_per_s = self.cfg.tokens_per_step / seconds
            record = StepRecord(
                step=p.step,
                loss=loss,
                lr=p.lr,
                grad_norm=grad_norm,
                tokens_per_s=tokens_per_s,
                mfu=_mfu(tokens_per_s, self.model_cfg, self.cfg, self.world),
                memory_mb=p.memory_mb,
                status=status,
            )
            result.history.append(record)
            self._metrics.write_step(record)
            bar.set_postfix(loss=f"{record.loss:.3f}", lr=f"{record.lr:.2e}")
            if record.step % self.cfg.log_every == 0 or record.status != "ok":
                log.info(
                    "step %d loss %.4f lr %.3e grad_norm %.3f tok/s %.0f %s",
                    record.step, record.loss, record.lr, record.grad_norm, record.tokens_per_s,
                    record.status,
                )
            if act and (reason == "sdc" or streak >= self.cfg.max_bad_steps):
                why = "silent-corruption check failed" if reason == "sdc" else f"{int(streak)} bad steps in a row"
                self.step = p.step
                self.loader.load_state_dict(p.loader_state)
                self._rollback(why)
                return True
        return False

    def _write_pending_after_failure(self, result: TrainResult, bar: tqdm) -> None:
        """Best effort, when a step raised: write the pending steps' rows so a crash loses none of them
        (a device fault will fail the read too, and then the rows are lost)."""
        try:
            self._read_pending(result, bar, act=False)
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            log.warning("could not read the %d step(s) before the failure", len(self._pending))
        self._pending = []
        self._window_started = None

    def _train_step(self) -> _PendingStep:
        """One optimizer step, queued on the device without reading any value back: the guard
        judges and the fused AdamW skips on the device (``found_inf``). Only a due silent-corruption
        check reads the loss (it must compare two numbers), which the caller reads around anyway."""
        cfg = self.cfg
        lr = lr_at(
            self.step, peak_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
            min_lr_ratio=cfg.min_lr_ratio,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        first: tuple[Batch, torch.Tensor] | None = None
        for i in range(self.grad_accum):
            # Under FSDP2 only the last micro-batch's backward reduces gradients across ranks; the
            # others accumulate locally (trainer.parallelize.set_gradient_sync).
            set_gradient_sync(self.model, i == self.grad_accum - 1)
            batch = self.loader.next_batch()
            loss = self._loss(batch)
            (loss / self.grad_accum).backward()
            loss_sum += loss.detach()
            if first is None:
                first = (batch, loss.detach())
        loss_value = _mean_over_ranks(loss_sum / self.grad_accum, self.world)
        grad_norm = _total_norm(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
        assert first is not None
        due = cfg.sdc_check_every > 0 and (self.step + 1) % cfg.sdc_check_every == 0
        if due and self._silent_corruption_failed(*first):
            # Known on the host already: no update at all, and the guard does not see the step.
            code = torch.full((), DeviceLossGuard.REASONS.index("sdc"), dtype=torch.int64, device=self.device)
        else:
            code = self.guard.judge(loss_value, grad_norm)
            _skip_on_device(self.optimizer, code != 0)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        values = torch.stack([t.to(torch.float64) for t in (loss_value, grad_norm, code, self.guard.bad_streak)])
        self.step += 1
        return _PendingStep(
            step=self.step,
            lr=lr,
            values=values,
            seconds=time.perf_counter() - started,
            memory_mb=memory_mb(self.device),
            loader_state=self.loader.state_dict(),
        )

    def _loss(self, batch: Batch) -> torch.Tensor:
        inputs = batch.inputs.to(self.device, non_blocking=True)
        targets = batch.targets.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            logits = self.model(inputs)  # (B, T, V) float32
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def _silent_corruption_failed(self, batch: Batch, trained_loss: torch.Tensor) -> bool:
        """Recompute one micro-batch's forward with unchanged weights; a different loss means the
        hardware computed something else from the same inputs (Meta's LLaMA-3 report, sec. 3.3.4,
        names silent data corruption among the failures of large runs). True on any rank's mismatch
        when the action is rollback; raises when it is stop. Every rank reaches the same verdict.

        The recompute must leave FSDP2 as it found it: without the reshard, the root and the last
        block would stay gathered with this step's pre-update weights and the next step would train
        on them (see ``trainer.parallelize.reshard``)."""
        try:
            with torch.no_grad():
                again = self._loss(batch).detach()
        finally:
            reshard(self.model)
        bad = not losses_agree(float(trained_loss), float(again), self.cfg.sdc_tolerance)
        if bad:
            log.error(
                "silent-corruption check failed at step %d on rank %d host %s: loss %r then %r",
                self.step + 1, self.rank, socket.gethostname(), float(trained_loss), float(again),
            )
        flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
        if self.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        failed = flag.item() > 0
        if failed and self.cfg.sdc_action == "stop":
            where = f"rank {self.rank} on {socket.gethostname()}" if bad else "another rank (see its log)"
            raise SilentCorruptionError(f"silent-corruption check failed at step {self.step + 1} on {where}")
        return failed

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Mean held-out loss per source over the same ``eval_windows`` windows each time."""
        try:
            with torch.no_grad():
                return self._evaluate()
        finally:
            reshard(self.model)  # frees the gathered root and last block (trainer.parallelize.reshard)

    def _evaluate(self) -> dict[str, float]:
        results = {}
        for s, name in enumerate(self.loader.source_names):
            total = torch.zeros(2, device=self.device, dtype=torch.float64)  # (loss sum, tokens)
            for batch in self.loader.heldout_batches(
                s, max_windows=self.cfg.eval_windows, batch_size=self.cfg.micro_batch_size
            ):
                inputs, targets = batch.inputs.to(self.device), batch.targets.to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
                    logits = self.model(inputs)
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), reduction="sum")
                total[0] += loss.double()
                total[1] += targets.numel()
            if self.world > 1:
                dist.all_reduce(total)
            if total[1] > 0:
                results[name] = float(total[0] / total[1])
                self._metrics.write_heldout(self.step, name, results[name], int(total[1]))
        if results:
            log.info("step %d held-out loss %s", self.step, {k: round(v, 4) for k, v in results.items()})
        self.heldout = results
        return results

    # -- checkpoints --------------------------------------------------------------------------------

    def _keep_tokenizer(self) -> None:
        """Copy the mixture's tokenizer into the run, so generate/eval/export need nothing else."""
        target = self.out / "tokenizer.model"
        source = self.mixture.tokenizer_path
        if self.rank == 0 and source.is_file() and not target.exists():
            shutil.copyfile(source, target)

    def save(self) -> Path:
        self.last_checkpoint = save_checkpoint(
            self.ckpt_root,
            self.step,
            model=self.model,
            optimizer=self.optimizer,
            train_state={"step": self.step, "guard": self.guard.state_dict(), "rollbacks": self.rollbacks},
            rank_state={"data": self.loader.state_dict()},
            meta={
                "model_config": dataclasses.asdict(self.model_cfg),
                "train_config": dataclasses.asdict(self.cfg),
                "tokenizer": {"path": "tokenizer.model", "sha256": self.mixture.tokenizer.sha256},
            },
            keep=self.cfg.keep_checkpoints,
        )
        log.info("saved checkpoint %s", self.last_checkpoint)
        return self.last_checkpoint

    def _restore(self, path: Path, *, restore_data: bool) -> None:
        restored = load_checkpoint(path, model=self.model, optimizer=self.optimizer)
        self.step = restored.step
        self.guard.load_state_dict(restored.train_state["guard"])
        self.rollbacks = int(restored.train_state.get("rollbacks", 0))
        restore_rng(restored.rng)
        if restore_data:
            try:
                self.loader.load_state_dict(restored.rank_state["data"])
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
        self.last_checkpoint = path

    def _rollback(self, why: str) -> None:
        """Go back to the last checkpoint but keep reading data from where we are, so the batches
        that diverged are not replayed (PaLM, Chowdhery et al. 2022, sec. 5.1, restarts about 100
        steps earlier and skips 200-500 batches)."""
        target = latest_checkpoint(self.ckpt_root)
        if target is None:
            raise TrainingDivergedError(f"{why} at step {self.step} and no checkpoint to roll back to")
        if self.rollbacks >= self.cfg.max_rollbacks:
            raise TrainingDivergedError(
                f"{why} at step {self.step}; already rolled back {self.rollbacks} times"
            )
        failed_at = self.step
        rollbacks = self.rollbacks + 1
        self._restore(target, restore_data=False)
        self.rollbacks = rollbacks
        self.guard.bad_streak.zero_()
        log.warning(
            "rolled back from step %d to %s (%s); data continues at batch %d, skipping what diverged",
            failed_at, target.name, why, self.loader.batches,
        )

    def close(self) -> None:
        """Release files and the process group; safe after a failed construction and when repeated."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._log_handler is not None:
            logging.getLogger("trainer").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False


def pretrain(
    model_config: Path,
    data: Path,
    out: Path,
    *,
    steps: int | None = None,
    train_config: Path | TrainConfig | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train ``model_config`` on the mixture ``data`` into ``out``; ``steps`` overrides ``TrainConfig.steps``
    (the schedule's length too). ``resume`` continues from the newest checkpoint in ``out``."""
    if isinstance(train_config, TrainConfig):
        cfg = train_config
    elif train_config is None:
        cfg = TrainConfig()
    else:
        cfg = load_yaml(TrainConfig, train_config)
    if steps is not None:
        try:
            cfg = dataclasses.replace(cfg, steps=steps)
        except ValueError as exc:
            raise TrainError(f"--steps: {exc}") from None
    trainer = Trainer(Path(model_config), Path(data), Path(out), cfg, resume=resume)
    try:
        return trainer.train(cfg.steps)
    finally:
        trainer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refinery pretrain", description="Pretrain a decoder on a shard mixture.", allow_abbrev=False
    )
    parser.add_argument("--model", type=Path, required=True, help="model YAML (configs/model/*.yaml)")
    parser.add_argument("--data", type=Path, required=True, help="mixture.json written by `refinery mix`")
    parser.add_argument(
        "--out", type=Path, required=True, help="run directory: checkpoints, metrics.csv, train.log"
    )
    parser.add_argument("--steps", type=int, help="optimizer steps (overrides the train config)")
    parser.add_argument("--train-config", type=Path, help="training YAML (configs/train/*.yaml)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out (a fresh start if none)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    configure_console_logging(rank=int(os.environ.get("RANK", "0")))
    try:
        result = pretrain(
            args.model,
            args.data,
            args.out,
            steps=args.steps,
            train_config=args.train_config,
            resume=args.resume,
        )
    except (TrainError, ConfigError, MixtureError, ShardError, CheckpointError) as exc:
        print(f"refinery pretrain: error: {exc}", file=sys.stderr)
        return 2
    except (TrainingDivergedError, SilentCorruptionError) as exc:
        print(f"refinery pretrain: stopped: {exc}", file=sys.stderr)
        return 1
    if result.history:
        log.info("done: step %d, last loss %.4f, held-out %s", result.step, result.losses[-1], result.heldout)
    return 0


# -- helpers --------------------------------------------------------------------------------------


def _model_config(path: Path, mixture: Mixture, cfg: TrainConfig) -> ModelConfig:
    overrides = {"vocab_size": mixture.vocab_size} if cfg.vocab_size_from_data else None
    model_cfg = load_yaml(ModelConfig, path, overrides=overrides)
    if model_cfg.vocab_size != mixture.vocab_size:
        raise TrainError(
            f"{path}: vocab_size {model_cfg.vocab_size} does not match the shards' {mixture.vocab_size} "
            f"(tokenizer in {mixture.path}); set vocab_size_from_data: true or fix the model config"
        )
    if cfg.seq_len > model_cfg.max_seq_len:
        raise TrainError(
            f"seq_len {cfg.seq_len} exceeds the model's max_seq_len {model_cfg.max_seq_len} ({path})"
        )
    return model_cfg


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """Weight decay on every matrix (linear weights and the embedding), none on norm gains: decaying
    a gain pulls it toward zero, which only rescales activations (nanoGPT and torchtitan do the same;
    LLaMA-1 states decay 0.1 without the split)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=True,  # its found_inf lets the loss guard skip a step without a host sync (_skip_on_device)
    )


def _init_distributed(device: str) -> tuple[int, int, bool]:
    """Join the torchrun process group when launched by torchrun; (rank, world, we-created-it)."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, False
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def _pick_device(device: str) -> torch.device:
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TrainError("device: cuda requested but torch sees no GPU")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def _mean_over_ranks(value: torch.Tensor, world: int) -> torch.Tensor:
    """The mean over ranks, left on the device (an all-reduce is a collective, not a host read)."""
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value


def _total_norm(norm: torch.Tensor) -> torch.Tensor:
    """The whole model's grad norm as a plain tensor on the device (gathered from a DTensor under FSDP2)."""
    full = getattr(norm, "full_tensor", None)
    return full() if full is not None else norm


def _skip_on_device(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """Make the next ``optimizer.step()`` a no-op where ``skip`` is true, decided on the device.

    The fused AdamW kernels take ``found_inf`` (meant for ``GradScaler``): where it is 1 they change no
    parameter or moment, and the step count is put back, exactly as if ``step()`` was not called. The
    fused flag is set again here because loading an optimizer state dict replaces the param groups'
    options with the saved ones, and a checkpoint written before the trainer used the fused kernels
    says ``fused: None``, which would reject ``found_inf``.
    """
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, None
    optimizer.found_inf = skip.to(torch.float32)  # type: ignore[attr-defined]


def _mfu(tokens_per_s: float, model_cfg: ModelConfig, cfg: TrainConfig, world: int) -> float | None:
    if cfg.peak_tflops is None:
        return None
    return mfu(tokens_per_s, model_cfg, cfg.seq_len, cfg.peak_tflops * 1e12 * world)


if __name__ == "__main__":
    sys.exit(main())
