"""``refinery demo``: write a sample crawl, run every stage that exists on it, say where things went.

It needs no network and no data beyond the package: the crawl is generated (see demo_corpus) and
written as a real gzip-per-record WARC with warcio, with the record types a CommonCrawl file has.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.demo_corpus import Page, demo_pages, to_html

log = logging.getLogger(__name__)

CRAWL_DATE = "2024-05-20T10:00:00Z"


def write_demo_warc(path: Path, pages: Sequence[Page]) -> int:
    """Write ``pages`` plus the records a real crawl also holds; returns the number of records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "refinery demo", "format": "WARC/1.1"}))
        count += 1
        for page in tqdm(pages, desc="demo WARC", unit="page", leave=False):
            body = to_html(page).encode("utf-8")
            count += _write_exchange(writer, page.url, "text/html; charset=utf-8", body)
        # What every crawl also has, and the reader must skip and count.
        count += _write_exchange(writer, "https://gardening-journal.example/logo.png", "image/png",
                                 b"\x89PNG\r\n\x1a\n" + bytes(64))
        count += _write_exchange(writer, "https://railways-journal.example/timetable.pdf", "application/pdf",
                                 b"%PDF-1.4\n% demo\n")
        count += _write_exchange(writer, "https://astronomy-journal.example/missing", "text/html",
                                 b"<html><body><h1>Not found</h1></body></html>", status="404 Not Found")
        latin1 = ("<html><head><title>Caf\xe9</title></head><body><p>Le caf\xe9 du village ouvre t\xf4t le matin "
                  "et ferme tard le soir, m\xeame le dimanche.</p></body></html>").encode("latin-1")
        count += _write_exchange(writer, "https://cafe.example/", "text/html; charset=iso-8859-1", latin1)
        first = pages[0]
        digest = "sha1:" + hashlib.sha1(to_html(first).encode("utf-8")).hexdigest()
        revisit = writer.create_revisit_record(first.url, digest, first.url, CRAWL_DATE)
        writer.write_record(revisit)
        count += 1
    return count


def _record_id(kind: str, url: str) -> str:
    """A WARC-Record-ID fixed by the record's URL and type.

    warcio draws a random uuid4 otherwise, and the documents' ids are the records' ids: every demo
    would then sample other negatives (by id hash) and print another classifier AUC.
    """
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{kind} {url}')}>"


def _write_exchange(writer: WARCWriter, url: str, content_type: str, body: bytes, status: str = "200 OK") -> int:
    request = writer.create_warc_record(
        url, "request", payload=io.BytesIO(f"GET / HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode()),
        warc_headers_dict={"WARC-Date": CRAWL_DATE, "WARC-Record-ID": _record_id("request", url)},
    )
    headers = StatusAndHeaders(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                               protocol="HTTP/1.1")
    response = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers,
                                         warc_headers_dict={"WARC-Date": CRAWL_DATE,
                                                            "WARC-Record-ID": _record_id("response", url)})
    writer.write_record(request)
    writer.write_record(response)
    return 2


REPO = Path(__file__).resolve().parent.parent
DEMO_VOCAB = 1000  # the demo's corpus is small: a 32k vocabulary needs far more text than it has
DEMO_STEPS = 30


