"""The FSDP2 path for real: torchrun, two CPU processes on gloo, a sharded checkpoint and a resume."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.conftest import Corpus

REPO = Path(__file__).resolve().parents[2]
TRAIN_YAML = """\
steps: 6
seq_len: 64
micro_batch_size: 4
tokens_per_step: 1024   # 2 ranks x 4 x 64 = 512 per micro-step: 2 accumulation steps
lr: 3.0e-3
warmup_steps: 2
device: cpu
heldout_every: 20
eval_every: 4
eval_windows: 9         # odd on purpose: rounded down to 8 so both ranks run 4 forwards
checkpoint_every: 2
progress: false
"""


def torchrun(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "trainer.train", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(180)
def test_fsdp2_two_cpu_ranks_train_checkpoint_and_resume(corpus: Corpus, tmp_path: Path) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(TRAIN_YAML)
    out = tmp_path / "run"
    base = ["--model", REPO / "configs" / "model" / "tiny.yaml", "--data", corpus.mixture, "--out", out,
            "--train-config", cfg]
    first = torchrun(*base, "--steps", "4")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 rank(s), FSDP2-sharded" in first.stderr
    ckpt = out / "checkpoints" / "step-00000004"
    # One DCP file per rank: each wrote only its own parameter shards.
    assert {p.name for p in ckpt.glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}

    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(r["status"] == "ok" and math.isfinite(float(r["loss"])) for r in rows)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    with open(out / "heldout.csv", newline="") as handle:
        heldout = list(csv.DictReader(handle))
    assert {r["source"] for r in heldout} == {"wiki", "books"}
    assert {r["tokens"] for r in heldout} == {str(8 * 64)}

    resumed = torchrun(*base, "--resume")  # on to the YAML's 6 steps
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "step-00000004 at step 4" in resumed.stderr
    with open(out / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5, 6]
