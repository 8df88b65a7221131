"""Where a run's numbers go: metrics.csv (one row per step), heldout.csv and the per-rank log files.

Rank 0 writes the CSVs and ``train.log``; every other rank writes ``train-rank<r>.log``, so a warning
raised on one rank (a failed silent-corruption check names its rank and host) is never lost.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import resource
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

METRICS_COLUMNS = ("step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "memory_mb", "status")
HELDOUT_COLUMNS = ("step", "source", "loss", "tokens")


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One row of ``metrics.csv``; ``status`` is ``ok`` or ``skipped:<reason>``."""

    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    mfu: float | None
    memory_mb: float
    status: str


def memory_mb(device: torch.device) -> float:
    """Peak device memory on GPU; the process's peak resident set on CPU (Linux reports KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MetricsFile:
    """metrics.csv and heldout.csv, written by rank 0 and flushed per row so a crash loses nothing.

    On resume, rows past the checkpoint's step (written after it by the run that died) are dropped,
    so the file holds one continuous history. A rollback inside a run does not rewrite the file: rows
    are attempts in order, so the steps that failed appear before their repeats (``status`` says why).
    """

    def __init__(self, metrics: Path, heldout: Path, rank: int, resume_step: int) -> None:
        self.files: dict[Path, Any] = {}
        self.writers: dict[Path, Any] = {}
        self.metrics, self.heldout = metrics, heldout
        if rank != 0:
            return
        for path, header in ((metrics, METRICS_COLUMNS), (heldout, HELDOUT_COLUMNS)):
            kept = []
            if path.exists() and resume_step > 0:
                with open(path, newline="", encoding="utf-8") as handle:
                    kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(kept)
            handle.flush()
            self.files[path], self.writers[path] = handle, writer

    def write_step(self, record: StepRecord) -> None:
        row = dataclasses.asdict(record)
        row["mfu"] = "" if record.mfu is None else f"{record.mfu:.4f}"
        self._write(self.metrics, row)

    def write_heldout(self, step: int, source: str, loss: float, tokens: int) -> None:
        self._write(self.heldout, {"step": step, "source": source, "loss": loss, "tokens": tokens})

    def _write(self, path: Path, row: dict[str, Any]) -> None:
        if path in self.writers:
            self.writers[path].writerow(row)
            self.files[path].flush()

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()
        self.writers.clear()


def attach_log_file(out: Path, rank: int) -> logging.Handler:
    name = "train.log" if rank == 0 else f"train-rank{rank}.log"
    handler = logging.FileHandler(out / name, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s rank{rank}@{socket.gethostname()} %(levelname)s %(message)s")
    )
    logger = logging.getLogger("trainer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def configure_console_logging(rank: int) -> None:
    """Progress on rank 0's console only; other ranks print warnings (their files hold everything)."""
    logger = logging.getLogger("trainer")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setLevel(logging.INFO if rank == 0 else logging.WARNING)
        prefix = "" if rank == 0 else f"rank{rank} "
        handler.setFormatter(logging.Formatter(f"{prefix}%(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted: notebooks and pytest swap it,
    and a handler holding the old stream would write into a closed capture."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass
