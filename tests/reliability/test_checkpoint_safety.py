"""Issue 17, items 1 and 8: opening a checkpoint never runs code from it, and a checkpoint that cannot
be read is one line on stderr (exit 2), never a traceback.

A genuine tiny run is trained once; each test copies it and plants a payload that creates a marker
file when plainly unpickled, then runs the real ``refinery`` entry point on it.
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from pathlib import Path

import pytest
import torch.distributed.checkpoint as dcp

from filters.config import load_yaml
from pipeline.cli import main
from tests.trainer.conftest import Corpus, corpus, one_torch_thread  # noqa: F401 - shared fixtures
from trainer.safe_checkpoint import METADATA_GLOBALS
from trainer.train import pretrain
from trainer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
TINY_TRAIN = REPO / "configs" / "train" / "tiny.yaml"


class TouchOnUnpickle:
    """Unpickling this calls ``Path(marker).touch()``: any code could run in its place."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (Path(self.marker),)


def train_run(corpus: Corpus, out: Path) -> Path:
    """Two steps of the tiny model, the tokenizer beside the run as ``refinery pretrain`` leaves it."""
    cfg = dataclasses.replace(load_yaml(TrainConfig, TINY_TRAIN), steps=2, progress=False)
    pretrain(TINY_MODEL, corpus.mixture, out, train_config=cfg)
    if not (out / "tokenizer.model").is_file():
        shutil.copyfile(corpus.tokenizer, out / "tokenizer.model")
    return out


@pytest.fixture(scope="module")
def genuine(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(corpus, tmp_path_factory.mktemp("safety") / "run")


@pytest.fixture
def run_copy(genuine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(genuine, tmp_path / "run"))


def step_dir(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step-*"))[-1]


def refinery(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``refinery ARGS``, without the trainer's INFO progress lines."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip() and not line.startswith("INFO ")]


def command(name: str, run: Path, corpus: Corpus, tmp_path: Path) -> list[object]:
    if name == "eval":
        return ["eval", "--ckpt", run, "--data", corpus.mixture, "--max-windows", 2]
    if name == "generate":
        return ["generate", "--ckpt", run, "--prompt", "The history of", "--max-new-tokens", 2]
    if name == "export-hf":
        return ["export-hf", "--ckpt", run, "--out", tmp_path / "hf"]
    return ["pretrain", "--model", TINY_MODEL, "--data", corpus.mixture, "--out", run,
            "--train-config", TINY_TRAIN, "--steps", 3, "--resume"]  # fmt: skip


def test_the_planted_payload_runs_under_plain_pickle(tmp_path: Path) -> None:
    """The payload is live, so the refusals below are what stops it (this is what DCP's loader did)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(TouchOnUnpickle(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", ["eval", "generate", "export-hf", "pretrain --resume"])
def test_planted_metadata_is_refused_by_every_command(
    name: str, run_copy: Path, corpus: Corpus, tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "pwned"
    metadata = step_dir(run_copy) / ".metadata"
    metadata.write_bytes(pickle.dumps(TouchOnUnpickle(marker)))
    code, err = refinery(capsys, *command(name.split()[0], run_copy, corpus, tmp_path))
    assert not marker.exists()
    assert code == 2 and len(err) == 1, err
    assert str(metadata) in err[0] and "refused to unpickle pathlib.Path.touch" in err[0]


def test_resume_refuses_a_byte_entry_that_would_run_code(
    corpus: Corpus, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DCP itself reads non-tensor entries with torch.load(weights_only=False); ours must not."""
    marker = tmp_path / "pwned"
    save = dcp.save

    def save_with_payload(state: dict, **kwargs: object) -> object:
        return save({**state, "train": TouchOnUnpickle(marker)}, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(dcp, "save", save_with_payload)
        run = train_run(corpus, tmp_path / "run")
    code, err = refinery(capsys, *command("pretrain", run, corpus, tmp_path))
    assert not marker.exists()
    assert code == 2 and len(err) == 1, err
    # torch.save writes Path.touch as getattr(Path, "touch"); weights_only refuses all three globals.
    assert str(step_dir(run) / "__0_0.distcp") in err[0] and "refused to unpickle" in err[0]
    assert "builtins.getattr" in err[0] and "(entry 'train')" in err[0]


@pytest.mark.parametrize(
    "content, says",
    [
        (None, "cannot read DCP metadata: No such file or directory"),
        (b"garbage\n", "cannot read DCP metadata"),
        (pickle.dumps({"state_dict_metadata": {}}), "holds a dict, not DCP Metadata"),
    ],
    ids=["missing", "garbage", "not-metadata"],
)
def test_unreadable_metadata_is_one_line_for_eval(
    content: bytes | None, says: str, run_copy: Path, corpus: Corpus, tmp_path: Path, capsys
) -> None:
    metadata = step_dir(run_copy) / ".metadata"
    if content is None:
        metadata.unlink()
    else:
        metadata.write_bytes(content)
    code, err = refinery(capsys, *command("eval", run_copy, corpus, tmp_path))
    assert code == 2 and len(err) == 1, err  # DCP's fallback used to log two tracebacks here
    assert err[0].startswith("refinery eval: error: ") and str(metadata) in err[0] and says in err[0]


def test_genuine_checkpoint_needs_only_the_allowed_globals_and_still_loads(
    run_copy: Path, corpus: Corpus, tmp_path: Path, capsys
) -> None:
    """The allowlist covers what torch writes for our trainer (see trainer.safe_checkpoint), and the
    safe reader and planner still eval, generate and resume a real checkpoint."""
    found: set[tuple[str, str]] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            found.add((module, name))
            return super().find_class(module, name)

    with open(step_dir(run_copy) / ".metadata", "rb") as handle:
        Recorder(handle).load()
    dtypes = {("torch", "float32"), ("torch", "uint8")}
    assert found - dtypes <= METADATA_GLOBALS and dtypes <= found

    for name in ("eval", "generate", "pretrain"):  # pretrain --resume reads the byte entries too
        code, err = refinery(capsys, *command(name, run_copy, corpus, tmp_path))
        assert code == 0, err
    assert step_dir(run_copy).name == "step-00000003"
