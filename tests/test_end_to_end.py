"""From the shared real crawls and every other LLaMA source to a trained model, through the CLI.

The crawl is the real one in ../shared/data/warc (curated with the default web config); the other
sources are the demo's samples in their real formats. Everything goes through the same commands a
user runs: run, train-tokenizer, run (tokenize), mix with the LLaMA-1 recipe, verify, pretrain.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.demo_sources import write_source_samples
from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mixture(full_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    curated = {"commoncrawl": full_run}
    for name, sample in sorted(write_source_samples(root / "inputs").items()):
        curated[name] = root / f"{name}-curated"
        assert main(["run", "--config", str(sample.config), "--input", *sample.inputs,
                     "--output", str(curated[name])]) == 0
    tokenizer = root / "tokenizer"
    assert main(["train-tokenizer", "--input", *[str(d / "documents") for d in curated.values()],
                 "--output", str(tokenizer), "--vocab-size", "1200"]) == 0
    sources = []
    for name, run_dir in curated.items():
        source = json.loads((run_dir / "stats.json").read_text())["run"]["source"]
        assert main(["run", "--input", str(run_dir / "documents"), "--output", str(root / name),
                     "--set", "input.format=documents", "--set", "stages=[]", "--set", f"source={source}",
                     "--set", f"tokenize.tokenizer={tokenizer}.model"]) == 0
        sources += ["--source", f"{source}={root / name}"]
    assert main(["mix", "--config", str(REPO / "configs" / "mixture" / "llama1.yaml"), *sources,
                 "--output", str(root / "mixture"), "--token-budget", "200000"]) == 0
    return root / "mixture" / "mixture.json"


def test_every_source_has_verified_shards_in_the_llama_mixture(mixture: Path) -> None:
    data = json.loads(mixture.read_text())
    names = {s["name"] for s in data["sources"]}
    assert names == {"commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"}
    weights = {s["name"]: s["weight"] for s in data["sources"]}
    assert weights["commoncrawl"] == pytest.approx(0.67) and weights["stackexchange"] == pytest.approx(0.02)
    assert all(s["tokens"] > 0 and s["epochs"] > 0 for s in data["sources"])
    assert main(["verify", str(mixture.parent.parent)]) == 0


def test_tiny_model_learns_from_the_pipeline_shards(mixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "pretrain"
    assert main(["pretrain", "--model", str(REPO / "configs" / "model" / "tiny.yaml"), "--data", str(mixture),
                 "--out", str(out), "--steps", "40",
                 "--train-config", str(REPO / "configs" / "train" / "tiny.yaml")]) == 0
    with (out / "metrics.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0


def test_realized_proportions_match_the_recipe(mixture: Path) -> None:
    """The trainer's loader, sampling the pipeline's shards through mixture.json, follows the weights."""
    from collections import Counter

    from trainer.data import MixtureLoader
    from trainer.mixture import load_mixture

    loaded = load_mixture(mixture)
    loader = MixtureLoader(loaded, seq_len=16, batch_size=500, seed=3, heldout_every=None)
    counts: Counter[int] = Counter()
    for _ in range(20):  # 10,000 windows
        counts.update(loader.next_batch().sources.tolist())
    total = sum(counts.values())
    assert total == 10_000
    for index, source in enumerate(loaded.sources):
        assert abs(counts[index] / total - source.weight) < 0.02, source.name
