"""``refinery ablate``: does a curation choice make a better model? Train the same proxy on each recipe.

The method is the one FineWeb and DCLM use for their filter ablations (see docs/ablations.md): curate
the same crawl with each recipe, train the same small model for the same number of tokens with the
same seeds on each result, and compare the models on one held-out reference text that no recipe
(and no recipe's classifier) ever saw. Everything that is not the recipe is held fixed:

- one tokenizer, trained once on the union of every recipe's kept documents, tokenizes them all, so
  losses and bits per byte are comparable;
- one token budget: every run takes ``ceil(tokens / tokens_per_step)`` optimizer steps, so a recipe
  that kept less text repeats it (its epochs are recorded), as a real ablation at a fixed compute does;
- one held-out reference set (a fixed split of the shared positive texts by default, or
  ``--heldout``), tokenized once and scored by every model in bits per byte.

A recipe file (``configs/ablations/*.yaml``) wraps a pipeline config; see :func:`load_recipe` and
docs/ablations.md. Outputs, under ``out``: ``crawl/`` (extraction only, the classifiers' random
negatives), ``recipes/<name>/{curated,shards,mixture,seed-<s>}``, ``tokenizer.*``, ``reference/``,
and the report ``ablation.json`` + ``ablation.html`` (:mod:`pipeline.ablate_report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import random
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from filters.config import ConfigError, load_yaml, read_mapping
from filters.text_sources import SUPPORTED_SUFFIXES, chunk_plain_text, read_texts
from pipeline.cli import refuse_abbreviations
from pipeline.config import DEFAULT_CONFIG, PipelineConfig, load_config

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
# The shared real data sits beside the checkout (DESIGN.md, "Real data for tests and benchmarks").
DEFAULT_REFERENCE_ROOT = REPO.parent / "shared" / "data" / "quality" / "positive"
DEFAULT_MODEL = REPO / "configs" / "model" / "proxy-tiny.yaml"
DEFAULT_TRAIN = REPO / "configs" / "train" / "tiny.yaml"
# One chunk in five of the shared positive texts is the reference; the rest may train classifiers.
REFERENCE_FRACTION = 0.2
REFERENCE_SALT = "refinery-ablate-reference-v1"
RAW_TEXT_SUFFIXES = (".raw",)  # WikiText's plain-text dumps (wiki.test.raw): paragraphs, blank lines
_RECIPE_KEYS = {"name", "description", "pipeline", "overrides", "classifier", "mixture"}
_CLASSIFIER_KEYS = {"positives", "negatives", "max_texts", "train", "keep_fraction"}


class AblationError(ValueError):
    """A recipe or input that cannot make an ablation; the message names the file and key."""


@dataclass(frozen=True)
class ClassifierSpec:
    """Train a quality classifier for one recipe: the positive set is the ablated choice."""

    positives: tuple[Path, ...]
    # "random": pages of the crawl itself after extraction only (LLaMA's and DCLM's negatives).
    negatives: str | tuple[Path, ...] = "random"
    # Texts per class at most (a sample is enough; the classifier balances the classes anyway).
    max_texts: int = 5000
    # Keyword arguments of filters.quality_classifier.train_quality_classifier (dim, epoch, lr, ...).
    train: dict[str, Any] = field(default_factory=dict)
    # DCLM's rule instead of a fixed min_score: keep the top fraction of crawl pages by score (Li et al.
    # 2024 keep the top 10%). The threshold is that quantile of the scores of the extraction-only crawl,
    # so arms whose classifiers score on different scales keep comparable shares. None: use min_score.
    keep_fraction: float | None = None


@dataclass(frozen=True)
class Recipe:
    """One arm of the ablation: a pipeline config plus what only the ablation needs."""

    name: str
    path: Path
    pipeline: Path
    overrides: dict[str, Any]
    classifier: ClassifierSpec | None = None
    mixture: Path | None = None
    description: str = ""

    def config(self, quality_model: Path | None = None, min_score: float | None = None) -> PipelineConfig:
        """The recipe's pipeline config; ``quality_model`` fills ``quality_classifier.model_path``."""
        overrides = dict(self.overrides)
        if quality_model is not None:
            overrides["quality_classifier.model_path"] = str(quality_model)
        if min_score is not None:
            overrides["quality_classifier.min_score"] = min_score
        try:
            return load_config(self.pipeline, overrides)
        except ConfigError as exc:
            raise AblationError(f"{self.path}: pipeline config: {exc}") from None


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe file. Its keys (all optional but the file itself):

    ``name`` (default: file stem), ``description``, ``pipeline`` (a pipeline config path, default
    configs/commoncrawl.yaml), ``overrides`` (nested mapping merged key by key into that config;
    lists such as ``stages`` replace), ``classifier`` ({positives, negatives, max_texts, train}) and
    ``mixture`` (a mixture recipe YAML over the recipe's own source). The ablation-only keys live
    outside the pipeline config because its loader rejects unknown keys. Relative paths are looked
    up beside the recipe file first, then from the repository root.
    """
    path = Path(path)
    try:
        raw = read_mapping(path, "ablation recipe")
    except ConfigError as exc:
        raise AblationError(str(exc)) from None
    _no_unknown(raw, _RECIPE_KEYS, path, "")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise AblationError(f"{path}: key 'overrides' must be a mapping of pipeline config keys")
    classifier = _classifier(raw.get("classifier"), path)
    flat = _flatten(overrides)
    stages = flat.get("stages")
    if classifier and (stages is None or "quality_classifier" not in stages):
        raise AblationError(f"{path}: key 'classifier' is set but overrides.stages has no quality_classifier")
    recipe = Recipe(
        name=str(raw.get("name") or path.stem), path=path,
        pipeline=_resolve(raw.get("pipeline") or DEFAULT_CONFIG, path, "pipeline"), overrides=flat,
        classifier=classifier, mixture=_resolve(raw["mixture"], path, "mixture") if raw.get("mixture") else None,
        description=str(raw.get("description") or ""),
    )  # fmt: skip
    if not classifier:
        recipe.config()  # fail now, not after the other recipes ran, on a bad key or stage name
    return recipe


def _no_unknown(raw: dict[str, Any], known: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise AblationError(f"{path}: unknown key '{where}{unknown[0]}' (known: {', '.join(sorted(known))})")


def _classifier(raw: Any, path: Path) -> ClassifierSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw.get("positives"):
        raise AblationError(f"{path}: key 'classifier' needs 'positives' (a list of paths)")
    _no_unknown(raw, _CLASSIFIER_KEYS, path, "classifier.")
    positives = tuple(_resolve(p, path, "classifier.positives") for p in _as_list(raw["positives"]))
    negatives_raw = raw.get("negatives", "random")
    negatives: str | tuple[Path, ...] = "random" if negatives_raw == "random" else tuple(
        _resolve(p, path, "classifier.negatives") for p in _as_list(negatives_raw))
    max_texts = raw.get("max_texts", 5000)
    if isinstance(max_texts, bool) or not isinstance(max_texts, int) or max_texts < 2:
        raise AblationError(f"{path}: key 'classifier.max_texts' must be an integer >= 2, got {max_texts!r}")
    train = raw.get("train") or {}
    if not isinstance(train, dict):
        raise AblationError(f"{path}: key 'classifier.train' must be a mapping of classifier settings")
    keep = raw.get("keep_fraction")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1):
        raise AblationError(f"{path}: key 'classifier.keep_fraction' must be in (0, 1], got {keep!r}")
    return ClassifierSpec(positives, negatives, max_texts, dict(train), None if keep is None else float(keep))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _resolve(value: Any, recipe: Path, key: str) -> Path:
    given = Path(str(value))
    for candidate in ([given] if given.is_absolute() else [recipe.parent / given, REPO / given]):
        if candidate.exists():
            return candidate.resolve()
    raise AblationError(f"{recipe}: key '{key}': {value} not found (beside the recipe or under {REPO})")


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested overrides -> dotted keys, so a section is merged into the base config, not replaced."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# -- texts: the held-out reference and the classifiers' positives ------------------------------------


def iter_chunks(path: Path) -> Iterator[tuple[str, str]]:
    """(chunk id, text) for every text under ``path``: what read_texts reads, plus WikiText ``.raw``.

    Chunk ids are ``<path relative to the given root>#<index>`` and do not depend on where the data
    is mounted, so the reference split is the same on every machine.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        rel = file.relative_to(path).as_posix() if path.is_dir() else file.name
        name = file.name.lower()
        if name.endswith(RAW_TEXT_SUFFIXES):
            texts: Iterator[str] = chunk_plain_text(file.read_text(encoding="utf-8", errors="replace"))
        elif name.endswith(SUPPORTED_SUFFIXES):
            texts = read_texts(file)
        else:
            log.info("ablate: skipping %s (not one of %s)", file, ", ".join(SUPPORTED_SUFFIXES + RAW_TEXT_SUFFIXES))
            continue
        for index, text in enumerate(texts):
            yield f"{rel}#{index}", text


def split_position(chunk_id: str) -> float:
    """The deterministic split: a salted SHA-1 of the chunk id, read as a number in [0, 1); a chunk
    is in the default reference when its position is below the reference fraction."""
    digest = hashlib.sha1(f"{REFERENCE_SALT}:{chunk_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def text_digest(text: str) -> str:
    return hashlib.sha1(text.strip().encode("utf-8")).hexdigest()


@dataclass
class Reference:
    """The held-out reference texts and an account of where they came from."""

    texts: list[str]
    digests: set[str]
    description: dict[str, Any]


def build_reference(heldout: Sequence[str | Path] | None, *, fraction: float = REFERENCE_FRACTION,
                    max_chunks: int | None = None) -> Reference:
    """``heldout`` paths are the reference, whole. Without them: the English chunks of the shared
    positive texts whose :func:`split_position` is below ``fraction``; the other chunks are what
    the recipes' classifiers may train on (positives whose text is in the reference are removed)."""
    from filters.langid import predict_language

    chosen: list[tuple[float, str, str]] = []  # (split hash, file, text)
    files: dict[str, dict[str, int]] = {}
    roots = [Path(p) for p in heldout] if heldout else [DEFAULT_REFERENCE_ROOT]
    if not heldout and not DEFAULT_REFERENCE_ROOT.is_dir():
        raise AblationError(f"no --heldout given and the default reference {DEFAULT_REFERENCE_ROOT} is missing")
    for root in roots:
        if not root.exists():
            raise AblationError(f"--heldout: {root} not found")
        for chunk_id, text in iter_chunks(root):
            name = f"{root.name}/{chunk_id.split('#')[0]}"
            files.setdefault(name, {"chunks": 0, "reference": 0})["chunks"] += 1
            position = split_position(chunk_id)
            if heldout is None:
                if position >= fraction:
                    continue
                lang, score = predict_language(text)
                if lang != "en" or score < 0.5:  # the proxies are English models; so is the reference
                    continue
            chosen.append((position, name, text))
    # A cap keeps the chunks with the lowest split hash: a spread over every file, not the first files.
    chosen = sorted(chosen)[:max_chunks] if max_chunks else chosen
    for _, name, _ in chosen:
        files[name]["reference"] += 1
    texts = [text for _, _, text in chosen]
    if not texts:
        raise AblationError(f"the held-out reference is empty (looked in {', '.join(map(str, roots))})")
    rule = ("every chunk of the --heldout paths" if heldout else
            f"English chunks (lid.176 'en' >= 0.5) whose sha1('{REFERENCE_SALT}:<file>#<chunk>') / 2^64 < "
            f"{fraction:g}; chunks are read_texts' ~300-word pieces; all other chunks may train classifiers")
    description = {"roots": [str(r) for r in roots], "default_split": heldout is None, "rule": rule,
                   "fraction": None if heldout else fraction, "max_chunks": max_chunks, "files": files,
                   "documents": len(texts), "bytes": sum(len(t.encode("utf-8")) for t in texts)}
    return Reference(texts, {text_digest(t) for t in texts}, description)


def write_jsonl(path: Path, texts: Sequence[str], source: str) -> Path:
    """Texts as our documents JSONL (id, source, text), which ``input.format: documents`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"id": f"{source}-{i:06d}", "source": source, "text": text}) + "\n")
    return path


def classifier_texts(paths: Sequence[Path], exclude: set[str], limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` texts from ``paths``, none of them a reference text, in a seeded random sample."""
    texts = [t for p in paths for _, t in iter_chunks(p) if text_digest(t) not in exclude]
    rng = random.Random(seed)
    return rng.sample(texts, limit) if len(texts) > limit else texts


# -- the budget ---------------------------------------------------------------------------------------


def train_settings(train_config: str | Path, tokens: int, seed: int) -> Any:
    """The run's TrainConfig: the file's settings with the seed and the steps the token budget buys.

    Periodic evaluation and checkpoints are off (the ablation evaluates once, at the end)."""
    from trainer.train_config import TrainConfig

    cfg = load_yaml(TrainConfig, train_config)
    steps = max(1, math.ceil(tokens / cfg.tokens_per_step))
    return dataclasses.replace(cfg, steps=steps, seed=seed, eval_every=0, checkpoint_every=0, progress=False,
                               warmup_steps=min(cfg.warmup_steps, steps))


# -- the ablation -------------------------------------------------------------------------------------


@dataclass
class AblationResult:
    out: Path
    report: dict[str, Any]
    json_path: Path
    html_path: Path


def ablate(
    recipes: Sequence[str | Path],
    inputs: Sequence[str],
    out: str | Path,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    token_budget: int = 200_000,
    model: str | Path = DEFAULT_MODEL,
    train_config: str | Path = DEFAULT_TRAIN,
    heldout: Sequence[str | Path] | None = None,
    reference_chunks: int | None = None,
    vocab_size: int = 2000,
    character_coverage: float = 0.9995,
    eval_windows: int = 256,
    input_format: str | None = None,
    beam_args: Sequence[str] = (),
) -> AblationResult:
    """Run every recipe on ``inputs``, train ``model`` on each for ``token_budget`` tokens per seed,
    evaluate all on one held-out reference, and write ``ablation.json`` + ``ablation.html`` in ``out``."""
    from filters.quality_classifier import train_quality_classifier
    from pipeline.ablate_report import write_report
    from pipeline.mix import mix
    from pipeline.run import run
    from pipeline.tokenizer_training import train_tokenizer

    loaded = [load_recipe(r) for r in recipes]
    if input_format:
        loaded = [dataclasses.replace(r, overrides={**r.overrides, "input.format": input_format}) for r in loaded]
    names = [r.name for r in loaded]
    if not loaded or len(set(names)) != len(names):
        raise AblationError(f"--recipes: need one or more recipes with distinct names, got {names}")
    if not seeds or len(set(seeds)) != len(seeds) or token_budget <= 0:
        raise AblationError(f"--seeds must be distinct and --tokens positive, got {list(seeds)} and {token_budget}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    reference = build_reference(heldout, max_chunks=reference_chunks)
    budget = train_settings(train_config, token_budget, seeds[0])

    # Curate. Recipes without a classifier go first: one with no stages doubles as the random negatives.
    curated: dict[str, dict[str, Any]] = {}
    classifiers: dict[str, dict[str, Any]] = {}
    negatives_dir: Path | None = None
    for recipe in sorted(loaded, key=lambda r: r.classifier is not None):
        rdir = root / "recipes" / recipe.name
        quality_model = None
        if recipe.classifier is not None:
            negatives_dir = negatives_dir or _extraction_only(run, inputs, root / "crawl", input_format, beam_args)
            quality_model = rdir / "quality.bin"
            spec = recipe.classifier
            positives = classifier_texts(spec.positives, reference.digests, spec.max_texts)
            negative_paths = [negatives_dir / "documents"] if spec.negatives == "random" else list(spec.negatives)
            negatives = classifier_texts(negative_paths, reference.digests, spec.max_texts)
            report = train_quality_classifier(positives, negatives, quality_model, **spec.train)
            min_score = None if spec.keep_fraction is None else _score_quantile(
                quality_model, negatives_dir / "documents", 1 - spec.keep_fraction)
            classifiers[recipe.name] = {**report.as_dict(), "positives": [str(p) for p in spec.positives],
                                        "negatives": spec.negatives if spec.negatives == "random"
                                        else [str(p) for p in spec.negatives],
                                        "keep_fraction": spec.keep_fraction, "min_score_from_quantile": min_score}
        cfg = recipe.config(quality_model, min_score if recipe.classifier else None)
        stats = run(list(inputs), str(rdir / "curated"), config=cfg, beam_args=beam_args, overwrite=True).stats
        if stats["totals"]["kept"] == 0:
            raise AblationError(f"recipe '{recipe.name}' ({recipe.path}) kept no documents of {inputs}")
        curated[recipe.name] = {"config": cfg, "stats": stats}
        if negatives_dir is None and not cfg.stages:
            negatives_dir = rdir / "curated"

    # One tokenizer for all recipes, then every recipe's documents and the reference as shards.
    tok = train_tokenizer([str(root / "recipes" / n / "curated") for n in names], root / "tokenizer",
                          vocab_size=vocab_size, character_coverage=character_coverage)
    shards: dict[str, dict[str, Any]] = {}
    for recipe in loaded:
        rdir = root / "recipes" / recipe.name
        cfg = _tokenize_only(curated[recipe.name]["config"], tok.model)
        stats = run([str(rdir / "curated" / "documents")], str(rdir / "shards"), config=cfg, beam_args=beam_args,
                    overwrite=True).stats
        mixture = mix(recipe.mixture or _one_source_mixture(rdir, cfg.source, budget.steps * budget.tokens_per_step),
                      {cfg.source: rdir / "shards"}, rdir / "mixture",
                      token_budget=budget.steps * budget.tokens_per_step)
        shards[recipe.name] = {"tokens": stats["shards"]["tokens"], "documents": stats["shards"]["documents"],
                               "mixture": str(mixture.path), "warnings": mixture.warnings,
                               "mixture_epochs": {s.name: s.epochs for s in mixture.mixture.sources},
                               "train_windows": _train_windows(mixture.path, budget)}
    ref_cfg = _tokenize_only(load_config(DEFAULT_CONFIG, {"source": "reference"}), tok.model)
    ref_stats = run([str(write_jsonl(root / "reference" / "texts.jsonl", reference.texts, "reference"))],
                    str(root / "reference" / "run"), config=ref_cfg, beam_args=beam_args, overwrite=True).stats
    ref_shards = root / "reference" / "run" / "shards"

    runs = {name: [_train_and_evaluate(name, seed, model, train_config, token_budget, root, shards, ref_shards,
                                       names, eval_windows) for seed in seeds] for name in names}
    report = {
        "inputs": list(inputs), "recipes_order": names, "seeds": list(seeds), "model": str(model),
        "train_config": dataclasses.asdict(budget) | {"seed": None},
        "token_budget": {"requested": token_budget, "steps": budget.steps, "tokens_per_step": budget.tokens_per_step,
                         "tokens": budget.steps * budget.tokens_per_step},
        "tokenizer": {"model": tok.model, "sha256": tok.sha256, "vocab_size": tok.vocab_size,
                      "trained_on": names, "bytes_per_token": tok.bytes_per_token},
        "reference": {**reference.description, "shards": str(ref_shards), "tokens": ref_stats["shards"]["tokens"]},
        "eval_windows": eval_windows,
        "recipes": {r.name: {"recipe": str(r.path), "description": r.description, "stages": list(
            curated[r.name]["config"].stages), "records": curated[r.name]["stats"]["totals"]["records"],
            "kept": curated[r.name]["stats"]["totals"]["kept"], "classifier": classifiers.get(r.name),
            **shards[r.name], "runs": runs[r.name]} for r in loaded},
    }
    json_path, html_path = write_report(root, report)
    return AblationResult(root, json.loads(json_path.read_text(encoding="utf-8")), json_path, html_path)


def _extraction_only(run: Any, inputs: Sequence[str], out: Path, input_format: str | None,
                     beam_args: Sequence[str]) -> Path:
    """The crawl after extraction and no filter: the "random pages" a classifier learns to reject."""
    overrides: dict[str, Any] = {"stages": [], "output.rejects": False}
    if input_format:
        overrides["input.format"] = input_format
    run(list(inputs), str(out), config=load_config(DEFAULT_CONFIG, overrides), beam_args=beam_args, overwrite=True)
    return out


def _score_quantile(model: Path, crawl_documents: Path, q: float) -> float:
    """The ``q`` quantile of the classifier's scores over the extraction-only crawl's pages."""
    import numpy as np

    from filters.quality_classifier import QualityClassifier

    scorer = QualityClassifier(model_path=str(model))
    scores = [s for _, text in iter_chunks(crawl_documents) if (s := scorer.score(text)) is not None]
    return float(np.quantile(scores, q)) if scores else 0.5


def _tokenize_only(cfg: PipelineConfig, tokenizer: str) -> PipelineConfig:
    """The same config re-reading documents: no stage, no rejects, shards with the shared tokenizer."""
    from pipeline.readers import InputConfig

    return dataclasses.replace(cfg, input=InputConfig(format="documents"), stages=(),
                               tokenize=dataclasses.replace(cfg.tokenize, tokenizer=str(tokenizer)),
                               output=dataclasses.replace(cfg.output, rejects=False))


def _one_source_mixture(rdir: Path, source: str, tokens: int) -> Path:
    """A mixture recipe giving the recipe's whole source weight 1 (no other source is ablated)."""
    path = rdir / "mixture.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": f"ablation-{rdir.name}", "reference": "refinery ablate",
                                    "token_budget": tokens, "max_epochs": 4, "weights": {source: 1.0}}))
    return path


