"""``refinery ablate``: does a curation choice make a better model? Train the same proxy on each recipe.

The method is the one FineWeb and DCLM use for their filter ablations (docs/ablations.md): curate
the same input with each recipe, train the same small model for the same tokens with the same seeds
on each result, and score every model on one reference text that no arm and no classifier learned
from. Everything that is not the recipe is held fixed, per study rather than per call:

- the tokenizer is ``--tokenizer``, or one trained on a sample of the extraction-only input, which
  does not depend on the arms listed: adding or removing an arm changes no number of the others;
- the budget is 20 tokens per proxy parameter unless ``--tokens`` says otherwise (a warning then);
- the reference (``--heldout``, required) is checked for n-gram overlap with every classifier's
  positives and every arm's kept text, and scored whole, per document, with a bootstrap over its
  documents beside the seed spread (:mod:`pipeline.ablate_score`);
- every step is cached by content (:mod:`pipeline.ablate_cache`), so a study grows arm by arm and
  seed by seed and resumes after an interruption;
- with ``--mc-tasks``, every proxy is also scored on multiple-choice task files by ``refinery eval-mc``'s
  evaluator (:mod:`trainer.multiple_choice`), as FineWeb and DCLM score theirs on HellaSwag, ARC, MMLU;
  the files are checked before anything runs, and each score is cached by the file's bytes and shots.

Under ``out``: ``crawl/<key>`` (extraction only: the tokenizer's sample and the random negatives),
``tokenizer/<key>``, ``reference/<key>``, ``arms/<key>/{curated,shards,mixtures,runs}`` and the
report ``ablation.json`` + ``ablation.html`` (:mod:`pipeline.ablate_report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.ablate_budget import budget_warning, default_tokens, proxy_params, train_settings
from pipeline.ablate_cache import cached_step, content_key, file_sha256, input_fingerprint
from pipeline.ablate_recipe import REPO, AblationError, Recipe, load_recipe
from pipeline.ablate_reference import (
    DEFAULT_MAX_OVERLAP,
    OverlapIndex,
    Reference,
    build_reference,
    check_overlap,
    classifier_texts,
    iter_chunks,
    write_jsonl,
)
from pipeline.cli import refuse_abbreviations
from pipeline.config import DEFAULT_CONFIG, PipelineConfig, load_config

log = logging.getLogger(__name__)

DEFAULT_MODEL = REPO / "configs" / "model" / "proxy-tiny.yaml"
DEFAULT_TRAIN = REPO / "configs" / "ablations" / "train" / "cpu.yaml"
CLASSIFIER_STAGE = ("QualityClassifier", "quality_classifier")  # its funnel label, or its config name
MIN_CONTEXT = 256  # below this a proxy sees too little of a document for its loss to reward coherent text


@dataclass
class AblationResult:
    out: Path
    report: dict[str, Any]
    json_path: Path
    html_path: Path


@dataclass
class Study:
    """What every arm of one study shares."""

    root: Path
    inputs: list[str]
    input_format: str | None
    input_key: dict[str, str]
    beam_args: Sequence[str]
    reference: Reference
    overlap: OverlapIndex
    max_overlap: float
    _crawl: Path | None = None

    def crawl(self) -> Path:
        """The input after extraction and no filter: the tokenizer's sample and LLaMA's "random pages"."""
        if self._crawl is None:
            material = {"inputs": self.input_key, "format": self.input_format, "version": _version()}
            directory = self.root / "crawl" / content_key(material)[:16]
            cached_step(directory, material, lambda d: _run(self, d / "run", _extraction_only(self.input_format)))
            self._crawl = directory / "run"
        return self._crawl


def ablate(
    recipes: Sequence[str | Path],
    inputs: Sequence[str],
    out: str | Path,
    *,
    heldout: Sequence[str | Path],
    seeds: Sequence[int] = (0, 1, 2),
    token_budget: int | None = None,
    model: str | Path = DEFAULT_MODEL,
    train_config: str | Path = DEFAULT_TRAIN,
    tokenizer: str | Path | None = None,
    reference_chunks: int | None = None,
    vocab_size: int = 2000,
    character_coverage: float = 0.9995,
    tokenizer_sentences: int = 2_000_000,
    eval_stride: int | None = None,
    cross_windows: int = 64,
    max_overlap: float = DEFAULT_MAX_OVERLAP,
    input_format: str | None = None,
    beam_args: Sequence[str] = (),
    mc_tasks: Sequence[str | Path] = (),
    mc_shots: int = 0,  # eval-mc's DEFAULT_SHOTS (a test holds them equal); imported lazily, as torch is
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> AblationResult:
    """Run every recipe on ``inputs``, train ``model`` on each per seed, score all on ``heldout``, and
    write ``ablation.json`` + ``ablation.html`` in ``out``; steps done by an earlier study are reused."""
    from pipeline.ablate_report import write_report

    loaded = [load_recipe(r) for r in recipes]
    if input_format:
        loaded = [dataclasses.replace(r, overrides={**r.overrides, "input.format": input_format}) for r in loaded]
    names = [r.name for r in loaded]
    if not loaded or len(set(names)) != len(names):
        raise AblationError(f"--recipes: need one or more recipes with distinct names, got {names}")
    if not seeds or len(set(seeds)) != len(seeds) or (token_budget is not None and token_budget <= 0):
        raise AblationError(f"--seeds must be distinct and --tokens positive, got {list(seeds)} and {token_budget}")
    mc = _mc_tasks(mc_tasks, mc_shots)  # a bad task file is known from the file alone: refuse it before any work
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    reference = build_reference(heldout, max_chunks=reference_chunks)
    overlap = OverlapIndex(reference.texts)
    positives_overlap = {}
    for recipe in loaded:  # before any curation: a leak into positives is known from the files alone
        if recipe.classifier:
            texts = (t for p in recipe.classifier.positives for _, t in iter_chunks(p))
            positives_overlap[recipe.name] = overlap.measure(texts)
            check_overlap(f"the classifier positives of '{recipe.name}'", positives_overlap[recipe.name], max_overlap)
    input_key = input_fingerprint(list(inputs), root / "input-hashes.json")
    if not input_key:
        raise AblationError(f"--input: no file matches {' '.join(inputs)}")
    study = Study(root, list(inputs), input_format, input_key, beam_args, reference, overlap, max_overlap)

    tok = _tokenizer(study, tokenizer, vocab_size, character_coverage, tokenizer_sentences)
    params = proxy_params(model, tok["vocab_size"])
    tokens = token_budget or default_tokens(params)
    budget = train_settings(train_config, tokens, seeds[0])
    for line in filter(None, [budget_warning(tokens, params), _context_warning(budget.seq_len)]):
        warn(line)
    arms = {r.name: _arm(study, r, tok, budget) for r in loaded}  # a leak into an arm stops the study here
    ref = _reference_shards(study, tok)
    runs = {r.name: [_run_seed(study, arms[r.name], arms, seed, model, train_config, tokens, ref, eval_stride,
                               cross_windows, mc, tok) for seed in seeds] for r in loaded}
    report = {
        "inputs": list(inputs), "input_files": len(input_key), "recipes_order": names, "seeds": list(seeds),
        "model": str(model), "model_params": params, "train_config": dataclasses.asdict(budget) | {"seed": None},
        "token_budget": {"requested": token_budget, "rule": default_tokens(params),
                         "tokens_per_param": (budget.steps * budget.tokens_per_step) / params,
                         "steps": budget.steps, "tokens_per_step": budget.tokens_per_step,
                         "tokens": budget.steps * budget.tokens_per_step},
        "tokenizer": tok,
        "reference": {**reference.description, "key": reference.key, "tokens": ref["tokens"],
                      "shards": ref["shards"], "stride": eval_stride, "max_overlap": max_overlap},
        "recipes": {r.name: {**arms[r.name]["report"], "recipe": str(r.path), "description": r.description,
                             "positives_overlap": positives_overlap.get(r.name), "runs": runs[r.name]}
                    for r in loaded},
        "mc": {"shots": mc_shots, "tasks": {name: {k: v for k, v in t.items() if k != "path"}
                                            for name, t in mc.items()}} if mc else None,
    }
    json_path, html_path = write_report(root, report)
    return AblationResult(root, json.loads(json_path.read_text(encoding="utf-8")), json_path, html_path)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refinery")
    except PackageNotFoundError:
        return "unknown"


def _context_warning(seq_len: int) -> str | None:
    if seq_len >= MIN_CONTEXT:
        return None
    return (f"refinery ablate: warning: training context {seq_len} tokens is under {MIN_CONTEXT}; "
            f"configs/ablations/train/cpu.yaml is the ablation setting")


def _run(study: Study, out: Path, cfg: PipelineConfig, inputs: Sequence[str] | None = None) -> dict[str, Any]:
    """One pipeline run; its stats' totals and funnel."""
    from pipeline.run import run

    stats = run(list(inputs or study.inputs), str(out), config=cfg, beam_args=study.beam_args, overwrite=True).stats
    return {"totals": stats["totals"], "funnel": stats["funnel"], "shards": stats.get("shards")}