def run_demo(output: str | Path, beam_args: Sequence[str] = (), crawl_overrides: dict | None = None) -> dict:
    """Every stage, end to end, on generated data; returns a summary of where things went.

    ``crawl_overrides`` are ``--set`` keys for the crawl's curation (``extract.engine``, say).
    """
    from filters.quality_classifier import train_quality_classifier
    from filters.text_sources import read_texts
    from pipeline.config import load_config
    from pipeline.demo_sources import write_source_samples
    from pipeline.mix import mix
    from pipeline.quality_set import build_quality_set
    from pipeline.report import report
    from pipeline.run import run
    from pipeline.tokenizer_training import train_tokenizer
    from pipeline.wiki_references import wiki_references
    from trainer.evaluate import evaluate, format_table
    from trainer.generate import generate
    from trainer.load import dump_json, load_trained
    from trainer.train import pretrain

    root = Path(output)
    runs, models = root / "runs", root / "models"
    models.mkdir(parents=True, exist_ok=True)

    _step("1/9 a sample crawl, and samples of the other LLaMA sources in their own formats")
    pages = demo_pages()
    warc = root / "input" / "demo-crawl.warc.gz"
    records = write_demo_warc(warc, pages)
    samples = write_source_samples(root / "input" / "sources")
    print(f"  {records} WARC records in {warc}\n  {', '.join(sorted(samples))} in {root / 'input' / 'sources'}")

    crawl_config = load_config(REPO / "configs" / "commoncrawl.yaml", crawl_overrides)
    _step(f"2/9 curate the crawl: extract ({crawl_config.extract.engine}), language ID, repetition, line dedup, "
          "quality rules, dedup")
    curated = {"commoncrawl": run([str(warc)], str(runs / "commoncrawl-curated"), config=crawl_config,
                                  beam_args=beam_args, overwrite=True).stats}
    _print_funnel(curated["commoncrawl"])

    _step("3/9 curate the other sources, each cleaned its own way")
    for name, sample in sorted(samples.items()):
        stats = run(sample.inputs, str(runs / f"{name}-curated"), config=sample.config, beam_args=beam_args,
                    overwrite=True).stats
        curated[name] = stats
        print(f"  {name:<14} {stats['totals']['records']:>4} records -> {stats['totals']['kept']:>3} documents")

    _step("4/9 the quality classifier, the LLaMA way: pages Wikipedia cites vs random pages")
    references = root / "wiki-references"
    cited = wiki_references(samples["wikipedia"].inputs, str(references), overwrite=True, beam_args=beam_args)
    print(f"  {cited['counts'].get('pages.articles', 0)} Wikipedia articles cite "
          f"{cited['counts'].get('urls.distinct', 0)} distinct URLs -> {references}")
    counts = build_quality_set(str(references), [str(runs / "commoncrawl-curated")], str(root / "quality-set"),
                               beam_args)
    quality_model = models / "quality.bin"
    quality_set = root / "quality-set"
    quality = train_quality_classifier(
        (t for f in sorted(quality_set.glob("positive*.jsonl")) for t in read_texts(f)),
        (t for f in sorted(quality_set.glob("negative*.jsonl")) for t in read_texts(f)),
        quality_model, dim=16, epoch=20, holdout_fraction=0.2)
    score_crawl = _judge_classifier(quality, counts, models / "quality.decision.json")

    _step("5/9 the tokenizer: sentencepiece BPE with LLaMA's settings, on every source")
    tok = train_tokenizer([str(runs / f"{name}-curated") for name in sorted(curated)], models / "tokenizer",
                          vocab_size=DEMO_VOCAB)
    print(f"  {tok.vocab_size} tokens, {tok.bytes_per_token:.2f} bytes/token on held-out text -> {tok.model}")

    _step("6/9 token shards per source (the crawl is scored by the classifier on the way)")
    shard_runs = {}
    for name in sorted(curated):
        overrides: dict = {"source": curated[name]["run"]["source"], "input": {"format": "documents"}, "stages": [],
                           "tokenize": {"tokenizer": tok.model, "target_shard_tokens": 20000}}
        if name == "commoncrawl" and score_crawl:
            overrides["stages"] = ["quality_classifier"]
            overrides["quality_classifier"] = {"model_path": str(quality_model), "min_score": 0.1}
        cfg = load_config(REPO / "configs" / "commoncrawl.yaml", overrides)
        shard_runs[name] = runs / name
        stats = run([str(runs / f"{name}-curated" / "documents")], str(shard_runs[name]), config=cfg,
                    beam_args=beam_args, overwrite=True).stats
        print(f"  {name:<14} {stats['totals']['kept']:>3} documents, {stats['shards']['tokens']:>7} tokens")

    _step("7/9 the mixture (LLaMA-1 recipe), planned for the tiny model's size")
    model_params = _model_params(REPO / "configs" / "model" / "tiny.yaml", tok.vocab_size)
    mixture = mix(REPO / "configs" / "mixture" / "llama1.yaml",
                  {curated[name]["run"]["source"]: path for name, path in shard_runs.items()},
                  root / "mixture", model_params=model_params, token_budget=DEMO_STEPS * 1024)
    print(f"  mixture {mixture.path} ({len(mixture.warnings)} note(s) on repeated sources), "
          f"model {model_params:,} parameters")

    _step(f"8/9 pretrain the tiny LLaMA/Mistral-style model for {DEMO_STEPS} steps")
    trained = pretrain(REPO / "configs" / "model" / "tiny.yaml", mixture.path, root / "pretrain", steps=DEMO_STEPS,
                       train_config=REPO / "configs" / "train" / "tiny.yaml")
    losses = [r.loss for r in trained.history]
    print(f"  loss {losses[0]:.2f} -> {losses[-1]:.2f}; checkpoints in {root / 'pretrain'}")

    _step("9/9 evaluate and sample the checkpoint, and the report")
    scores = evaluate(root / "pretrain", mixture.path, max_windows=32)
    dump_json(root / "pretrain" / "eval.json", scores)  # where the mixture DAG writes it, for the report
    print(format_table(scores))
    loaded = load_trained(root / "pretrain")
    prompt = loaded.tokenizer.encode("The hive near the meadow")
    sample = generate(loaded.model, [prompt], max_new_tokens=24, temperature=0.8, top_p=0.95, seed=0)[0]
    print(f"  sample: {loaded.tokenizer.decode(prompt + sample)!r}")
    # Each source's curated run beside its tokenized run: the report shows the pair as one source.
    run_dirs = [d for name in sorted(curated) for d in (runs / f"{name}-curated", shard_runs[name])]
    html = report(run_dirs, root / "report", mixture=mixture.path, eval_path=root / "pretrain" / "eval.json")
    print(f"  report {html}")
    print(f"\neverything is under {root}/; open {html} in a browser")
    return {"curated": curated, "mixture": str(mixture.path), "report": str(html), "pretrain": str(root / "pretrain"),
            "losses": losses}