def _train_windows(mixture: Path, cfg: Any) -> int:
    """Windows training may read (held-out windows excluded), as the trainer's loader counts them."""
    from trainer.data import MixtureLoader
    from trainer.mixture import load_mixture

    loader = MixtureLoader(load_mixture(mixture), seq_len=cfg.seq_len, batch_size=cfg.micro_batch_size, seed=0,
                           heldout_every=cfg.heldout_every)
    return sum(s.n_train for s in loader.sources)


def _train_and_evaluate(name: str, seed: int, model: str | Path, train_config: str | Path, tokens: int, root: Path,
                        shards: dict[str, dict[str, Any]], ref_shards: Path, names: Sequence[str],
                        eval_windows: int) -> dict[str, Any]:
    """One proxy run: train from scratch, then bits per byte on the reference and on every recipe."""
    from trainer.evaluate import evaluate
    from trainer.train import pretrain

    cfg = train_settings(train_config, tokens, seed)
    run_dir = root / "recipes" / name / f"seed-{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh run: the trainer refuses a directory that holds checkpoints
    log.info("ablate: training %s seed %d for %d steps", name, seed, cfg.steps)
    result = pretrain(Path(model), Path(shards[name]["mixture"]), run_dir, train_config=cfg)
    reference = evaluate(run_dir, ref_shards, max_windows=eval_windows)
    cross = {other: evaluate(run_dir, shards[other]["mixture"], max_windows=eval_windows)["all"] for other in names}
    tokens_trained = result.step * cfg.tokens_per_step
    return {"seed": seed, "steps": result.step, "tokens_trained": tokens_trained,
            "epochs": tokens_trained / (shards[name]["train_windows"] * cfg.seq_len),
            "final_loss": result.losses[-1], "first_loss": result.losses[0], "checkpoint": str(result.checkpoint),
            "reference": {**reference["all"], "data": reference["data"]}, "cross": cross}