def _extraction_only(input_format: str | None, stages: Sequence[str] = ()) -> PipelineConfig:
    overrides: dict[str, Any] = {"stages": list(stages), "output.rejects": False}
    if input_format:
        overrides["input.format"] = input_format
    return load_config(DEFAULT_CONFIG, overrides)


def _tokenize_only(cfg: PipelineConfig, tokenizer: str) -> PipelineConfig:
    """The same config re-reading documents: no stage, no rejects, shards with the study's tokenizer."""
    from pipeline.readers import InputConfig

    return dataclasses.replace(cfg, input=InputConfig(format="documents"), stages=(),
                               tokenize=dataclasses.replace(cfg.tokenize, tokenizer=str(tokenizer)),
                               output=dataclasses.replace(cfg.output, rejects=False))


def _tokenizer(study: Study, given: str | Path | None, vocab_size: int, coverage: float,
               sentences: int) -> dict[str, Any]:
    """The study's one tokenizer: ``given``, or trained on the extraction-only input (not on any arm)."""
    if given is not None:
        import sentencepiece as spm

        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"--tokenizer: {path} not found")
        vocab = spm.SentencePieceProcessor(model_file=str(path)).vocab_size()
        return {"model": str(path), "sha256": file_sha256(path), "vocab_sha256": vocab_sha256(path),
                "vocab_size": vocab, "trained_on": "a --tokenizer file"}
    from pipeline.tokenizer_training import train_tokenizer

    material = {"inputs": study.input_key, "format": study.input_format, "vocab_size": vocab_size,
                "character_coverage": coverage, "sentences": sentences, "version": _version()}

    def build(directory: Path) -> dict[str, Any]:
        crawl = study.crawl()
        report = train_tokenizer([str(crawl / "documents")], directory / "tokenizer", vocab_size=vocab_size,
                                 character_coverage=coverage, input_sentence_size=sentences, num_threads=1)
        return {"model": report.model, "sha256": report.sha256, "vocab_sha256": vocab_sha256(Path(report.model)),
                "vocab_size": report.vocab_size,
                "bytes_per_token": report.bytes_per_token, "trained_on": "the extraction-only input",
                "train_documents": report.train_documents, "sentences_cap": sentences}

    result, _ = cached_step(study.root / "tokenizer" / content_key(material)[:16], material, build)
    return result


