"""refinery eval-mc: the evaluator's choice log-likelihoods equal a direct forward pass over the same
tokens, few-shot examples are prompt-only, and bad task files fail in one line naming file:line."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
import torch.nn.functional as F

from filters.config import load_yaml
from pipeline.cli import main as refinery
from tests.trainer.conftest import WIKITEXT
from trainer.checkpoint import save_checkpoint
from trainer.config import ModelConfig
from trainer.model import Transformer
from trainer.multiple_choice import (
    Item,
    MCError,
    choice_tokens,
    main,
    read_tasks,
    score_items,
    split_shots,
)

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "mc_tiny.jsonl"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600-piece BPE on the first part of WikiText-2: real English pieces in well under a second."""
    lines = [s for s in WIKITEXT.read_text(encoding="utf-8").splitlines()[:3000] if s.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=600, model_type="bpe",
        byte_fallback=True, unk_id=0, eos_id=1, bos_id=2, pad_id=-1, num_threads=1, minloglevel=2,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("mc") / "tokenizer.model"
    path.write_bytes(model.getvalue())
    return path


@pytest.fixture(scope="module")
def sp(tokenizer: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tokenizer))


@pytest.fixture(scope="module")
def model(sp: spm.SentencePieceProcessor) -> Transformer:
    """The tiny test decoder, randomly initialized with a fixed seed but with a larger init so the
    choices' log-likelihoods differ by more than rounding (an exact comparison needs no training)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_yaml(ModelConfig, TINY_MODEL), vocab_size=sp.vocab_size(), init_std=0.2)
    return Transformer(cfg).eval()


def direct_loglikelihood(model: Transformer, ids: list[int], n: int) -> float:
    """One sequence alone, no batching or padding: sum of log p(ids[t] | ids[:t]) over the last n ids."""
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0].double()  # (T, V)
    logprobs = F.log_softmax(logits, dim=-1)
    return sum(float(logprobs[t - 1, ids[t]]) for t in range(len(ids) - n, len(ids)))


def test_fixture_reads_in_file_order() -> None:
    items = read_tasks(FIXTURE)
    assert [i.id for i in items] == ["capital-fr", "sky", "cat", "water", "week", "sun"]
    assert items[2].choices[items[2].answer] == "kitten" and items[2].line == 3


def test_shots_are_the_first_items_written_with_their_answer_and_never_scored() -> None:
    items = read_tasks(FIXTURE)
    prefix, scored = split_shots(items, 2, FIXTURE)
    assert prefix == "The capital of France is Paris\n\nOn a clear day the sky is blue\n\n"
    assert [i.id for i in scored] == ["cat", "water", "week", "sun"]
    assert split_shots(items, 0, FIXTURE) == ("", items)
    with pytest.raises(MCError, match="none to score"):
        split_shots(items, 6, FIXTURE)


def test_choice_tokens_are_the_whole_text_encoded(sp: spm.SentencePieceProcessor) -> None:
    ids, n = choice_tokens(sp, "The day after Monday is", "Tuesday", max_len=128)
    assert ids == sp.encode("The day after Monday is Tuesday") and ids[-n:] == sp.encode("Tuesday")
    cut, n_cut = choice_tokens(sp, "The day after Monday is", "Tuesday", max_len=n + 2)
    assert n_cut == n and cut == ids[-(n + 2) :]  # the prompt loses its oldest tokens


@pytest.mark.parametrize("shots,max_len", [(0, 128), (3, 128), (3, 12)])
def test_loglikelihoods_match_a_direct_forward_pass(
    model: Transformer, sp: spm.SentencePieceProcessor, shots: int, max_len: int
) -> None:
    prefix, items = split_shots(read_tasks(FIXTURE), shots, FIXTURE)
    report = score_items(model, sp, items, prefix, max_len, source=FIXTURE)
    hits = hits_norm = 0
    for item, row in zip(items, report["per_item"], strict=True):
        expected = []
        for choice in item.choices:
            full = sp.encode(f"{prefix}{item.context} {choice}")  # encoded whole, independently
            n = len(sp.encode(choice))
            expected.append(direct_loglikelihood(model, full[-max_len:], n))
        assert row["loglikelihoods"] == pytest.approx(expected, abs=1e-5)
        assert len({round(x, 3) for x in expected}) == len(expected)  # the choices really differ
        sizes = [len(c.encode("utf-8")) for c in item.choices]
        assert row["choice_bytes"] == sizes
        best = max(range(len(expected)), key=expected.__getitem__)
        best_norm = max(range(len(expected)), key=lambda i: expected[i] / sizes[i])
        assert (row["pred"], row["pred_norm"]) == (best, best_norm)
        hits += best == item.answer
        hits_norm += best_norm == item.answer
    assert report["items"] == len(items)
    assert report["acc"] == hits / len(items) and report["acc_norm"] == hits_norm / len(items)


def test_a_model_that_prefers_one_token_picks_the_choice_made_of_it(sp: spm.SentencePieceProcessor) -> None:
    """Layers silenced and every embedding the same: the model predicts one token whatever it reads,
    so the choice that is that token wins under acc, and the long choice of it under acc_norm loses."""
    cfg = dataclasses.replace(load_yaml(ModelConfig, TINY_MODEL), vocab_size=sp.vocab_size())
    rigged = Transformer(cfg).eval()
    (favourite,) = sp.encode("the")
    with torch.no_grad():
        for block in rigged.layers:
            block.attention.wo.weight.zero_()  # residual stream = the input embedding
            block.feed_forward.w2.weight.zero_()
        rigged.tok_embeddings.weight.fill_(1.0)  # normed state = ones for every input
        rigged.output.weight.zero_()
        rigged.output.weight[favourite] = 1.0  # logit dim (64) for "the", 0 for the rest
    items = [Item("Say it:", ("dog", "the", "house"), 1, "a", 1), Item("Again:", ("the", "cat"), 0, "b", 2)]
    report = score_items(rigged, sp, items, "", 64)
    assert report["acc"] == 1.0 and report["acc_norm"] == 1.0
    for row in report["per_item"]:
        assert row["loglikelihoods"][row["answer"]] == pytest.approx(0.0, abs=1e-20)
        assert all(ll < -60 for i, ll in enumerate(row["loglikelihoods"]) if i != row["answer"])


def save_random_checkpoint(model: Transformer, run: Path) -> None:
    """A pretrain-shaped run directory holding ``model``, written by the trainer's own saver."""
    cfg = model.cfg
    save_checkpoint(run / "checkpoints", 1, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    train_state={}, rank_state={}, meta={"model_config": dataclasses.asdict(cfg)})  # fmt: skip


