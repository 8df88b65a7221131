"""Cached decoding against recomputation: rolling buffer, chunked pre-fill, left-padded batches, errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from tests.trainer.conftest import Corpus, wiki_articles
from trainer.config import ModelConfig
from trainer.generate import GenerateError, generate, main, next_tokens
from trainer.kv_cache import RollingKVCache
from trainer.model import Transformer
from trainer.train import pretrain
from trainer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
VOCAB = 61
WINDOW = 6


def model_for(window: int | None, max_seq_len: int = 64, seed: int = 0) -> Transformer:
    # A large init makes attention peaked, so a wrong mask or position changes the argmax quickly.
    cfg = ModelConfig(
        dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=VOCAB, ffn_hidden=48,
        max_seq_len=max_seq_len, sliding_window=window, init_std=0.3,
    )  # fmt: skip
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


def prompts_of(*lengths: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(7)
    return [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in lengths]


@torch.no_grad()
def greedy_without_cache(model: Transformer, prompt: list[int], n: int) -> list[int]:
    """The reference: the whole sequence through the ordinary forward at every step."""
    seq = list(prompt)
    for _ in range(n):
        seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(prompt) :]


@pytest.mark.parametrize("window", [None, WINDOW])
def test_cached_greedy_equals_full_recomputation(window: int | None) -> None:
    model = model_for(window)
    (prompt,) = prompts_of(3 * WINDOW + 2)  # longer than W: pre-filled in 4 chunks when windowed
    new = 4 * WINDOW + 1  # longer than W: the buffer wraps several times
    caches: list[RollingKVCache] = []
    out = generate(model, [prompt], max_new_tokens=new, cache_out=caches)
    assert out == [greedy_without_cache(model, prompt, new)]
    assert caches[0].capacity == (WINDOW if window else len(prompt) + new)


def test_rolling_buffer_memory_stays_flat_past_the_window() -> None:
    model = model_for(WINDOW)
    (prompt,) = prompts_of(2 * WINDOW)
    cache = RollingKVCache(model.cfg, pad=[0], total_len=10_000)
    shape, pointer, size = cache.k.shape, cache.k.data_ptr(), cache.nbytes
    assert shape[3] == WINDOW  # W slots, not 10,000
    with torch.no_grad():
        logits = model(torch.tensor([prompt[:WINDOW]]), cache=cache, last_only=True)
        logits = model(torch.tensor([prompt[WINDOW:]]), cache=cache, last_only=True)
        seen = []
        for _ in range(5 * WINDOW):
            token = logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
            logits = model(token, cache=cache, last_only=True)
            seen.append((cache.k.shape, cache.v.shape, cache.k.data_ptr(), cache.nbytes))
    assert cache.next_col == 7 * WINDOW
    assert set(seen) == {(shape, shape, pointer, size)}
    # Every slot now holds one of the last W columns, slot = column mod W.
    assert sorted(cache.slot_col.tolist()) == list(range(6 * WINDOW, 7 * WINDOW))
    assert all(c % WINDOW == s for s, c in enumerate(cache.slot_col.tolist()))


def test_window_model_decodes_past_max_seq_len() -> None:
    """A prompt longer than the context is fine with a window: rotary phases are computed past the table."""
    short = model_for(WINDOW, max_seq_len=16)
    long = model_for(WINDOW, max_seq_len=128)  # same weights (same seed), bigger rotary tables
    long.load_state_dict(short.state_dict())
    (prompt,) = prompts_of(20)
    out = generate(short, [prompt], max_new_tokens=25)
    assert out == [greedy_without_cache(long, prompt, 25)]


@pytest.mark.parametrize("window", [None, WINDOW])
def test_batch_of_different_lengths_equals_one_by_one(window: int | None) -> None:
    model = model_for(window)
    prompts = prompts_of(15, 3, 9, 1)
    batched = generate(model, prompts, max_new_tokens=2 * WINDOW + 3)
    alone = [generate(model, [p], max_new_tokens=2 * WINDOW + 3)[0] for p in prompts]
    assert batched == alone
    assert len({tuple(row) for row in batched}) == 4  # the rows really differ


def test_sampling_is_seeded_and_top_p_towards_zero_is_greedy() -> None:
    model = model_for(WINDOW)
    prompts = prompts_of(5, 8)
    kw = dict(max_new_tokens=15, temperature=1.0, top_p=0.9)
    first = generate(model, prompts, seed=1, **kw)
    assert generate(model, prompts, seed=1, **kw) == first
    assert generate(model, prompts, seed=2, **kw) != first
    greedy = generate(model, prompts, max_new_tokens=15)
    assert generate(model, prompts, max_new_tokens=15, temperature=1.0, top_p=1e-6, seed=3) == greedy


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    drawn = {int(next_tokens(logits, 1.0, 0.7, g)) for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 < 0.7 needs the second token; the third is never reached


def test_generation_stops_at_eos() -> None:
    model = model_for(WINDOW)
    prompts = prompts_of(5, 9)
    full = generate(model, prompts, max_new_tokens=20)
    eos = full[0][4]
    cut = generate(model, prompts, max_new_tokens=20, eos_id=eos)
    assert cut[0] == full[0][: full[0].index(eos)]
    assert cut[1] == (full[1][: full[1].index(eos)] if eos in full[1] else full[1])


def test_prompt_longer_than_context_without_window_fails_before_compute() -> None:
    model = model_for(None, max_seq_len=16)
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(GenerateError, match="17 tokens, longer than the model's context of 16"):
        generate(model, prompts_of(3, 17), max_new_tokens=2)
    with pytest.raises(GenerateError, match=r"\+ max_new_tokens \(10\) exceeds"):
        generate(model, prompts_of(10), max_new_tokens=10)
    with pytest.raises(GenerateError, match="outside"):
        generate(model, [[VOCAB]], max_new_tokens=1)
    assert calls == []


# -- the command line on a trained checkpoint ------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "run"
    cfg = TrainConfig(steps=3, seq_len=64, micro_batch_size=4, tokens_per_step=256, device="cpu",
                      heldout_every=20, eval_every=0, progress=False)  # fmt: skip
    pretrain(TINY_MODEL, corpus.mixture, out, train_config=cfg)
    return out


def test_cli_generates_for_several_prompts(run_dir: Path, corpus: Corpus, capsys) -> None:
    args = ["--ckpt", str(run_dir), "--tokenizer", str(corpus.tokenizer), "--max-new-tokens", "40"]
    code = main([*args, "--prompt", "The history of", "--prompt", "It was a dark night and", "--seed", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "=== 0\nThe history of" in out and "=== 1\nIt was a dark night and" in out
    assert main([*args, "--prompt", "The history of", "--seed", "3"]) == 0
    single = capsys.readouterr().out
    assert single.startswith("The history of") and len(single) > len("The history of") + 10


def test_cli_errors_are_one_line(run_dir: Path, corpus: Corpus, tmp_path: Path, capsys) -> None:
    def run(*args: str) -> str:
        assert main(list(args)) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    # The trainer keeps the mixture's tokenizer in the run, so a run needs no --tokenizer ...
    assert main(["--ckpt", str(run_dir), "--prompt", "x", "--max-new-tokens", "2"]) == 0
    capsys.readouterr()
    # ... and a run without one says how to give it.
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    (bare / "tokenizer.model").unlink()
    err = run("--ckpt", str(bare), "--prompt", "x")
    assert "no tokenizer found" in err and "--tokenizer" in err

    small = tmp_path / "small.model"
    lines = [line for text in wiki_articles()[:30] for line in text.splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp_path / "small"),
                                   vocab_size=300, minloglevel=2)  # fmt: skip
    err = run("--ckpt", str(run_dir), "--tokenizer", str(small), "--prompt", "x")
    assert "tokenizer has 300 ids but the model's vocab_size is 2000" in err

    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    step = sorted((other / "checkpoints").iterdir())[-1]
    meta = json.loads((step / "meta.json").read_text())
    meta["model_config"]["n_experts"] = 8
    (step / "meta.json").write_text(json.dumps(meta))
    err = run("--ckpt", str(other), "--tokenizer", str(corpus.tokenizer), "--prompt", "x")
    assert "another architecture" in err and "n_experts" in err

    meta["model_config"].pop("n_experts")
    meta["model_config"]["dim"] = 128  # the tensors on disk are 64 wide
    meta["model_config"]["n_heads"] = 8
    (step / "meta.json").write_text(json.dumps(meta))
    err = run("--ckpt", str(other), "--tokenizer", str(corpus.tokenizer), "--prompt", "x")
    assert "weights do not fit its model_config" in err

    hf_like = tmp_path / "hf"
    hf_like.mkdir()
    (hf_like / "config.json").write_text('{"model_type": "gpt2"}')
    assert "refinery import-hf" in run("--ckpt", str(hf_like), "--prompt", "x")


def test_cli_prompt_longer_than_context_without_window(
    run_dir: Path, corpus: Corpus, tmp_path: Path, capsys
) -> None:
    nowin = tmp_path / "nowin"
    shutil.copytree(run_dir, nowin)
    step = sorted((nowin / "checkpoints").iterdir())[-1]
    meta = json.loads((step / "meta.json").read_text())
    cfg = ModelConfig(**meta["model_config"])
    meta["model_config"] = dataclasses.asdict(dataclasses.replace(cfg, sliding_window=None))
    (step / "meta.json").write_text(json.dumps(meta))
    long_prompt = " ".join(["history"] * 200)
    code = main(["--ckpt", str(nowin), "--tokenizer", str(corpus.tokenizer), "--prompt", long_prompt])
    err = capsys.readouterr().err
    assert code == 2 and "longer than the model's context of 128" in err