def vocab_sha256(model: Path) -> str:
    """sha256 of the pieces, scores and types: what decides every token id. The .model file's own hash
    also covers the path it was trained into (sentencepiece stores its trainer spec), so two studies
    that trained the same tokenizer in different directories compare by this one."""
    import hashlib

    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    digest = hashlib.sha256()
    for i in range(sp.vocab_size()):
        kind = "u" if sp.is_unknown(i) else "c" if sp.is_control(i) else "b" if sp.is_byte(i) else "n"
        digest.update(f"{sp.id_to_piece(i)}\t{sp.get_score(i)!r}\t{kind}\n".encode())
    return digest.hexdigest()


def _reference_shards(study: Study, tok: dict[str, Any]) -> dict[str, Any]:
    material = {"reference": study.reference.key, "tokenizer": tok["sha256"]}

    def build(directory: Path) -> dict[str, Any]:
        texts = write_jsonl(directory / "texts.jsonl", study.reference.texts, "reference")
        cfg = _tokenize_only(load_config(DEFAULT_CONFIG, {"source": "reference"}), tok["model"])
        stats = _run(study, directory / "run", cfg, [str(texts)])
        return {"tokens": stats["shards"]["tokens"], "shards": str(directory / "run" / "shards")}

    result, _ = cached_step(study.root / "reference" / content_key(material)[:16], material, build)
    return result


