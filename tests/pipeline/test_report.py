"""refinery report on real runs: the full pipeline over shared WARCs (with rejects, dedup clusters and
shards from our Tokenize stage), a bare run without those parts, and the page in headless Chromium."""

from __future__ import annotations

import html
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import apache_beam as beam
import pytest
from PIL import Image

from filters.document import Document
from pipeline.config import load_config
from pipeline.mix import mix
from pipeline.report import main, report
from pipeline.report_compare import compare
from pipeline.report_paths import REPO
from pipeline.run import run
from pipeline.run_stats import load_run
from pipeline.tokenize import Tokenize, TokenizeConfig, finalize_shards
from pipeline.tokenizer_training import train_tokenizer
from tests.conftest import WARC_DIR
from tests.trainer.conftest import WIKITEXT, wiki_articles

pytestmark = pytest.mark.integration

# The Wayback topic crawl holds near-duplicate pages (MinHashDedup drops 4), the others add other
# languages, low-quality CommonCrawl pages and an exact duplicate (Mona Lisa twice).
WARCS = ["copycat_wayback-topic-02.warc.gz", "ukwa_wikipedia-mona-lisa.warc.gz",
         "resiliparse_CC-MAIN-2020-34_sample.warc.gz", "whirlwind_CC-MAIN-2024-22.warc.gz"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def tokenize_into(docs: beam.PTransform, out: Path, tokenizer: Path, source: str) -> None:
    config = TokenizeConfig(tokenizer=str(tokenizer), target_shard_tokens=5_000)
    with beam.Pipeline(runner="DirectRunner") as p:
        _ = p | docs | Tokenize(config, str(out), source)
    finalize_shards(out, config, source)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    full = root / "full"
    run([str(WARC_DIR / name) for name in WARCS], str(full), config=load_config(None, {"output.rejects": True}))
    tok = train_tokenizer([str(full), str(WIKITEXT)], root / "tok", vocab_size=1000, holdout_fraction=0.0).model
    read = beam.io.ReadFromParquet(str(full / "documents" / "*.parquet")) | beam.Map(Document.from_row)
    tokenize_into(read, full / "shards", Path(tok), "commoncrawl")
    wiki = [Document(id=f"w{i}", text=t, source="wikipedia") for i, t in enumerate(wiki_articles()[:10])]
    tokenize_into(beam.Create(wiki), root / "wiki" / "shards", Path(tok), "wikipedia")
    recipe = root / "recipe.yaml"
    recipe.write_text("token_budget: 1000000\nmax_epochs: 4\nweights: {commoncrawl: 0.7, wikipedia: 0.3}\n")
    mix(recipe, {"commoncrawl": full, "wikipedia": root / "wiki"}, root / "mixture", model_params=1e6)
    bare = root / "bare"
    cfg = load_config(None, {"stages": ["url_blocklist", "langid"], "output.rejects": False})
    run([str(WARC_DIR / "copycat_clueweb09-sample.warc.gz")], str(bare), config=cfg)
    # The same input as `full` at a stricter language-ID threshold, for --compare.
    strict = root / "strict"
    cfg = load_config(None, {"stages": ["url_blocklist", "langid"], "langid.min_score": 0.9, "output.rejects": True})
    run([str(WARC_DIR / name) for name in WARCS], str(strict), config=cfg)
    return {"full": full, "bare": bare, "strict": strict, "mixture": root / "mixture" / "mixture.json", "root": root}


def test_report_json_has_every_part_with_consistent_tokens(runs: dict[str, Path]) -> None:
    page = report([runs["full"]], runs["root"] / "out", runs["mixture"])
    data = json.loads(page.with_name("report.json").read_text())
    section = data["runs"][0]
    funnel = section["funnel"]
    stats = load_run(runs["full"])
    assert [s["stage"] for s in funnel] == list(stats.funnel["stage"])
    assert funnel[-1]["tokens_out"] == stats.tokens == section["shards"][0]["tokens"]
    for before, after in itertools.pairwise(funnel):
        assert before["tokens_out"] == after["tokens_in"]
        assert after["tokens_in"] - after["tokens_dropped"] == after["tokens_out"]
    assert section["tokens_per_reason"] and funnel[0]["tokens_in"] > funnel[-1]["tokens_out"]
    assert section["languages"]["en"] == stats.totals["kept"]
    assert sum(section["scores"]["lang_score"]["series"]["kept"]) == stats.totals["kept"]
    dedup = section["dedup"]
    assert dedup["minhash_in"] == funnel[-1]["in"] and dedup["removed"] == funnel[-1]["dropped"] > 0
    assert sum(int(size) * n for size, n in dedup["size_distribution"].items()) == dedup["documents_in_clusters"]
    rejected = section["samples"]["rejected"]
    assert rejected and all(len(docs) <= 2 for docs in rejected.values())
    # The Cost table: the run's own CPU and bytes, in `refinery estimate`'s columns, its tokens the shards'.
    cost = section["cost"]
    assert cost["figures"]["documents"] == stats.totals["kept"] and cost["figures"]["tokens"] == stats.tokens
    assert cost["figures"]["sample_bytes"] == sum((WARC_DIR / name).stat().st_size for name in WARCS)
    assert cost["figures"]["core_hours"]["value"] > 0 and not cost["row"][5].endswith("*")
    mixture = data["mixture"]
    assert {s["name"] for s in mixture["sources"]} == {"commoncrawl", "wikipedia"}
    assert mixture["scaling"]["chinchilla_tokens"] == 20e6


def test_sample_texts_are_escaped(runs: dict[str, Path]) -> None:
    page = report([runs["full"]], runs["root"] / "escaped")
    text = page.read_text()
    data = json.loads(page.with_name("report.json").read_text())
    samples = data["runs"][0]["samples"]
    docs = samples["kept"] + [d for docs in samples["rejected"].values() for d in docs]
    assert any(set(d["text"]) & set("<>&\"'") for d in docs)  # real pages do carry markup characters
    for doc in docs:
        assert html.escape(doc["text"]) in text
    assert text.lower().count("<script") == 1  # the sample filter's own; every page's is escaped


def test_a_run_without_rejects_clusters_or_shards_still_reports(runs: dict[str, Path]) -> None:
    page = report([runs["bare"]], runs["root"] / "bare-out")
    data = json.loads(page.with_name("report.json").read_text())
    section = data["runs"][0]
    assert section["dedup"] is None and section["shards"] == [] and not section["tokens_per_reason"]
    assert section["funnel"][-1]["tokens_out"] is None
    assert section["samples"]["rejected"] == {} and section["samples"]["kept"]
    text = page.read_text()
    assert "No clusters/" in text and "Not tokenized" in text and "wrote no rejects/" in text
    assert section["cost"]["row"][5].endswith("*") and 'id="cost-table-0"' in text  # tokens assumed
    assert 'id="plot-funnel-commoncrawl"' in text and "No mixture given" in text and "No model size" in text


def test_overview_funnel_in_tokens_plan_and_no_machine_paths(runs: dict[str, Path]) -> None:
    out = runs["root"] / "overview"
    page = report([runs["full"]], out, runs["mixture"], model_params=1e6)
    data = json.loads(page.with_name("report.json").read_text())
    funnel, stats = data["runs"][0]["funnel"], load_run(runs["full"])
    (source,) = data["overview"]["sources"]
    assert source["tokens_kept"] == stats.tokens == data["overview"]["total"]["tokens_kept"]
    assert source["tokens_in"] == funnel[0]["tokens_in"] == source["tokens_kept"] + source["tokens_dropped"]
    assert source["records"] == stats.totals["records"] and source["kept"] == stats.totals["kept"]
    top = data["overview"]["top_reasons"]
    by_funnel = {(s["stage"], r): t for s in funnel for r, t in s["reason_tokens"].items()}
    assert [r["tokens"] for r in top] == sorted((r["tokens"] for r in top), reverse=True)
    assert all(r["tokens"] == by_funnel[(r["stage"], r["reason"])] for r in top)
    chinchilla, _, asked = data["plan"]["rows"]
    assert chinchilla["tokens"] == 20e6 and asked["tokens"] == 1_000_000 and asked["flops"] == 6e12
    assert set(asked["epochs"]) == {"commoncrawl", "wikipedia"}
    # Lengths in tokens add up to the kept tokens; thresholds come from the run's config.
    lengths = data["runs"][0]["lengths"]
    assert lengths["documents"] == stats.totals["kept"] and sum(lengths["counts"]) == lengths["documents"]
    assert data["runs"][0]["scores"]["lang_score"]["threshold"] == 0.5
    domains = data["runs"][0]["domains"]
    assert domains and all(d["kept"] + d["dropped"] > 0 for d in domains)
    text = page.read_text() + page.with_name("report.json").read_text()
    for machine_path in {str(runs["root"]), str(REPO), str(Path.home()), str(WARC_DIR)}:
        assert machine_path not in text, machine_path
    assert data["mixture"]["path"] == "../mixture/mixture.json" and data["runs"][0]["path"] == "../full"


def test_compare_two_thresholds_on_the_same_input(runs: dict[str, Path]) -> None:
    page = compare(runs["full"], runs["strict"], runs["root"] / "compare", samples=3)
    data = json.loads(page.with_name("compare.json").read_text())
    full, strict = load_run(runs["full"]), load_run(runs["strict"])
    kept = [set(r.documents(["id"])["id"]) for r in (full, strict)]
    assert data["both"] == len(kept[0] & kept[1])
    assert data["only_a"]["documents"] == len(kept[0] - kept[1]) > 0
    assert data["only_b"]["documents"] == len(kept[1] - kept[0]) > 0
    # What the full recipe kept and the strict threshold did not was dropped by language ID in B.
    assert set(data["only_a"]["dropped_by_other"]) <= {"LanguageId / langid.low_score",
                                                       "LanguageId / langid.wrong_language"}
    assert sum(data["only_a"]["dropped_by_other"].values()) == data["only_a"]["documents"]
    langid = next(s for s in data["stages"] if s["stage"] == "LanguageId")
    assert langid["b_dropped"] > langid["a_dropped"]
    assert {s["stage"]: s.get("a_out") for s in data["stages"]}["MinHashDedup"] == full.totals["kept"]
    assert sum(data["scores"]["lang_score"]["series"]["B"]) == strict.totals["kept"]
    assert min(data["scores"]["lang_score"]["edges"]) >= 0.5  # fitted to the kept scores, not 0..1
    assert 0 < len(data["only_b"]["samples"]) <= 3
    assert str(runs["root"]) not in page.read_text()


def test_cli_usage_errors(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "absent")]) == 2
    assert "absent" in capsys.readouterr().err
    assert main([str(runs["bare"]), "--out", str(tmp_path / "o"), "--mixture", str(tmp_path / "none.json")]) == 2
    (tmp_path / "eval.json").write_text("[1, 2]")
    assert main([str(runs["bare"]), "--out", str(tmp_path / "o"), "--eval", str(tmp_path / "eval.json")]) == 2
    assert main([str(runs["bare"]), "--out", str(tmp_path / "o"), "--model-params", "1e9", "--mfu", "2"]) == 2
    assert main(["--compare", str(runs["bare"]), str(runs["bare"]), "--out", str(tmp_path / "c")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 4 and all(line.startswith("refinery report: error: ") for line in err)
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert main([str(runs["bare"]), "--out", str(tmp_path / "o")]) == 0


def _chromium(page: Path, shot: Path, height: int) -> str:
    """Screenshot ``page`` at 1200 x ``height`` and return its DOM after the page's script ran."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", f"--screenshot={shot}",
                        f"--window-size=1200,{height}", page.as_uri()], check=True, capture_output=True, timeout=120)
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                              check=True, capture_output=True, text=True, timeout=120).stdout


def test_page_renders_in_headless_chromium(runs: dict[str, Path]) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must render the report (apt-get install chromium)")
        pytest.skip("chromium not installed: apt-get install -y chromium to run the rendering test")
    out = runs["root"] / "rendered"
    page = report([runs["full"], runs["bare"]], out, runs["mixture"])
    dom = _chromium(page, out / "report.png", 2400)
    for element in ("overview", "overview-cards", "mixture-table", "plot-mixture", "overview-funnel-table",
                    "plot-overview-funnel", "top-reasons-table", "planner-table", "eval", "lengths-table",
                    "source-commoncrawl-full", "funnel-table-commoncrawl-full", "plot-funnel-commoncrawl-full",
                    "reasons-table-commoncrawl-full", "plot-languages-0", "plot-lang-score-0", "lang-score-table-0",
                    "plot-lengths-0", "domains-table-0", "plot-dedup-0", "shards-table-0", "cost-table-0",
                    "source-commoncrawl-bare", "funnel-table-commoncrawl-bare", "samples", "sample-filters"):
        assert f'id="{element}"' in dom, element
    assert dom.index('id="overview"') < dom.index('id="sources"') < dom.index('id="samples"')
    assert '<details class="source" id="source-commoncrawl-full">' in dom  # collapsed: no "open"
    assert dom.count('class="threshold"') >= 1 and "min_score 0.5" in dom
    assert " shown</span>" in dom  # the filter script ran and counted the samples
    image = Image.open(out / "report.png").convert("RGB")
    assert image.size == (1200, 2400)
    colors = image.resize((300, 600)).getcolors(maxcolors=1 << 16)
    assert colors is not None and len(colors) > 20  # text, bars and tables, not a blank page
    compared = compare(runs["full"], runs["strict"], runs["root"] / "rendered-compare")
    dom = _chromium(compared, out / "compare.png", 1600)
    for element in ("compare-totals-table", "compare-stages-table", "compare-reasons-table", "plot-compare-lang-score",
                    "only-a", "only-b"):
        assert f'id="{element}"' in dom, element