def _model_params(model_config: Path, vocab_size: int) -> int:
    """The demo model's parameter count (its vocabulary is the tokenizer's), for the budget planner."""
    from filters.config import load_yaml
    from trainer.config import ModelConfig
    from trainer.mfu import count_params

    return count_params(load_yaml(ModelConfig, model_config, overrides={"vocab_size": vocab_size}))


DEMO_MIN_AUC = 0.8  # below this a classifier's scores would decide nothing worth showing


def _judge_classifier(quality, counts: dict, decision_path: Path) -> bool:
    """Print the held-out AUC with its 95% interval; score the crawl only when the classifier is worth it.

    The demo's sample is tiny and generated: a classifier that cannot tell its held-out pages apart
    must say so plainly, not quietly filter the crawl (issue 19). The decision is written beside the model.
    """
    import json

    from filters.auc_confidence import auc_interval

    n_pos, n_neg = quality.n_holdout_positive, quality.n_holdout_negative
    low, high = auc_interval(quality.auc, n_pos, n_neg) if n_pos and n_neg else (0.0, 1.0)
    print(f"  {counts['positive']} reference and {counts['negative']} random pages; held-out AUC {quality.auc:.2f} "
          f"(95% interval {low:.2f}-{high:.2f} on {n_pos}+{n_neg} pages)")
    scored = quality.auc >= DEMO_MIN_AUC
    if not scored:
        print(f"  the sample is too small to judge this classifier (held-out AUC below {DEMO_MIN_AUC}): the crawl is "
              "NOT scored by it. For a real one: wiki-references on a dump, build-quality-set on a real crawl.")
    decision_path.write_text(json.dumps({"auc": quality.auc, "interval": [low, high], "holdout": [n_pos, n_neg],
                                         "min_auc": DEMO_MIN_AUC, "scored": scored}, indent=2) + "\n")
    return scored


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _print_funnel(stats: dict) -> None:
    totals = stats["totals"]
    print(f"  {totals['records']} records -> {totals['kept']} documents")
    for stage in stats["funnel"]:
        reasons = ", ".join(f"{r} {n}" for r, n in stage["reasons"].items())
        print(f"  {stage['stage']:<16} in {stage['in']:>5}  out {stage['out']:>5}  {reasons}")
