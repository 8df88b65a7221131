"""export-hf / import-hf: transformers loads the export from disk and agrees; the round trip is exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from filters.config import load_yaml  # noqa: E402
from tests.trainer.conftest import Corpus, book_chunks, wiki_articles  # noqa: E402
from trainer.checkpoint import CheckpointError  # noqa: E402
from trainer.config import ModelConfig  # noqa: E402
from trainer.export_hf import export_hf, import_hf, import_main, main  # noqa: E402
from trainer.generate import generate  # noqa: E402
from trainer.hf_keys import hf_config_kwargs  # noqa: E402
from trainer.load import load_trained  # noqa: E402
from trainer.train import Trainer, pretrain  # noqa: E402
from trainer.train_config import TrainConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = REPO / "configs" / "model" / "tiny.yaml"
TINY_TRAIN = REPO / "configs" / "train" / "tiny.yaml"
TOL = 1e-4


def tiny_train(**overrides: object) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(load_yaml(TrainConfig, TINY_TRAIN), progress=False, **overrides)


@pytest.fixture(scope="module")
def run_dir(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Mistral-style model (window 32 < context 128) trained 3 steps, tokenizer beside it."""
    out = tmp_path_factory.mktemp("export") / "run"
    pretrain(TINY_MODEL, corpus.mixture, out, train_config=tiny_train(steps=3, eval_every=0))
    shutil.copyfile(corpus.tokenizer, out / "tokenizer.model")
    return out


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_hf(run_dir, tmp_path_factory.mktemp("hf") / "out")


def sample_tokens(n: int = 100) -> torch.Tensor:
    return torch.randint(0, 2000, (2, n), generator=torch.Generator().manual_seed(0))  # (B, T)


def test_transformers_loads_the_export_and_agrees(run_dir: Path, exported: Path) -> None:
    assert {p.name for p in exported.iterdir()} == {
        "config.json", "model.safetensors", "generation_config.json", "tokenizer.model", "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json",
    }  # fmt: skip
    hf = transformers.AutoModelForCausalLM.from_pretrained(exported, local_files_only=True).eval()
    assert type(hf).__name__ == "MistralForCausalLM" and hf.config.sliding_window == 32
    ours = load_trained(run_dir).model
    tokens = sample_tokens(100)  # longer than the window, so the window binds
    with torch.no_grad():
        assert (ours(tokens) - hf(tokens).logits).abs().max().item() < TOL


def test_transformers_tokenizer_encodes_like_sentencepiece(run_dir: Path, exported: Path) -> None:
    sp = load_trained(run_dir).tokenizer
    tok = transformers.AutoTokenizer.from_pretrained(exported, local_files_only=True)
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (sp.bos_id(), sp.eos_id(), sp.unk_id())
    texts = wiki_articles()[:40] + book_chunks()[:20] + [
        "  leading, trailing and  inner   spaces \n\t tab", "naïve café — 日本語 ✓ ﬁ ① 🦙", "",
    ]  # fmt: skip
    for text in texts:
        ids = sp.encode(text)
        assert tok.encode(text, add_special_tokens=False) == ids, text[:60]
        assert tok.decode(ids) == sp.decode(ids)
    # transformers 5's LlamaTokenizer class rebuilds its own pipeline without sentencepiece's NFKC and
    # whitespace normalization; it still loads the directory and agrees on text those leave alone.
    llama = transformers.LlamaTokenizer.from_pretrained(exported, local_files_only=True)
    plain = "The quick brown fox jumps over the lazy dog. It was 1905."
    assert llama.encode(plain, add_special_tokens=False) == sp.encode(plain)


def test_round_trip_ours_hf_ours_is_exact(run_dir: Path, exported: Path, tmp_path: Path) -> None:
    step = import_hf(exported, tmp_path / "back")
    before, after = load_trained(run_dir), load_trained(tmp_path / "back")
    assert after.config == before.config and step.name == "step-00000000"
    tokens = sample_tokens(60)
    with torch.no_grad():
        assert torch.equal(before.model(tokens), after.model(tokens))
    prompt = [sample_tokens(40)[0].tolist()]
    assert generate(after.model, prompt, max_new_tokens=8) == generate(before.model, prompt, max_new_tokens=8)


