"""refinery eval on the real shards: it reproduces the trainer's held-out loss and counts bytes exactly."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest

from filters.config import load_yaml
from tests.trainer.conftest import Corpus
from trainer.evaluate import evaluate, main, token_bytes
from trainer.load import load_trained
from trainer.train import TrainResult, pretrain
from trainer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
TINY_TRAIN = REPO / "configs" / "train" / "tiny.yaml"
WINDOWS = 8


@pytest.fixture(scope="module")
def trained(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """Four steps, with the trainer's own held-out evaluation at the last one over WINDOWS windows."""
    cfg = dataclasses.replace(
        load_yaml(TrainConfig, TINY_TRAIN), steps=4, eval_every=4, eval_windows=WINDOWS, progress=False
    )
    result = pretrain(TINY_MODEL, corpus.mixture, tmp_path_factory.mktemp("eval") / "run", train_config=cfg)
    shutil.copyfile(corpus.tokenizer, result.out / "tokenizer.model")
    return result


def test_eval_reproduces_the_trainers_heldout_loss(trained: TrainResult, corpus: Corpus) -> None:
    report = evaluate(trained.out, corpus.mixture, max_windows=WINDOWS, batch_size=4)
    assert report["step"] == 4 and (report["seq_len"], report["heldout_every"]) == (64, 20)
    assert set(report["sources"]) == set(trained.heldout) == {"wiki", "books"}
    for name, loss in trained.heldout.items():
        row = report["sources"][name]
        assert row["loss"] == pytest.approx(loss, abs=1e-5)
        assert (row["windows"], row["tokens"]) == (WINDOWS, WINDOWS * 64)
        assert row["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
        nats = row["loss"] * row["tokens"]
        assert row["bits_per_byte"] == pytest.approx(nats / (math.log(2) * row["bytes"]))
        assert 2.0 < row["bytes"] / row["tokens"] < 6.0  # English with a 2,000-piece BPE
    total = report["all"]
    assert total["tokens"] == 2 * WINDOWS * 64
    assert total["loss"] == pytest.approx(sum(trained.heldout.values()) / 2, abs=1e-5)  # equal token counts


def test_byte_table_matches_decoded_text(corpus: Corpus) -> None:
    sp = load_trained_tokenizer(corpus)
    sizes = token_bytes(sp)
    assert sizes[sp.eos_id()] == 0 and sizes[sp.piece_to_id("<0x41>")] == 1
    checked = 0
    for name in ("wiki", "books"):
        for doc in corpus.documents[name][:30]:
            dummy_space = 1 if sp.id_to_piece(doc[0]).startswith("▁") else 0  # stripped by decode
            assert int(sizes[doc].sum()) == len(sp.decode(doc).encode("utf-8")) + dummy_space
            checked += 1
    assert checked == 60


def load_trained_tokenizer(corpus: Corpus):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(corpus.tokenizer))


def test_cli_writes_json_and_prints_a_table(
    trained: TrainResult, corpus: Corpus, tmp_path: Path, capsys
) -> None:
    code = main(["--ckpt", str(trained.out), "--data", str(corpus.mixture), "--max-windows", "4"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["source", "windows", "tokens", "loss", "ppl", "bits/byte"]
    assert [line.split()[0] for line in lines[1:4]] == ["wiki", "books", "all"]
    written = json.loads((trained.out / "eval-step-00000004.json").read_text())
    assert written["sources"]["wiki"]["windows"] == 4

    # One shard directory is a one-source mixture: same numbers as that source in the mixture.
    shard_dir = corpus.root / "shards" / "books"
    assert main(["--ckpt", str(trained.out), "--data", str(shard_dir), "--max-windows", "4",
                 "--out", str(tmp_path / "books.json")]) == 0  # fmt: skip
    books = json.loads((tmp_path / "books.json").read_text())
    assert list(books["sources"]) == ["books"]
    assert books["sources"]["books"] == pytest.approx(written["sources"]["books"])


def test_bad_inputs_are_one_line_errors(trained: TrainResult, corpus: Corpus, tmp_path: Path, capsys) -> None:
    def fails(*args: object) -> str:
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    other = tmp_path / "other"
    shutil.copytree(corpus.root / "shards" / "wiki", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["tokenizer_sha256"] = "ab" * 32
    (other / "manifest.json").write_text(json.dumps(manifest))
    err = fails("--ckpt", trained.out, "--data", other)
    assert "encoded with tokenizer abababababab, but the checkpoint's tokenizer" in err

    assert "not a refinery checkpoint" in fails("--ckpt", tmp_path, "--data", corpus.mixture)
    assert "mixture file not found" in fails("--ckpt", trained.out, "--data", tmp_path / "none.json")
    assert "max_windows and batch_size must be positive" in fails(
        "--ckpt", trained.out, "--data", corpus.mixture, "--max-windows", "0")


def test_load_trained_finds_the_newest_checkpoint(trained: TrainResult) -> None:
    loaded = load_trained(trained.out)
    assert loaded.checkpoint == trained.checkpoint and loaded.step == 4
    assert loaded.tokenizer_path == trained.out / "tokenizer.model"
