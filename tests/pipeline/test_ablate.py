"""``refinery ablate`` on real WARC files with the tiny model: what makes the instrument fair.

Never which recipe wins. Checked: the tokenizer does not depend on the arms listed; every token of
the reference is scored; ``keep_fraction`` is a share of what reaches the classifier; a reference
that an arm or a classifier learned from is refused; a grown or interrupted study reuses what is
done; the report holds both noise estimates and a readable plot. One study (two arms, one seed)
is grown by an arm and a seed; a second study in a fresh directory checks the tokenizer. The study
scores its proxies on eval-mc's tiny fixture task (``--mc-tasks``), cached like every other score.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pipeline.ablate import main
from pipeline.ablate_cache import DONE, input_files
from pipeline.ablate_reference import write_jsonl

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
WARC = [str(SHARED / "warc" / f) for f in
        ("dolma_wget_sample-0000.warc.gz", "dolma_wget_sample-0001.warc.gz", "resiliparse_CC-MAIN-2020-34_sample.warc.gz")]
ARTICLES = SHARED / "html_extraction" / "scrapinghub_article_extraction_benchmark" / "ground-truth.json"
TOKENS = 3000  # 3 steps of train/tiny.yaml's 1024 tokens
MC_TASK = REPO / "tests" / "fixtures" / "mc_tiny.jsonl"  # eval-mc's fixture: 6 items of 2 to 4 choices
# The example recipes train on the demo's curated Wikipedia and books (demo-output/); here, on the shared ones.
SHARED_POSITIVES = {"demo-output/runs/wikipedia-curated/documents": SHARED / "quality" / "positive" / "wikipedia",
                    "demo-output/runs/gutenberg-curated/documents": SHARED / "quality" / "positive" / "gutenberg"}
_recipes: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def recipes_on_shared_positives(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Copies of configs/ablations/*.yaml whose classifier positives are the shared Wikipedia and books."""
    folder = tmp_path_factory.mktemp("recipes")
    for path in (REPO / "configs" / "ablations").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for demo, shared in SHARED_POSITIVES.items():
            text = text.replace(demo, str(shared))
        (folder / path.name).write_text(text, encoding="utf-8")
        _recipes[path.stem] = folder / path.name


def recipe(name: str) -> str:
    return str(_recipes[name])


def argv(out: Path, heldout: Path, recipes: list[str], seeds: list[int], mc: Sequence[Path] = ()) -> list[str]:
    return [*(["--mc-tasks", *map(str, mc)] if mc else []), "--recipes", *map(recipe, recipes), "--input", *WARC, "--out", str(out), "--heldout", str(heldout),
            "--seeds", *map(str, seeds), "--tokens", str(TOKENS), "--model", str(REPO / "configs/model/tiny.yaml"),
            "--train-config", str(REPO / "configs/train/tiny.yaml"), "--cross-windows", "4", "--vocab-size", "2000",
            "--character-coverage", "0.99"]


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """News articles (the Scrapinghub extraction benchmark's gold text): in no WARC here, in no positive set."""
    bodies = [v["articleBody"] for v in json.loads(ARTICLES.read_text(encoding="utf-8")).values()]
    return write_jsonl(tmp_path_factory.mktemp("heldout") / "articles.jsonl", bodies[:24], "articles")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, heldout: Path) -> dict:
    """raw + full with seed 0; then interrupted (raw's run loses its done.json) and grown by an arm and a seed."""
    out = tmp_path_factory.mktemp("study")
    assert main(argv(out, heldout, ["raw", "full"], [0], [MC_TASK])) == 0
    first = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    checkpoints = {n: Path(first["recipes"][n]["runs"][0]["checkpoint"]) for n in ("raw", "full")}
    stamps = {n: (c / "meta.json").stat().st_mtime_ns for n, c in checkpoints.items()}
    mc_done = Path(first["recipes"]["full"]["runs"][0]["mc"][str(MC_TASK)]["report"]).parent / DONE
    stamps["full-mc"] = mc_done.stat().st_mtime_ns
    (checkpoints["raw"].parents[2] / DONE).unlink()  # raw seed 0 was interrupted before it finished
    assert main(argv(out, heldout, ["raw", "heuristics", "full"], [0, 1], [MC_TASK])) == 0
    grown = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    return {"out": out, "first": first, "grown": grown, "stamps": stamps, "checkpoints": checkpoints,
            "mc_done": mc_done}