# -- the command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refinery ablate",
        description="Curate the same input with each recipe, train the same proxy model on each result for "
                    "the same tokens and seeds, and compare them on one held-out reference set.",
        allow_abbrev=False)
    parser.add_argument("--recipes", nargs="+", required=True, metavar="RECIPE.yaml",
                        help="recipe files (configs/ablations/*.yaml); at least one")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="WARC files/globs, or documents Parquet/JSONL with --input-format documents")
    parser.add_argument("--input-format", default=None, help="override every recipe's input.format (e.g. documents)")
    parser.add_argument("--out", required=True, help="output directory (report: ablation.json, ablation.html)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--tokens", type=int, default=200_000, help="training tokens per run (default 200000)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="proxy model YAML (default proxy-tiny)")
    parser.add_argument("--train-config", default=str(DEFAULT_TRAIN), help="training YAML (default train/tiny)")
    parser.add_argument("--heldout", nargs="+", default=None, metavar="PATH",
                        help="reference texts (files or dirs); default: a fixed split of the shared positives")
    parser.add_argument("--reference-chunks", type=int, default=None, help="cap the reference at N chunks")
    parser.add_argument("--vocab-size", type=int, default=2000, help="shared tokenizer vocabulary (default 2000)")
    parser.add_argument("--character-coverage", type=float, default=0.9995,
                        help="tokenizer character coverage; the rarest characters fall back to bytes (default "
                             "0.9995: a small vocabulary cannot hold every CJK character a raw crawl has)")
    parser.add_argument("--eval-windows", type=int, default=256, help="held-out windows per evaluation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery ablate``: 0 report written, 1 a run failed, 2 a usage or recipe mistake (one line).

    Flags it does not know go to Beam (as for ``refinery run``)."""
    parser = build_parser()
    try:
        args, beam_args = parser.parse_known_args(argv)
        refuse_abbreviations(parser, beam_args)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        result = ablate(args.recipes, args.input, args.out, seeds=args.seeds, token_budget=args.tokens,
                        model=args.model, train_config=args.train_config, heldout=args.heldout,
                        reference_chunks=args.reference_chunks, vocab_size=args.vocab_size,
                        character_coverage=args.character_coverage,
                        eval_windows=args.eval_windows, input_format=args.input_format, beam_args=beam_args)
    except (ValueError, FileNotFoundError) as exc:  # recipe, config, mix, tokenizer and train errors
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