def _arm(study: Study, recipe: Recipe, tok: dict[str, Any], budget: Any) -> dict[str, Any]:
    """Curate and shard one recipe (cached by recipe content, input and tokenizer), then check that
    its kept text does not contain the reference."""
    material = {"recipe": recipe.fingerprint(), "inputs": study.input_key, "format": study.input_format,
                "tokenizer": tok["sha256"], "version": _version()}
    key = content_key(material)
    directory = study.root / "arms" / key[:16]
    result, reused = cached_step(directory, material, lambda d: _curate(study, recipe, tok, d))
    overlap, _ = cached_step(directory / "overlap" / study.reference.key[:16], study.reference.key,
                             lambda d: study.overlap.measure(_texts(directory / "curated" / "documents")))
    check_overlap(f"the kept documents of arm '{recipe.name}'", overlap, study.max_overlap)
    tokens = budget.steps * budget.tokens_per_step
    mixture, _ = cached_step(directory / "mixtures" / str(tokens), tokens,
                             lambda d: _mixture(recipe, directory, d, tokens))
    report = {**result, "arm": key[:16], "reused": reused, "reference_overlap": overlap, **mixture}
    return {"key": key, "dir": directory, "report": report, "mixture": mixture["mixture"]}


def _texts(documents: Path) -> Any:
    from pipeline.tokenizer_training import iter_texts

    return iter_texts([str(documents)])


def _curate(study: Study, recipe: Recipe, tok: dict[str, Any], directory: Path) -> dict[str, Any]:
    classifier, quality_model, min_score = None, None, None
    if recipe.classifier is not None:
        classifier, quality_model, min_score = _classifier(study, recipe, directory)
    cfg = recipe.config(quality_model, min_score)
    stats = _run(study, directory / "curated", cfg)
    if stats["totals"]["kept"] == 0:
        raise AblationError(f"recipe '{recipe.name}' ({recipe.path}) kept no documents of {study.inputs}")
    shards = _run(study, directory / "shards", _tokenize_only(cfg, tok["model"]),
                  [str(directory / "curated" / "documents")])
    if classifier is not None:
        stage = next((s for s in stats["funnel"] if s["stage"] in CLASSIFIER_STAGE), None)
        classifier["kept_by_stage"] = None if stage is None or not stage["in"] else stage["out"] / stage["in"]
    return {"stages": list(cfg.stages), "records": stats["totals"]["records"], "kept": stats["totals"]["kept"],
            "funnel": stats["funnel"], "classifier": classifier, "tokens": shards["shards"]["tokens"],
            "documents": shards["shards"]["documents"]}


