"""From a dump to a trained model: the three DAGs chained under real Airflow, twice.

commoncrawl_dump on three shared WARC files (the dump picked from a local crawl index) and
refinery_sources on the demo's samples of the six other sources publish seven sources to the
catalog; refinery_mixture mixes the latest run of each with the LLaMA-1 recipe, trains the tiny
model for a few steps under `torchrun --nproc_per_node 2` (gloo, CPU), evaluates and reports.
The second pass starts nothing that finished; bad requests fail in one line and change nothing.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipeline.demo_sources import write_source_samples
from tests.airflow.conftest import run_dags
from tests.airflow.test_commoncrawl_dag import WARCS, crawl_index
from tests.conftest import REPO, WARC_DIR
from tests.trainer.conftest import book_chunks, train_tokenizer, wiki_articles
from trainer.data import MixtureLoader
from trainer.mixture import load_mixture

pytestmark = pytest.mark.integration

RECIPE = REPO / "configs" / "mixture" / "llama1.yaml"
STEPS = 4


def confs(tmp_path: Path) -> dict[str, dict]:
    root = tmp_path / "out"
    tokenizer = tmp_path / "tokenizer.model"
    if not tokenizer.exists():
        train_tokenizer(wiki_articles() + book_chunks(), tokenizer)
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress("".join(f"{WARC_DIR / name}\n" for name in WARCS).encode()))
    index = crawl_index(tmp_path / "collinfo.json", "CC-MAIN-2024-22", "CC-MAIN-2024-18")
    samples = write_source_samples(tmp_path / "samples")
    jobs = [{"source": yaml.safe_load(s.config.read_text())["source"], "config": str(s.config), "inputs": s.inputs}
            for s in samples.values()]
    return {
        "commoncrawl_dump": {"dump_id": "", "crawl_index": str(index), "manifest": str(manifest),
                             "base_url": "file:///", "batch_size": 3, "output_root": str(root),
                             "overrides": ["extract.engine=resiliparse"], "tokenizer": str(tokenizer)},
        "refinery_sources": {"sources": jobs, "output_root": str(root), "tokenizer": str(tokenizer)},
        "refinery_mixture": {"output_root": str(root), "recipe": str(RECIPE), "token_budget": STEPS * 1024,
                             "pretrain": True, "pretrain_steps": STEPS, "nproc_per_node": 2,
                             "pretrain_model": str(REPO / "configs" / "model" / "tiny.yaml"),
                             "pretrain_config": str(REPO / "configs" / "train" / "tiny.yaml"), "eval_windows": 8},
    }


def test_a_dump_and_six_sources_to_a_trained_model_and_again(airflow_env: dict[str, str], tmp_path: Path) -> None:
    conf = confs(tmp_path)
    root = tmp_path / "out"
    runs, events, log = run_dags(airflow_env, *conf.items())
    for run in runs:
        assert run["run_state"] == "success", (run, log[-6000:])
    dump, sources, mixture_run = runs
    assert dump["states"]["publish"] == ["success"]
    assert sources["states"]["curate"] == sources["states"]["publish"] == ["success"] * 6
    assert mixture_run["states"]["pretrain"] == mixture_run["states"]["evaluate"] == ["success"]
    # The newest dump of the index was picked, and every source published one finished run.
    published = sorted(e["extra"]["source"] for e in events)
    assert published == sorted(["commoncrawl/CC-MAIN-2024-22", "wikipedia", "github", "books", "arxiv",
                                "stackexchange", "c4"])
    for source in published:
        catalog = json.loads((root / "sources" / source / "catalog.json").read_text())
        assert (root / "sources" / source / catalog["latest"] / "_SUCCESS").exists()

    (mix_dir,) = (root / "mixtures").iterdir()
    mixture = load_mixture(mix_dir / "mixture.json")
    weights = yaml.safe_load(RECIPE.read_text())["weights"]
    groups = {s.name: s.name.split("/")[0] for s in mixture.sources}
    assert sorted(set(groups.values())) == sorted(weights)  # all seven of LLaMA's sources
    plan = json.loads((mix_dir / "mixture.json").read_text())["plan"]
    assert plan["scaling"]["model_params"] == 7e9  # the token-budget table for the target size
    # The trainer's loader realizes every source within 2 points of its weight.
    loader = MixtureLoader(mixture, seq_len=32, batch_size=500, seed=1, heldout_every=None)
    counts: Counter[str] = Counter()
    for _ in range(20):
        counts.update(groups[loader.source_names[s]] for s in loader.next_batch().sources)
    for key, weight in weights.items():
        assert abs(counts[key] / sum(counts.values()) - weight) < 0.02, key
    pretrain = mix_dir / "pretrain"
    assert (pretrain / "eval.json").exists() and (mix_dir / "report" / "report.html").exists()
    report = json.loads((mix_dir / "report" / "report.json").read_text())
    assert report["eval"] and report["plan"]  # the report shows the checkpoint's eval and the token budget
    metrics = (pretrain / "metrics.csv").read_text()
    checkpoints = sorted(p.name for p in (pretrain / "checkpoints").iterdir())
    catalogs = {s: (root / "sources" / s / "catalog.json").read_bytes() for s in published}

    # Bad requests: each fails in one line naming what is wrong, and nothing published changes.
    bad_root = tmp_path / "bad"
    (bad_root / "sources" / "c4").mkdir(parents=True)
    (bad_root / "sources" / "c4" / "catalog.json").write_text("{oops")
    again, _, log = run_dags(
        airflow_env, *conf.items(),
        ("refinery_mixture", {**conf["refinery_mixture"], "pretrain_model": str(tmp_path / "no-such-model.yaml")}),
        ("refinery_mixture", {**conf["refinery_mixture"], "output_root": str(tmp_path / "empty")}),
        ("refinery_mixture", {**conf["refinery_mixture"], "output_root": str(bad_root)}),
    )
    dump, sources, mixture_run, no_model, missing, malformed = again
    # The second pass starts nothing that finished: the dump is published, so the schedule skips it;
    # the sources and the mixture are complete; training is at its last step.
    assert dump["run_state"] == "success" and dump["states"]["validate"] == ["skipped"], log[-6000:]
    assert "CC-MAIN-2024-22, the newest dump in" in log
    assert sources["run_state"] == mixture_run["run_state"] == "success", log[-6000:]
    assert log.count("already complete") >= 7 and log.count("already latest") == 6
    assert [p.name for p in (root / "mixtures").iterdir()] == [mix_dir.name]
    assert (pretrain / "metrics.csv").read_text() == metrics
    assert sorted(p.name for p in (pretrain / "checkpoints").iterdir()) == checkpoints
    assert no_model["run_state"] == missing["run_state"] == malformed["run_state"] == "failed"
    assert no_model["states"]["validate"] == ["failed"]
    assert f"pretrain_model: no model config at {tmp_path / 'no-such-model.yaml'}" in log
    assert missing["states"]["resolve"] == ["failed"] and "source 'commoncrawl' has weight 0.67" in log
    assert malformed["states"]["resolve"] == ["failed"] and "malformed catalog" in log
    assert {s: (root / "sources" / s / "catalog.json").read_bytes() for s in published} == catalogs
