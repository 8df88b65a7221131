"""Ablation recipes: a pipeline config plus what only an ablation needs (docs/ablations.md).

A recipe file names a base pipeline config, overrides merged into it, and optionally a quality
classifier to train for the arm. The ablation-only keys live outside the pipeline config because
its loader rejects unknown keys. :meth:`Recipe.fingerprint` is the content the arm's cache key is
built from: the resolved pipeline config and the bytes of every file the arm reads besides the input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.config import ConfigError, read_mapping
from pipeline.config import DEFAULT_CONFIG, PipelineConfig, load_config

REPO = Path(__file__).resolve().parent.parent
_RECIPE_KEYS = {"name", "description", "pipeline", "overrides", "classifier", "mixture"}
_CLASSIFIER_KEYS = {"positives", "negatives", "max_texts", "train", "keep_fraction"}
# Stands in for the classifier the ablation trains, so a recipe's config can be checked before it exists.
_PLACEHOLDER_MODEL = Path("quality.bin")


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
    # DCLM's rule instead of a fixed min_score: keep the top fraction of pages by score (Li et al. 2024
    # keep the top 10%). The threshold is that quantile of the scores of the documents that reach the
    # classifier (the output of the stages before it), so the stage keeps that share of what it sees,
    # and arms whose classifiers score on different scales keep comparable shares. None: min_score.
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

    def stages_before_classifier(self) -> list[str]:
        """The stages whose output is what the classifier sees (for ``keep_fraction``)."""
        stages = list(self.overrides.get("stages") or [])
        return stages[: stages.index("quality_classifier")] if "quality_classifier" in stages else stages

    def fingerprint(self) -> dict[str, Any]:
        """What decides this arm's curated output, besides the input: its cache key's recipe part.

        The resolved config (without the classifier's model path, which the ablation fills in) and
        the sha256 of every positive, negative and mixture file, so an edited positive set re-runs."""
        cfg = dataclasses.asdict(self.config(_PLACEHOLDER_MODEL if self.classifier else None))
        (cfg.get("quality_classifier") or {}).pop("model_path", None)
        files: dict[str, str] = {}
        if self.classifier:
            paths = list(self.classifier.positives)
            if self.classifier.negatives != "random":
                paths += list(self.classifier.negatives)
            for path in paths:
                for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
                    files[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
        if self.mixture:
            files[str(self.mixture)] = hashlib.sha256(self.mixture.read_bytes()).hexdigest()
        classifier = None if self.classifier is None else {
            **dataclasses.asdict(self.classifier), "positives": None, "negatives": self.classifier.negatives
            if self.classifier.negatives == "random" else None}
        return json.loads(json.dumps({"config": cfg, "classifier": classifier, "files": files}, default=str))


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
    recipe.config(_PLACEHOLDER_MODEL if classifier else None)  # fail now, not after the other recipes ran, on a bad key or stage name
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