def _classifier(study: Study, recipe: Recipe, directory: Path) -> tuple[dict[str, Any], Path, float | None]:
    """Train the arm's classifier; with ``keep_fraction``, its threshold is the quantile of the scores
    of the documents that reach the classifier: the output of the recipe's earlier stages."""
    from filters.quality_classifier import QualityClassifier, train_quality_classifier

    spec = recipe.classifier
    assert spec is not None
    model = directory / "quality.bin"
    positives = classifier_texts(spec.positives, study.reference.digests, spec.max_texts)
    negative_paths = [study.crawl() / "documents"] if spec.negatives == "random" else list(spec.negatives)
    negatives = classifier_texts(negative_paths, study.reference.digests, spec.max_texts)
    report = train_quality_classifier(positives, negatives, model, **spec.train)
    info: dict[str, Any] = {**report.as_dict(), "positives": [str(p) for p in spec.positives],
                            "negatives": spec.negatives if spec.negatives == "random" else list(map(str, spec.negatives)),
                            "keep_fraction": spec.keep_fraction, "min_score_from_quantile": None}
    if spec.keep_fraction is None:
        return info, model, None
    before = directory / "before-classifier"
    stats = _run(study, before, _prefix_config(recipe, model))
    scorer = QualityClassifier(model_path=str(model))
    scores = np.array([s for t in _texts(before / "documents") if (s := scorer.score(t)) is not None])
    if not scores.size:
        raise AblationError(f"recipe '{recipe.name}': no document reaches its classifier")
    min_score = float(np.quantile(scores, 1 - spec.keep_fraction))
    info.update(min_score_from_quantile=min_score, reaching_classifier=int(stats["totals"]["kept"]),
                kept_of_reaching=float((scores >= min_score).mean()))
    return info, model, min_score


def _prefix_config(recipe: Recipe, model: Path) -> PipelineConfig:
    """The recipe's own config cut before its classifier, without rejects."""
    cfg = recipe.config(model)
    return dataclasses.replace(cfg, stages=tuple(recipe.stages_before_classifier()),
                               output=dataclasses.replace(cfg.output, rejects=False))


def _mixture(recipe: Recipe, arm: Path, directory: Path, tokens: int) -> dict[str, Any]:
    from pipeline.mix import mix

    source = json.loads((arm / "shards" / "shards" / "manifest.json").read_text(encoding="utf-8"))["source"]
    spec = recipe.mixture or _one_source_mixture(directory, source, tokens)
    result = mix(spec, {source: arm / "shards"}, directory, token_budget=tokens)
    return {"mixture": str(result.path), "warnings": result.warnings,
            "mixture_epochs": {s.name: s.epochs for s in result.mixture.sources}}


def _one_source_mixture(directory: Path, source: str, tokens: int) -> Path:
    """A mixture recipe giving the arm's whole source weight 1 (no other source is ablated)."""
    path = directory / "mixture.yaml"
    path.write_text(yaml.safe_dump({"name": "ablation-arm", "reference": "refinery ablate",
                                    "token_budget": tokens, "max_epochs": 4, "weights": {source: 1.0}}))
    return path


