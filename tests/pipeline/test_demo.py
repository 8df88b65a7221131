"""`refinery demo` on a fresh directory runs every stage, from a crawl to a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main

pytestmark = pytest.mark.integration

LLAMA_SOURCES = {"commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    # `make demo` extracts with trafilatura, as test_run's full run does; the demo test takes the fast path.
    assert main(["demo", "--output", str(root), "--set", "extract.engine=resiliparse"]) == 0
    return root


def test_the_crawl_goes_through_every_filter_stage(demo: Path) -> None:
    stats = json.loads((demo / "runs" / "commoncrawl-curated" / "stats.json").read_text())
    assert stats["accounting_ok"]
    stages = [s["stage"] for s in stats["funnel"]]
    assert stages == ["ReadWarc", "Extract", "UrlBlocklist", "LanguageId", "BannedWords", "GopherRepetition",
                      "LineDedup", "GopherQuality", "C4", "FineWeb", "ExactDedup", "MinHashDedup"]
    reasons = {r for s in stats["funnel"] for r in s["reasons"]}
    assert {"read.not_response", "read.not_html", "read.http_status", "read.revisit",
            "langid.wrong_language", "minhash_dedup.near_duplicate"} <= reasons
    docs = pq.read_table(demo / "runs" / "commoncrawl-curated" / "documents").to_pylist()
    assert len(docs) >= 30
    assert not [d for d in docs if d["url"] == "https://win-big.example/"], "keyword spam must not survive"


def test_every_llama_source_is_in_the_mixture_and_the_report(demo: Path) -> None:
    mixture = json.loads((demo / "mixture" / "mixture.json").read_text())
    sources = {s["name"]: s for s in mixture["sources"]}
    assert set(sources) == LLAMA_SOURCES
    assert all(s["tokens"] > 0 and s["documents"] > 0 for s in sources.values())
    assert abs(sum(s["weight"] for s in sources.values()) - 1) < 1e-6
    html = (demo / "report" / "report.html").read_text()
    assert all(name in html for name in LLAMA_SOURCES)


def test_the_report_has_the_planner_for_the_demo_model_and_the_eval_of_its_checkpoint(demo: Path) -> None:
    report = json.loads((demo / "report" / "report.json").read_text())
    scores = json.loads((demo / "pretrain" / "eval.json").read_text())
    mixture = json.loads((demo / "mixture" / "mixture.json").read_text())
    model_params = mixture["plan"]["scaling"]["model_params"]
    assert model_params == report["plan"]["model_params"] > 0  # the tiny model's size, passed to `mix`
    asked = report["plan"]["rows"][-1]
    assert asked["tokens"] == mixture["token_budget"] and asked["flops"] == 6 * model_params * asked["tokens"]
    sources = {s["name"]: s for s in mixture["sources"]}
    assert asked["epochs"] == {n: pytest.approx(s["epochs"]) for n, s in sources.items()}
    rows = {r["source"]: r for r in report["eval"]["rows"]}
    assert set(rows) == set(scores["sources"]) | {"all"}
    assert rows["all"]["loss"] == pytest.approx(scores["all"]["loss"]) and rows["all"]["windows"] > 0
    assert report["eval"]["checkpoint"] == "../pretrain/checkpoints/step-00000030"  # relative to the report, not this machine's path
    # Each source's curated and tokenized runs are one source of the overview.
    assert {s["source"] for s in report["overview"]["sources"]} == LLAMA_SOURCES
    assert all(len(s["runs"]) == 2 and s["tokens_kept"] == sources[s["source"]]["tokens"]
               for s in report["overview"]["sources"])
    html = (demo / "report" / "report.html").read_text()
    assert 'id="planner-table"' in html and 'id="eval-table"' in html and str(demo) not in html


def test_the_crawl_is_scored_only_by_a_classifier_that_tells_pages_apart(demo: Path) -> None:
    decision = json.loads((demo / "models" / "quality.decision.json").read_text())
    assert decision["scored"] == (decision["auc"] >= 0.8)
    stages = [s["stage"] for s in json.loads((demo / "runs" / "commoncrawl" / "stats.json").read_text())["funnel"]]
    docs = pq.read_table(demo / "runs" / "commoncrawl" / "documents").to_pylist()
    assert docs and ("QualityClassifier" in stages) == decision["scored"]
    assert all((d["quality_score"] is not None) == decision["scored"] for d in docs)


def test_the_classifier_positives_are_the_pages_the_demo_wikipedia_cites(demo: Path) -> None:
    refs = json.loads((demo / "wiki-references" / "stats.json").read_text())
    assert refs["counts"]["urls.distinct"] == 30  # wiki-references on the demo's dump, not a made-up list
    qset = json.loads((demo / "quality-set" / "stats.json").read_text())
    assert qset["references"] == 30 and 0 < qset["positive"] <= qset["references_matched"] <= 30


def test_pretraining_learns_and_the_checkpoint_is_usable(demo: Path) -> None:
    rows = (demo / "pretrain" / "metrics.csv").read_text().splitlines()
    header, first, last = rows[0].split(","), rows[1].split(","), rows[-1].split(",")
    loss = header.index("loss")
    assert float(last[loss]) < float(first[loss]) - 1.0
    assert (demo / "pretrain" / "tokenizer.model").exists()


def test_generate_eval_and_export_work_on_the_demo_checkpoint(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, mixture = demo / "pretrain", demo / "mixture" / "mixture.json"
    assert main(["generate", "--ckpt", str(ckpt), "--prompt", "The orchard", "--prompt", "A telescope near",
                 "--max-new-tokens", "8", "--temperature", "0"]) == 0
    assert "The orchard" in capsys.readouterr().out
    report = demo / "eval.json"
    assert main(["eval", "--ckpt", str(ckpt), "--data", str(mixture), "--max-windows", "16",
                 "--out", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert "commoncrawl" in json.dumps(scores)
    export = demo / "hf"
    assert main(["export-hf", "--ckpt", str(ckpt), "--out", str(export)]) == 0
    config = json.loads((export / "config.json").read_text())
    assert config["architectures"] == ["MistralForCausalLM"]  # tiny.yaml has a sliding window
    assert (export / "tokenizer.model").exists()