@pytest.mark.parametrize("tie", [False, True])
def test_hf_llama_imports_and_exports_back(run_dir: Path, tmp_path: Path, tie: bool) -> None:
    """A Llama (no window) made by transformers goes ours -> HF with the same logits."""
    cfg = ModelConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=2000, ffn_hidden=96,
                      max_seq_len=64, tie_embeddings=tie, init_std=0.1)  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf_config_kwargs(cfg))).eval()
    hf.save_pretrained(tmp_path / "hf")
    shutil.copyfile(run_dir / "tokenizer.model", tmp_path / "hf" / "tokenizer.model")
    import_hf(tmp_path / "hf", tmp_path / "ours")
    ours = load_trained(tmp_path / "ours")
    assert ours.config == cfg
    tokens = sample_tokens(50)
    with torch.no_grad():
        expected = hf(tokens).logits
        assert (ours.model(tokens) - expected).abs().max().item() < TOL
        export_hf(tmp_path / "ours", tmp_path / "again")
        again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "again", local_files_only=True)
        assert type(again).__name__ == "LlamaForCausalLM"
        assert (again.eval()(tokens).logits - expected).abs().max().item() < TOL


def test_imported_checkpoint_resumes_training(
    corpus: Corpus, exported: Path, run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cont"
    assert import_main(["--hf", str(exported), "--out", str(out), "--data", str(corpus.mixture),
                        "--train-config", str(TINY_TRAIN)]) == 0  # fmt: skip
    cfg = tiny_train(steps=2, eval_every=0)
    trainer = Trainer(out / "model.yaml", corpus.mixture, out, cfg, resume=True)
    try:
        assert trainer.step == 0
        imported = load_trained(run_dir).model.state_dict()
        assert all(torch.equal(p, imported[k]) for k, p in trainer.model.state_dict().items())
        result = trainer.train(2)
    finally:
        trainer.close()
    assert result.step == 2 and len(result.losses) == 2
    # A fresh model starts at ~ln(2000) = 7.60 (7.61 on this first batch, the golden curve); the imported
    # weights, trained 3 steps, start lower on the same batch (7.38 when recorded).
    assert result.losses[0] < 7.5


def test_resume_of_an_import_without_data_is_a_clear_error(
    corpus: Corpus, exported: Path, tmp_path: Path
) -> None:
    import_hf(exported, tmp_path / "run")
    with pytest.raises(CheckpointError, match="imported without --data; re-run import-hf with --data"):
        pretrain(tmp_path / "run" / "model.yaml", corpus.mixture, tmp_path / "run", steps=1,
                 train_config=tiny_train(), resume=True)  # fmt: skip


def test_bad_inputs_are_one_line_errors(run_dir: Path, exported: Path, tmp_path: Path, capsys) -> None:
    def fails(entry, *args: object) -> str:
        assert entry([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    gpt2_config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}
    (gpt2 / "config.json").write_text(json.dumps(gpt2_config))
    assert "a GPT2LMHeadModel checkpoint; import-hf reads LlamaForCausalLM" in fails(
        import_main, "--hf", gpt2, "--out", tmp_path / "x")

    biased = tmp_path / "biased"
    shutil.copytree(exported, biased)
    raw = json.loads((biased / "config.json").read_text())
    (biased / "config.json").write_text(json.dumps({**raw, "attention_bias": True}))
    err = fails(import_main, "--hf", biased, "--out", tmp_path / "y")
    assert "does not implement: attention_bias=True" in err

    wider = tmp_path / "wider"
    shutil.copytree(exported, wider)
    (wider / "config.json").write_text(json.dumps({**raw, "intermediate_size": 200}))
    assert "weights do not match config.json" in fails(import_main, "--hf", wider, "--out", tmp_path / "z")

    assert "directory is not empty" in fails(main, "--ckpt", run_dir, "--out", exported)
    assert "Hugging Face checkpoint" in fails(main, "--ckpt", exported, "--out", tmp_path / "w")