def _run_seed(study: Study, arm: dict[str, Any], arms: dict[str, dict[str, Any]], seed: int, model: str | Path,
              train_config: str | Path, tokens: int, ref: dict[str, Any], stride: int | None,
              cross_windows: int, mc: dict[str, dict[str, Any]], tok: dict[str, Any]) -> dict[str, Any]:
    """One proxy run (cached by arm, model, train settings and seed), scored on the whole reference,
    on every arm's held-out split and on the ``--mc-tasks``."""
    from trainer.evaluate import evaluate
    from trainer.train import pretrain

    cfg = train_settings(train_config, tokens, seed)
    material = {"arm": arm["key"], "model": Path(model).read_text(encoding="utf-8"),
                "train": dataclasses.asdict(cfg), "mixture": file_sha256(Path(arm["mixture"]))}
    directory = arm["dir"] / "runs" / content_key(material)[:16]

    def train(d: Path) -> dict[str, Any]:
        log.info("ablate: training %s seed %d for %d steps", arm["dir"].name, seed, cfg.steps)
        result = pretrain(Path(model), Path(arm["mixture"]), d / "train", train_config=cfg)
        trained = result.step * cfg.tokens_per_step
        windows = _train_windows(Path(arm["mixture"]), cfg)
        return {"seed": seed, "steps": result.step, "tokens_trained": trained, "epochs": trained / (windows * cfg.seq_len),
                "final_loss": result.losses[-1], "first_loss": result.losses[0], "checkpoint": str(result.checkpoint)}

    run, reused = cached_step(directory, material, train)
    scored, _ = cached_step(directory / "reference" / f"{study.reference.key[:16]}-{stride or 0}",
                            {"reference": ref, "stride": stride}, lambda d: _score(run["checkpoint"], ref, stride, d))
    cross = {}
    for name, other in arms.items():
        value, _ = cached_step(directory / "cross" / f"{other['key'][:16]}-{cross_windows}", other["mixture"],
                               lambda d, o=other: evaluate(run["checkpoint"], o["mixture"], max_windows=cross_windows)["all"])
        cross[name] = value
    return {**run, "reused": reused, "reference": scored, "cross": cross,
            "mc": {name: _score_mc(run["checkpoint"], directory, task, tok) for name, task in mc.items()}}


def _mc_tasks(paths: Sequence[str | Path], shots: int) -> dict[str, dict[str, Any]]:
    """Every ``--mc-tasks`` file read and checked by eval-mc's own reader (an :class:`MCError`, a
    ValueError, names file and line), with what the report needs of it: the sha256 that keys its
    cached scores, the items scored, and the accuracy of guessing at random.

    A guesser picks item i right with p_i = 1 / its choices, so its accuracy has mean mean(p_i) and
    standard deviation sqrt(sum p_i (1 - p_i)) / n: the noise a proxy at chance shows on this many items.
    """
    from trainer.mc_tasks import read_task_files

    tasks = {}
    for name, (_, items) in read_task_files(list(paths), shots).items():
        p = np.array([1 / len(item.choices) for item in items])
        tasks[name] = {"path": Path(name), "sha256": file_sha256(Path(name)), "shots": shots, "items": len(items),
                       "chance": float(p.mean()), "chance_std": float(np.sqrt((p * (1 - p)).sum()) / len(p))}
    return tasks


def _score_mc(checkpoint: str, run_dir: Path, task: dict[str, Any], tok: dict[str, Any]) -> dict[str, Any]:
    """One run's scores on one task, cached under the run by the task file's bytes and the shots (not its
    path), so a changed file is scored again and a new seed leaves the old seeds' scores alone.
    eval-mc's whole report, per item, is kept beside them; the study's JSON holds the accuracies."""
    from trainer.load import dump_json
    from trainer.multiple_choice import evaluate_mc

    def build(d: Path) -> dict[str, Any]:
        report = evaluate_mc(checkpoint, [task["path"]], shots=task["shots"], tokenizer=tok["model"])
        dump_json(d / "eval-mc.json", report)
        scores = next(iter(report["tasks"].values()))
        return {k: v for k, v in scores.items() if k != "per_item"} | {"step": report["step"],
                                                                        "report": str(d / "eval-mc.json")}

    material = {"task_sha256": task["sha256"], "shots": task["shots"]}
    result, reused = cached_step(run_dir / "mc" / f"{task['sha256'][:16]}-{task['shots']}", material, build)
    return {**result, "reused": reused}


def _score(checkpoint: str, ref: dict[str, Any], stride: int | None, directory: Path) -> dict[str, Any]:
    from pipeline.ablate_score import score_reference

    score = score_reference(Path(checkpoint), Path(ref["shards"]), stride=stride)
    path = directory / "documents.npz"
    np.savez(path, nats=score.nats, bytes=score.bytes)
    return {**score.summary(), "per_document": str(path)}


