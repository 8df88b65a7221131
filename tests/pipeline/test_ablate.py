"""``refinery ablate`` on real WARC files: three recipes x two seeds of the tiny model, a few steps each.

What is checked is the ablation's fairness and its report, never which recipe wins: every run
trained for the same tokens with the seed it claims, epochs are recorded and agree with the data
each recipe kept, every model is scored on the same reference windows, classifiers never see a
reference text, and the report holds the statistics and the noise verdicts it promises.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline.ablate import (
    DEFAULT_REFERENCE_ROOT,
    AblationError,
    build_reference,
    classifier_texts,
    load_recipe,
    main,
    split_position,
    text_digest,
)
from pipeline.ablate_report import compare, mean_std

REPO = Path(__file__).resolve().parents[2]
WARC = REPO.parent / "shared" / "data" / "warc"
# English pages (a wget crawl, a gov.uk crawl) and a real CommonCrawl excerpt of spam pages.
WARC_FILES = ["dolma_wget_sample-0000.warc.gz", "dolma_wget_sample-0001.warc.gz",
              "resiliparse_CC-MAIN-2020-34_sample.warc.gz", "ukwa_gov.uk_BL-20140325121225068.warc.gz"]
RECIPES = ["raw", "heuristics", "full"]
SEEDS = [0, 1]
TOKENS = 3000  # not a multiple of tokens_per_step (1024 in train/tiny.yaml): rounds up to 3 steps


@pytest.fixture(scope="module")
def ablation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ablate")
    argv = ["--recipes", *(str(REPO / "configs" / "ablations" / f"{r}.yaml") for r in RECIPES),
            "--input", *(str(WARC / f) for f in WARC_FILES), "--out", str(out),
            "--seeds", *map(str, SEEDS), "--tokens", str(TOKENS), "--model", str(REPO / "configs/model/tiny.yaml"),
            "--reference-chunks", "64", "--eval-windows", "8", "--vocab-size", "2000"]
    assert main(argv) == 0
    return out, json.loads((out / "ablation.json").read_text(encoding="utf-8"))


def test_every_run_trains_the_same_tokens_with_its_seed(ablation: tuple[Path, dict]) -> None:
    _, report = ablation
    assert report["recipes_order"] == RECIPES and report["seeds"] == SEEDS
    budget = report["token_budget"]
    assert budget == {"requested": TOKENS, "steps": 3, "tokens_per_step": 1024, "tokens": 3072}
    for name in RECIPES:
        runs = report["recipes"][name]["runs"]
        assert [r["seed"] for r in runs] == SEEDS
        for run in runs:
            assert run["steps"] == 3 and run["tokens_trained"] == 3072
            meta = json.loads((Path(run["checkpoint"]) / "meta.json").read_text(encoding="utf-8"))
            assert meta["train_config"]["seed"] == run["seed"]
            assert meta["step"] == 3
            assert math.isfinite(run["final_loss"])


def test_epochs_are_recorded_from_the_data_each_recipe_kept(ablation: tuple[Path, dict]) -> None:
    _, report = ablation
    seq_len = report["train_config"]["seq_len"]
    for name in RECIPES:
        recipe = report["recipes"][name]
        assert recipe["kept"] > 0 and recipe["tokens"] > 0 and recipe["train_windows"] > 0
        assert set(recipe["mixture_epochs"]) == {"commoncrawl"}
        for run in recipe["runs"]:
            assert run["epochs"] == pytest.approx(run["tokens_trained"] / (recipe["train_windows"] * seq_len))
    # Less kept text, more repetition at the same budget.
    by_windows = sorted(RECIPES, key=lambda n: report["recipes"][n]["train_windows"])
    epochs = [report["recipes"][n]["runs"][0]["epochs"] for n in by_windows]
    assert epochs == sorted(epochs, reverse=True)


def test_every_model_is_scored_on_the_same_reference(ablation: tuple[Path, dict]) -> None:
    out, report = ablation
    reference = report["reference"]
    assert reference["default_split"] is True and reference["documents"] == 64
    assert (out / "reference" / "texts.jsonl").read_text(encoding="utf-8").count("\n") == 64
    scored = [r["reference"] for n in RECIPES for r in report["recipes"][n]["runs"]]
    assert {s["data"] for s in scored} == {reference["shards"]}
    assert len({(s["windows"], s["tokens"], s["bytes"]) for s in scored}) == 1  # the same windows
    assert all(s["windows"] == 8 and math.isfinite(s["bits_per_byte"]) for s in scored)
    for name in RECIPES:  # the cross matrix: every model on every recipe's held-out split
        for run in report["recipes"][name]["runs"]:
            assert set(run["cross"]) == set(RECIPES)
        assert set(report["recipes"][name]["summary"]["cross_bits_per_byte"]) == set(RECIPES)


def test_report_has_statistics_noise_verdicts_and_a_plot(ablation: tuple[Path, dict]) -> None:
    out, report = ablation
    assert "2 * pooled std" in report["noise_rule"]
    for name in RECIPES:
        summary = report["recipes"][name]["summary"]["reference_bits_per_byte"]
        assert summary["n"] == len(SEEDS) and summary["mean"] > 0 and summary["std"] is not None
    pairs = {(c["a"], c["b"]) for c in report["comparisons"]}
    assert pairs == {("raw", "heuristics"), ("raw", "full"), ("heuristics", "full")}
    assert all(isinstance(c["within_noise"], bool) for c in report["comparisons"])
    page = (out / "ablation.html").read_text(encoding="utf-8")
    assert "<svg" in page and page.count("<rect") == len(RECIPES)
    assert "<script" not in page and "src=" not in page and "href=" not in page  # nothing fetched
    assert all(name in page for name in RECIPES)


def test_the_classifier_is_trained_by_ablate_without_reference_text(ablation: tuple[Path, dict]) -> None:
    out, report = ablation
    assert report["recipes"]["raw"]["classifier"] is None
    classifier = report["recipes"]["full"]["classifier"]
    assert classifier["negatives"] == "random" and Path(classifier["model_path"]).is_file()
    assert classifier["n_train_positive"] > 0 and classifier["n_train_negative"] > 0
    assert classifier["keep_fraction"] == 0.3 and 0.0 <= classifier["min_score_from_quantile"] <= 1.0
    assert "quality_classifier" in report["recipes"]["full"]["stages"]
    reference = {text_digest(json.loads(line)["text"])
                 for line in (out / "reference" / "texts.jsonl").read_text(encoding="utf-8").splitlines()}
    positives = classifier_texts([DEFAULT_REFERENCE_ROOT / "wikipedia"], reference, limit=10**6)
    assert positives and not reference & {text_digest(t) for t in positives}


def test_the_default_reference_split_is_deterministic() -> None:
    assert split_position("gutenberg/pg972.txt#3") == split_position("gutenberg/pg972.txt#3")
    first = build_reference(None, max_chunks=20)
    again = build_reference(None, max_chunks=20)
    assert first.texts == again.texts and len(first.texts) == 20
    assert sum(f["reference"] for f in first.description["files"].values()) == 20


def test_noise_rule() -> None:
    a, b = mean_std([1.0, 1.2]), mean_std([1.05, 1.25])  # std 0.141 each, delta 0.05
    assert compare(a, b)["within_noise"] is True
    assert compare(mean_std([1.0, 1.01]), mean_std([2.0, 2.01]))["within_noise"] is False
    assert compare(mean_std([1.0]), mean_std([2.0]))["within_noise"] is None  # one seed: unknown


def test_recipe_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: configs/commoncrawl.yaml\nablation: {seeds: 3}\n")
    with pytest.raises(AblationError, match=r"bad.yaml: unknown key 'ablation'"):
        load_recipe(bad)
    bad.write_text("overrides: {stages: [langid]}\nclassifier: {positives: [configs]}\n")
    with pytest.raises(AblationError, match="no quality_classifier"):
        load_recipe(bad)
    bad.write_text("overrides: {stages: [no_such_stage]}\n")
    with pytest.raises(AblationError, match="no_such_stage"):
        load_recipe(bad)
    assert main(["--recipes", str(bad), "--input", "x.warc.gz", "--out", str(tmp_path / "o")]) == 2