def test_the_tokenizer_does_not_depend_on_the_arms(study: dict, heldout: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    tokenizer = study["first"]["tokenizer"]
    assert study["grown"]["tokenizer"] == tokenizer  # adding an arm
    assert main(argv(tmp_path, heldout, ["heuristics"], [0])) == 0  # another study, another arm, from nothing
    alone = json.loads((tmp_path / "ablation.json").read_text(encoding="utf-8"))["tokenizer"]
    assert alone["vocab_sha256"] == tokenizer["vocab_sha256"] and alone["model"] != tokenizer["model"]
    assert "per parameter rule" in capsys.readouterr().err  # 3,000 tokens is far under 20 per parameter


def test_the_whole_reference_is_scored_per_document(study: dict) -> None:
    report = study["grown"]
    reference = report["reference"]
    for name in report["recipes_order"]:
        for run in report["recipes"][name]["runs"]:
            scored = run["reference"]
            assert scored["tokens_scored"] == reference["tokens"] - 1  # every token but the first is a target
            assert scored["documents"] == reference["documents"] == 24
            per_doc = np.load(scored["per_document"])
            assert per_doc["bytes"].sum() == scored["bytes"] and (per_doc["bytes"] > 0).all()
            assert per_doc["nats"].sum() / (math.log(2) * scored["bytes"]) == pytest.approx(scored["bits_per_byte"])
        low, high = report["recipes"][name]["summary"]["reference_ci"]
        assert low < report["recipes"][name]["summary"]["reference_bits_per_byte"]["mean"] < high


def test_a_smaller_stride_scores_the_same_tokens_with_more_context(study: dict) -> None:
    from pipeline.ablate_score import score_reference, window_starts

    for n, seq_len, stride in [(1000, 64, 64), (1000, 64, 16), (50, 64, 8), (65, 64, 7)]:
        targets = [p for start, first in window_starts(n, seq_len, stride)
                   for p in range(start + 1 + first, start + 1 + min(seq_len, n - 1))]
        assert targets == list(range(1, n))  # each target once, in order
    report = study["grown"]
    shards = Path(report["reference"]["shards"])
    whole = score_reference(study["checkpoints"]["full"], shards)
    sliding = score_reference(study["checkpoints"]["full"], shards, stride=16)
    assert whole.tokens_scored == sliding.tokens_scored == report["reference"]["tokens"] - 1
    assert sliding.windows > whole.windows and (sliding.bytes == whole.bytes).all()


def test_keep_fraction_is_a_share_of_what_reaches_the_classifier(study: dict) -> None:
    full = study["grown"]["recipes"]["full"]
    classifier = full["classifier"]
    stage = next(s for s in full["funnel"] if s["stage"] in ("QualityClassifier", "quality_classifier"))
    assert classifier["keep_fraction"] == 0.3
    assert classifier["reaching_classifier"] == stage["in"] > 0
    assert stage["out"] / stage["in"] == pytest.approx(0.3, abs=0.05) == classifier["kept_by_stage"]


def test_a_grown_or_interrupted_study_runs_only_what_is_new(study: dict) -> None:
    report = study["grown"]
    assert report["recipes"]["raw"]["reused"] and report["recipes"]["full"]["reused"]
    assert not report["recipes"]["heuristics"]["reused"]
    reused = {(n, r["seed"]): r["reused"] for n in report["recipes_order"] for r in report["recipes"][n]["runs"]}
    assert reused == {("raw", 0): False, ("raw", 1): False, ("heuristics", 0): False, ("heuristics", 1): False,
                      ("full", 0): True, ("full", 1): False}  # raw 0 had no done.json: redone
    assert (study["checkpoints"]["full"] / "meta.json").stat().st_mtime_ns == study["stamps"]["full"]
    assert (study["checkpoints"]["raw"] / "meta.json").stat().st_mtime_ns != study["stamps"]["raw"]
    assert len(list((study["out"] / "arms").iterdir())) == 3


def test_a_reference_an_arm_kept_is_refused(study: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.ablate_reference import iter_chunks

    crawl = next((study["out"] / "crawl").iterdir()) / "run" / "documents"
    kept = [t for _, t in iter_chunks(crawl)][:5]
    leaked = write_jsonl(tmp_path / "leaked.jsonl", kept, "leak")
    assert main(argv(study["out"], leaked, ["raw"], [0])) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # warnings come first
    assert len(errors) == 1 and re.search(r"^refinery ablate: error: reference leak: .* of arm 'raw'", errors[0])
    assert study["grown"]["recipes"]["raw"]["reference_overlap"]["fraction"] < 0.01  # the real one is clean


def test_a_reference_in_the_classifier_positives_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = SHARED / "quality" / "positive" / "gutenberg" / "pg972_The-Devils-Dictionary.txt"
    assert main(argv(tmp_path, book, ["full"], [0])) == 2
    err = capsys.readouterr().err
    assert "reference leak" in err and "classifier positives of 'full'" in err
    assert not (tmp_path / "arms").exists()  # refused before any curation


def test_the_report_states_its_budget_noise_and_overlaps(study: dict) -> None:
    report = study["grown"]
    budget = report["token_budget"]
    assert budget["rule"] == 20 * report["model_params"] and budget["tokens"] == 3072
    assert report["input_files"] == 3
    assert {(c["a"], c["b"]) for c in report["comparisons"]} == {("raw", "heuristics"), ("raw", "full"),
                                                                ("heuristics", "full")}
    for c in report["comparisons"]:
        assert c["ci"][0] <= c["ci"][1] and isinstance(c["within_noise"], bool) and c["a"] in c["sentence"]
    page = (study["out"] / "ablation.html").read_text(encoding="utf-8")
    assert report["tokenizer"]["vocab_sha256"] in page and f"{report['reference']['tokens'] - 1:,} tokens" in page
    assert "3 file(s)" in page and "<script" not in page and "href=" not in page
    means = [report["recipes"][n]["summary"]["reference_bits_per_byte"]["mean"] for n in report["recipes_order"]]
    ticks = [float(t) for t in re.findall(r'text-anchor="end" font-size="10">([0-9.]+)<', page)]
    assert min(means) - min(ticks) < max(means) - min(means) + 0.5 * min(means)  # not from 0: zoomed to the data
    assert min(ticks) > 0.5 * min(means)


def test_a_directory_of_parquet_parts_counts_its_files(study: dict) -> None:
    documents = next((study["out"] / "crawl").iterdir()) / "run" / "documents"
    parts = sorted(documents.glob("*.parquet"))
    assert parts and input_files([str(documents)]) == parts


def test_example_recipes_name_nothing_outside_the_repository() -> None:
    import yaml

    recipes = sorted((REPO / "configs" / "ablations").rglob("*.yaml"))
    assert len(recipes) >= 5
    for path in recipes:
        text = path.read_text(encoding="utf-8")
        assert "shared" not in text and "../" not in text, path
        raw = yaml.safe_load(text)
        named = [raw.get("pipeline"), raw.get("mixture"), *((raw.get("classifier") or {}).get("positives") or [])]
        for value in filter(None, named):
            assert not Path(value).is_absolute() and (REPO / value).resolve().is_relative_to(REPO), (path, value)
            assert value.startswith(("configs/", "demo-output/")), (path, value)  # shipped, or made by `make demo`


def test_noise_rule_uses_seeds_and_the_reference() -> None:
    from pipeline.ablate_report import compare, mean_std

    far = mean_std([1.0, 1.01]), mean_std([2.0, 2.01])
    assert compare(*far, ci=(-1.02, -0.98))["within_noise"] is False
    assert compare(*far, ci=(-1.5, 0.1))["within_noise"] is True  # the reference cannot tell them apart
    assert compare(mean_std([1.0, 1.2]), mean_std([1.05, 1.25]), ci=(-0.06, -0.04))["within_noise"] is True
    assert compare(mean_std([1.0]), mean_std([2.0]), ci=(-1.1, -0.9))["within_noise"] is None


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, heldout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: configs/commoncrawl.yaml\nablation: {seeds: 3}\n")
    assert main(["--recipes", str(bad), "--input", *WARC, "--out", str(tmp_path / "o"), "--heldout", str(heldout)]) == 2
    assert "bad.yaml: unknown key 'ablation'" in capsys.readouterr().err
    assert main(["--recipes", recipe("raw"), "--input", *WARC, "--out", str(tmp_path / "o")]) == 2  # no --heldout
    capsys.readouterr()
    assert main(["--recipes", recipe("raw"), "--input", str(tmp_path / "none.warc.gz"), "--out", str(tmp_path / "o"),
                 "--heldout", str(heldout)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no file matches" in err


# -- downstream multiple-choice tasks (--mc-tasks) --------------------------------------------------


def test_mc_scores_are_in_the_report_per_recipe_and_seed(study: dict) -> None:
    from trainer.multiple_choice import evaluate_mc

    report, task = study["grown"], str(MC_TASK)
    info = report["mc"]["tasks"][task]
    assert report["mc"]["shots"] == 0 and info["items"] == 6
    assert info["chance"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 4 + 1 / 2 + 1 / 3 + 1 / 2) / 6)
    for name in report["recipes_order"]:
        recipe = report["recipes"][name]
        assert [r["seed"] for r in recipe["runs"]] == [0, 1]
        accs = [r["mc"][task]["acc"] for r in recipe["runs"]]
        assert all(r["mc"][task]["items"] == 6 and (6 * r["mc"][task]["acc_norm"]).is_integer()
                   for r in recipe["runs"])
        summary = recipe["summary"]["mc"][task]
        assert summary["acc"]["mean"] == pytest.approx(sum(accs) / 2) and summary["chance"] == info["chance"]
        assert set(summary["versus_chance"].values()) <= {"at chance", "above chance", "below chance"}
    run = report["recipes"]["full"]["runs"][0]  # the same numbers as `refinery eval-mc` on that checkpoint
    direct = evaluate_mc(run["checkpoint"], [MC_TASK], tokenizer=report["tokenizer"]["model"])["tasks"][task]
    assert (run["mc"][task]["acc"], run["mc"][task]["acc_norm"]) == (direct["acc"], direct["acc_norm"])
    assert len(json.loads(Path(run["mc"][task]["report"]).read_text())["tasks"][task]["per_item"]) == 6
    above = [n for n in report["recipes_order"]
             if "above chance" in report["recipes"][n]["summary"]["mc"][task]["versus_chance"].values()]
    assert (report["mc"]["sentence"] is None) == bool(above)
    page = (study["out"] / "ablation.html").read_text(encoding="utf-8")
    assert "Downstream multiple-choice tasks (0-shot)" in page and "mc_tiny.jsonl" in page
    assert f"{info['chance']:.3f} ± {info['chance_std']:.3f}" in page
    assert f"0: {report['recipes']['raw']['runs'][0]['mc'][task]['acc']:.3f}, 1: " in page  # each seed
    assert info["sentence"] in page and "<script" not in page


def test_a_new_seed_reuses_the_old_seeds_mc_scores(study: dict) -> None:
    task = str(MC_TASK)
    assert all(not r["mc"][task]["reused"] for n in ("raw", "full") for r in study["first"]["recipes"][n]["runs"])
    report = study["grown"]
    reused = {(n, r["seed"]): r["mc"][task]["reused"] for n in report["recipes_order"]
              for r in report["recipes"][n]["runs"]}
    assert reused == {("raw", 0): False, ("raw", 1): False, ("heuristics", 0): False, ("heuristics", 1): False,
                      ("full", 0): True, ("full", 1): False}  # raw 0's run was redone, and its scores with it
    assert study["mc_done"].stat().st_mtime_ns == study["stamps"]["full-mc"]


def test_a_changed_task_file_is_scored_again(study: dict, heldout: Path, tmp_path: Path) -> None:
    task = tmp_path / "mc.jsonl"
    task.write_text("".join(MC_TASK.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")

    def raw_seed_0(*extra: str) -> dict:
        assert main([*argv(study["out"], heldout, ["raw"], [0], [task]), *extra]) == 0
        return json.loads((study["out"] / "ablation.json").read_text(encoding="utf-8"))["recipes"]["raw"]["runs"][0]

    try:
        run = raw_seed_0()
        assert run["reused"] and not run["mc"][str(task)]["reused"] and run["mc"][str(task)]["items"] == 5
        mc_dirs = Path(run["mc"][str(task)]["report"]).parents[1]
        assert len(list(mc_dirs.iterdir())) == 2  # the fixture's scores are kept beside the new ones
        assert raw_seed_0()["mc"][str(task)]["reused"]  # the same bytes: not scored again
        with task.open("a", encoding="utf-8") as handle:
            handle.write('{"context": "Ice is", "choices": ["cold", "hot"], "answer": 0}\n')
        changed = raw_seed_0()["mc"][str(task)]
        assert not changed["reused"] and changed["items"] == 6
        shots = raw_seed_0("--mc-shots", "2")["mc"][str(task)]
        assert not shots["reused"] and shots["items"] == 4
    finally:  # leave the study's report as the fixture wrote it, for the tests that read its page
        assert main(argv(study["out"], heldout, ["raw", "heuristics", "full"], [0, 1], [MC_TASK])) == 0


def test_a_malformed_task_file_is_refused_before_any_work(tmp_path: Path, heldout: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "a", "choices": ["b", "c"], "answer": 0}\n{"context": "a", "choices": [\n')
    out = tmp_path / "study"
    assert main(argv(out, heldout, ["raw"], [0], [MC_TASK, bad])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"refinery ablate: error: {bad}:2: not valid JSON")
    assert main([*argv(out, heldout, ["raw"], [0], [MC_TASK]), "--mc-shots", "6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none to score after 6 few-shot examples" in err
    assert not out.exists()  # refused before the study directory, let alone a tokenizer or a run


def test_mc_flags_and_the_chance_rule() -> None:
    import inspect

    from pipeline.ablate import _mc_tasks, ablate, build_parser
    from pipeline.ablate_report import mean_std, summarize_mc, versus_chance
    from trainer.multiple_choice import DEFAULT_SHOTS

    args = build_parser().parse_args(["--recipes", "r.yaml", "--input", "x", "--out", "o", "--heldout", "h"])
    assert args.mc_tasks is None and args.mc_shots == DEFAULT_SHOTS == inspect.signature(ablate).parameters[
        "mc_shots"].default  # eval-mc's default, one definition
    info = _mc_tasks([MC_TASK], 1)[str(MC_TASK)]  # the first item is the example: 5 scored
    p = np.array([1 / 2, 1 / 4, 1 / 2, 1 / 3, 1 / 2])
    assert info["items"] == 5 and info["chance"] == pytest.approx(p.mean())
    assert info["chance_std"] == pytest.approx(math.sqrt((p * (1 - p)).sum()) / 5)
    assert versus_chance(mean_std([0.9, 0.92]), 0.25, 0.02) == "above chance"
    assert versus_chance(mean_std([0.9, 0.3]), 0.25, 0.02) == "at chance"  # the seeds disagree
    assert versus_chance(mean_std([0.3]), 0.25, 0.05) == "at chance"  # one seed: a random guesser's noise
    assert versus_chance(mean_std([0.0, 0.0]), 0.5, 0.1) == "below chance"

    def study_of(accs: dict[str, list[float]]) -> dict:
        runs = {n: [{"mc": {"t.jsonl": {"acc": a, "acc_norm": a}}} for a in v] for n, v in accs.items()}
        report = {"recipes_order": list(accs), "recipes": {n: {"runs": r, "summary": {}} for n, r in runs.items()},
                  "mc": {"shots": 0, "tasks": {"t.jsonl": {"items": 400, "chance": 0.25, "chance_std": 0.02}}}}
        summarize_mc(report)
        return report["mc"]

    at_chance = study_of({"a": [0.26, 0.24], "b": [0.25, 0.27]})
    assert "every arm is within noise of chance" in at_chance["tasks"]["t.jsonl"]["sentence"]
    assert at_chance["sentence"].startswith("No arm is above chance on any task")
    one_above = study_of({"a": [0.26, 0.24], "b": [0.60, 0.62]})
    assert one_above["sentence"] is None and one_above["tasks"]["t.jsonl"]["sentence"].startswith("t.jsonl: b above")