def _train_windows(mixture: Path, cfg: Any) -> int:
    """Windows training may read (held-out windows excluded), as the trainer's loader counts them."""
    from trainer.data import MixtureLoader
    from trainer.mixture import load_mixture

    loader = MixtureLoader(load_mixture(mixture), seq_len=cfg.seq_len, batch_size=cfg.micro_batch_size, seed=0,
                           heldout_every=cfg.heldout_every)
    return sum(s.n_train for s in loader.sources)


# -- the command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refinery ablate",
        description="Curate the same input with each recipe, train the same proxy model on each result for "
                    "the same tokens and seeds, and compare them on one held-out reference.",
        allow_abbrev=False)
    parser.add_argument("--recipes", nargs="+", required=True, metavar="RECIPE.yaml",
                        help="recipe files (configs/ablations/*.yaml); at least one")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="WARC files/globs, or documents Parquet/JSONL with --input-format documents")
    parser.add_argument("--input-format", default=None, help="override every recipe's input.format (e.g. documents)")
    parser.add_argument("--out", required=True, help="study directory; steps already done there are reused")
    parser.add_argument("--heldout", nargs="+", required=True, metavar="PATH",
                        help="reference texts (files or dirs: .txt, .jsonl, .parquet, .raw) that no arm and no "
                             "classifier learns from; checked by n-gram overlap")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--tokens", type=int, default=None,
                        help="training tokens per run (default: 20 x the proxy's parameters)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="proxy model YAML (default proxy-tiny)")
    parser.add_argument("--train-config", default=str(DEFAULT_TRAIN),
                        help="training YAML (default configs/ablations/train/cpu.yaml)")
    parser.add_argument("--tokenizer", default=None, metavar="MODEL",
                        help="a sentencepiece .model for the whole study (default: trained on the input)")
    parser.add_argument("--reference-chunks", type=int, default=None, help="cap the reference at its first N chunks")
    parser.add_argument("--vocab-size", type=int, default=2000, help="trained tokenizer's vocabulary (default 2000)")
    parser.add_argument("--character-coverage", type=float, default=0.9995,
                        help="trained tokenizer's character coverage; rarer characters fall back to bytes")
    parser.add_argument("--tokenizer-sentences", type=int, default=2_000_000,
                        help="sentences of the input sampled to train the tokenizer (default 2000000)")
    parser.add_argument("--eval-stride", type=int, default=None,
                        help="reference windows start every N tokens (default: the training context, no overlap)")
    parser.add_argument("--cross-windows", type=int, default=64, help="held-out windows per arm in the cross matrix")
    parser.add_argument("--max-overlap", type=float, default=DEFAULT_MAX_OVERLAP,
                        help="largest share of the reference's 13-grams another set may contain (default 0.01)")
    from trainer.mc_tasks import add_task_arguments

    add_task_arguments(parser, prefix="mc-", required=False)  # eval-mc's --tasks/--shots, optional here
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery ablate``: 0 report written, 1 a run failed, 2 a usage, recipe or reference mistake
    (one line). Flags it does not know go to Beam (as for ``refinery run``)."""
    parser = build_parser()
    try:
        args, beam_args = parser.parse_known_args(argv)
        refuse_abbreviations(parser, beam_args)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        result = ablate(args.recipes, args.input, args.out, heldout=args.heldout, seeds=args.seeds,
                        token_budget=args.tokens, model=args.model, train_config=args.train_config,
                        tokenizer=args.tokenizer, reference_chunks=args.reference_chunks, vocab_size=args.vocab_size,
                        character_coverage=args.character_coverage, tokenizer_sentences=args.tokenizer_sentences,
                        eval_stride=args.eval_stride, cross_windows=args.cross_windows, max_overlap=args.max_overlap,
                        input_format=args.input_format, beam_args=beam_args, mc_tasks=args.mc_tasks or (),
                        mc_shots=args.mc_shots)
    except (ValueError, FileNotFoundError) as exc:  # recipe, reference, config, mix, tokenizer and train errors
        print(f"refinery ablate: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"refinery ablate: failed: {exc}", file=sys.stderr)
        return 1
    from pipeline.ablate_report import format_summary

    print(format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