def test_cli_scores_a_checkpoint(
    model: Transformer, sp: spm.SentencePieceProcessor, tokenizer: Path, tmp_path: Path, capsys
) -> None:
    save_random_checkpoint(model, tmp_path / "run")
    out = tmp_path / "mc.json"
    argv = ["eval-mc", "--ckpt", str(tmp_path / "run"), "--tokenizer", str(tokenizer),
            "--tasks", str(FIXTURE), "--shots", "2", "--out", str(out)]  # fmt: skip
    assert refinery(argv) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["task", "items", "acc", "acc_norm"]
    report = json.loads(out.read_text())
    assert report["step"] == 1 and report["shots"] == 2
    task = report["tasks"][str(FIXTURE)]
    prefix, items = split_shots(read_tasks(FIXTURE), 2, FIXTURE)
    direct = score_items(model, sp, items, prefix, report["max_tokens"])
    assert task["items"] == 4
    for got, want in zip(task["per_item"], direct["per_item"], strict=True):
        assert got["loglikelihoods"] == pytest.approx(want["loglikelihoods"], abs=1e-5)


@pytest.mark.parametrize(
    "lines,bad_line,message",
    [
        (
            ['{"context": "a", "choices": ["b"], "answer": 0}', '{"context": "a", "choices": ['],
            2,
            "not valid JSON",
        ),
        (['{"context": "a", "choices": ["b", "c"], "answer": 2}'], 1, "'answer' must be an integer index"),
        (["", '{"context": "a", "choices": [], "answer": 0}'], 2, "'choices' must be a non-empty list"),
        (
            ['{"context": "a", "choices": ["b", ""], "answer": 0}'],
            1,
            "every choice must be a non-empty string",
        ),
        (['["a", "b"]'], 1, "expected a JSON object"),
        (['{"context": "a", "choices": ["b"], "answer": true}'], 1, "'answer' must be an integer index"),
    ],
)
def test_bad_task_file_is_one_line_naming_file_and_line(
    tmp_path: Path, capsys, lines: list[str], bad_line: int, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MCError, match=f"^{path}:{bad_line}: {message}"):
        read_tasks(path)
    # Through the refinery command: checked before any checkpoint is opened, so none is needed.
    code = refinery(["eval-mc", "--ckpt", str(tmp_path / "none"), "--tasks", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"refinery eval-mc: error: {path}:{bad_line}: ")


def test_too_many_shots_and_a_missing_file_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["--ckpt", str(tmp_path), "--tasks", str(FIXTURE), "--shots", "6"]) == 2
    assert "none to score" in capsys.readouterr().err
    assert main(["--ckpt", str(tmp_path), "--tasks", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: cannot read task file" in capsys.readouterr().err
