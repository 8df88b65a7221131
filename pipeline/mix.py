"""``refinery mix``: a recipe of per-source weights + per-source shards -> the trainer's mixture.json.

Naming. A source is named ``group`` or ``group/sub`` (``commoncrawl/en``, ``commoncrawl/q3``). A
run directory whose shards are split into ``shards/<sub>/manifest.json`` gives sub-sources
``<name>/<sub>``. A recipe key matches the source of that name and every source under it; the most
specific key wins. A key matched by several sources splits its weight among them in proportion to
their tokens, which samples the group exactly as if its shards were one source.

Checks, each naming the recipe file and key: weights must be non-negative and add up to 1; a key
with weight must have a source with tokens; every source given must match a key; all sources must
share one tokenizer. A source the budget would repeat more than ``max_epochs`` times is a warning,
not an error: LLaMA itself repeats Wikipedia 2.45 times.

mixture.json is written by trainer.mixture.write_mixture; this module then adds a ``plan`` key
(targets, warnings, and with ``model_params`` the budget beside the Chinchilla-optimal and LLaMA
token counts) for the report, and checks the file still loads. The plan also records the request
(recipe, weights, budget, and each manifest by sha256): asked again for the same request, ``mix``
keeps the mixture.json already there, so a scheduler's re-run starts nothing downstream anew.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.config import ConfigError, read_mapping
from trainer.mixture import Mixture, MixtureSource, TokenizerRef, load_mixture, write_mixture
from trainer.shards import MANIFEST_NAME, Manifest, ShardError, read_manifest

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "configs" / "mixture" / "llama1.yaml"
TOKENIZER_NAME = "tokenizer.model"
WEIGHT_TOLERANCE = 1e-6
# Hoffmann et al. 2022 (Chinchilla): compute-optimal training uses ~20 tokens per parameter.
CHINCHILLA_TOKENS_PER_PARAM = 20.0
_RECIPE_KEYS = {"name", "reference", "token_budget", "max_epochs", "weights"}


class MixError(ValueError):
    """A recipe or source that cannot make a mixture; the message names the file and key."""


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    token_budget: int
    max_epochs: float
    weights: dict[str, float]  # flattened: nested keys are joined with "/"
    reference: str = ""


@dataclass
class MixResult:
    path: Path
    mixture: Mixture
    warnings: list[str] = field(default_factory=list)
    scaling: dict[str, float] | None = None


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        raw = read_mapping(path, "mixture recipe")
    except ConfigError as exc:
        raise MixError(str(exc)) from None
    unknown = sorted(set(raw) - _RECIPE_KEYS)
    if unknown:
        raise MixError(f"{path}: unknown key '{unknown[0]}' (known: {', '.join(sorted(_RECIPE_KEYS))})")
    budget = raw.get("token_budget")
    if isinstance(budget, float) and budget.is_integer():
        budget = int(budget)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise MixError(f"{path}: key 'token_budget' must be a positive integer, got {budget!r}")
    max_epochs = raw.get("max_epochs", 4.0)
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, float)) or max_epochs <= 0:
        raise MixError(f"{path}: key 'max_epochs' must be a positive number, got {max_epochs!r}")
    if not isinstance(raw.get("weights"), dict) or not raw["weights"]:
        raise MixError(f"{path}: key 'weights' must be a non-empty mapping of source name to weight")
    weights = _flatten(raw["weights"], path, "weights")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise MixError(f"{path}: key 'weights' sums to {total:.6g}, must add up to 1")
    return Recipe(path, str(raw.get("name", path.stem)), budget, float(max_epochs), weights,
                  str(raw.get("reference", "")))


def _flatten(node: Mapping[str, Any], path: Path, where: str, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        dotted = f"{where}.{key}"
        if not isinstance(key, str) or not key or "/" in key:
            raise MixError(f"{path}: key '{dotted}' must be a plain source name (nest mappings for sub-sources)")
        if isinstance(value, dict):
            flat.update(_flatten(value, path, dotted, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if value < 0:
                raise MixError(f"{path}: key '{dotted}' is {value}; weights must be >= 0")
            flat[name] = float(value)
        else:
            raise MixError(f"{path}: key '{dotted}' must be a number, got {value!r}")
    return flat


def find_manifests(name: str | None, location: str | Path) -> dict[str, Path]:
    """Source name -> manifest for a manifest file, a shard dir, or a run dir (``shards/``)."""
    location = Path(location)
    if location.is_file():
        candidates = {"": location}
    elif (location / MANIFEST_NAME).is_file():
        candidates = {"": location / MANIFEST_NAME}
    elif (location / "shards" / MANIFEST_NAME).is_file():
        candidates = {"": location / "shards" / MANIFEST_NAME}
    else:
        candidates = {p.parent.name: p for p in sorted((location / "shards").glob(f"*/{MANIFEST_NAME}"))}
    if not candidates:
        raise MixError(f"{location}: no shards found (looked for {MANIFEST_NAME}, shards/{MANIFEST_NAME} and "
                       f"shards/*/{MANIFEST_NAME}); run the pipeline with tokenize.tokenizer set")
    found = {}
    for sub, manifest_path in candidates.items():
        try:
            manifest = read_manifest(manifest_path)
        except ShardError as exc:
            raise MixError(str(exc)) from None
        base = name or manifest.source
        found[f"{base}/{sub}" if sub else base] = manifest_path
    return found


def _match(source: str, keys: Sequence[str]) -> str | None:
    hits = [k for k in keys if source == k or source.startswith(k + "/")]
    return max(hits, key=len) if hits else None


def scaling_numbers(model_params: float, token_budget: int) -> dict[str, float]:
    """The budget beside Chinchilla-optimal (Hoffmann et al. 2022) and LLaMA-1's own choice."""
    # LLaMA-1 (Touvron et al. 2023, 2.1): 7B and 13B on 1.0T tokens, 33B and 65B on 1.4T.
    llama_tokens = 1.0e12 if model_params < 20e9 else 1.4e12
    return {
        "model_params": model_params,
        "token_budget": token_budget,
        "tokens_per_param": token_budget / model_params,
        "chinchilla_tokens": CHINCHILLA_TOKENS_PER_PARAM * model_params,
        "llama_tokens": llama_tokens,
        "llama_tokens_per_param": llama_tokens / model_params,
    }


def mix(
    config: str | Path | Recipe,
    sources: Mapping[str, str | Path] | Sequence[tuple[str | None, str | Path]],
    output_dir: str | Path,
    model_params: float | None = None,
    *,
    tokenizer: str | Path | None = None,
    token_budget: int | None = None,
) -> MixResult:
    """Write ``output_dir/mixture.json``. ``sources`` maps names to run dirs, shard dirs or manifests
    (a ``None`` name takes the manifest's own ``source``)."""
    recipe = config if isinstance(config, Recipe) else load_recipe(config)
    budget = token_budget or recipe.token_budget
    pairs = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
    manifests: dict[str, Manifest] = {}
    for name, location in pairs:
        for source, path in find_manifests(name, location).items():
            if source in manifests:
                raise MixError(f"source '{source}' is given twice ({manifests[source].path} and {path})")
            manifests[source] = read_manifest(path)
    request = _request(recipe, manifests, budget, model_params, tokenizer)
    done = _finished(Path(output_dir) / "mixture.json", request)
    if done is not None:
        return done
    keys = list(recipe.weights)
    by_key: dict[str, list[str]] = {k: [] for k in keys}
    for source in manifests:
        key = _match(source, keys)
        if key is None:
            raise MixError(f"{recipe.path}: source '{source}' matches no key under 'weights' "
                           f"(keys: {', '.join(keys)})")
        by_key[key].append(source)
    entries: list[MixtureSource] = []
    plan_sources: list[dict[str, Any]] = []
    warnings: list[str] = []
    for key, weight in recipe.weights.items():
        members = sorted(by_key[key])
        tokens = sum(manifests[s].tokens for s in members)
        if weight > 0 and tokens == 0:
            had = f" ({', '.join(members)} have no tokens)" if members else ""
            raise MixError(f"{recipe.path}: key 'weights.{key.replace('/', '.')}' gives '{key}' weight {weight:g} "
                           f"but no source has data for it{had}; pass --source {key}=RUN_DIR or set it to 0")
        for source in members:
            manifest = manifests[source]
            share = weight * manifest.tokens / tokens if tokens else 0.0
            epochs = budget * share / manifest.tokens if manifest.tokens else 0.0
            plan_sources.append({"name": source, "recipe_key": key, "target_weight": weight, "weight": share,
                                 "tokens": manifest.tokens, "documents": manifest.documents,
                                 "epochs": epochs, "disk_bytes": manifest.disk_bytes, "used": share > 0})
            if share <= 0:
                continue
            entries.append(MixtureSource(name=source, weight=share, manifest=manifest.path, tokens=manifest.tokens,
                                         documents=manifest.documents, epochs=epochs,
                                         disk_bytes=manifest.disk_bytes))
            if epochs > recipe.max_epochs:
                warnings.append(f"source '{source}' would be repeated {epochs:.2f} times (max_epochs "
                                f"{recipe.max_epochs:g} in {recipe.path}): {manifest.tokens:,} tokens for "
                                f"{share * budget:,.0f} sampled")
    tokenizer_ref = _tokenizer(entries, manifests, tokenizer, Path(output_dir))
    out = Path(output_dir) / "mixture.json"
    write_mixture(out, entries, token_budget=budget, tokenizer=tokenizer_ref)
    scaling = scaling_numbers(model_params, budget) if model_params else None
    data = json.loads(out.read_text(encoding="utf-8"))
    data["plan"] = {"recipe": str(recipe.path), "recipe_name": recipe.name, "reference": recipe.reference,
                    "max_epochs": recipe.max_epochs, "targets": recipe.weights, "sources": plan_sources,
                    "warnings": warnings, "scaling": scaling, "request": request}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return MixResult(out, load_mixture(out), warnings, scaling)


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _request(recipe: Recipe, manifests: Mapping[str, Manifest], budget: int, model_params: float | None,
             tokenizer: str | Path | None) -> dict[str, Any]:
    """What a mixture.json was made from, by content: the same request twice makes the same file."""
    return {"recipe_sha256": _sha256(recipe.path) if recipe.path.is_file() else None,
            "weights": recipe.weights, "token_budget": budget, "model_params": model_params,
            "tokenizer_sha256": _sha256(tokenizer) if tokenizer else None,
            "manifests": {name: _sha256(m.path) for name, m in sorted(manifests.items())}}


def _finished(path: Path, request: dict[str, Any]) -> MixResult | None:
    """The mixture already at ``path`` when it was made from the same request (a scheduler's re-run
    then redoes nothing); None when there is none, or it was made from something else."""
    try:
        plan = json.loads(path.read_text(encoding="utf-8")).get("plan") or {}
    except (OSError, ValueError):
        return None
    if plan.get("request") != json.loads(json.dumps(request)):
        return None
    print(f"refinery mix: {path} is already complete (same recipe, shards and budget)", file=sys.stderr)
    return MixResult(path, load_mixture(path), list(plan.get("warnings", [])), plan.get("scaling"))


def _tokenizer(entries: Sequence[MixtureSource], manifests: Mapping[str, Manifest], given: str | Path | None,
               output_dir: Path) -> TokenizerRef:
    """One tokenizer for all sources, copied beside mixture.json so the mixture travels whole."""
    used = [m for m in manifests.values() if any(e.manifest == m.path for e in entries)]
    first = used[0]
    for manifest in used[1:]:
        if manifest.tokenizer_sha256 != first.tokenizer_sha256 or manifest.vocab_size != first.vocab_size:
            raise MixError(f"{manifest.path} and {first.path} were tokenized with different tokenizers "
                           f"({manifest.tokenizer_sha256[:12]} vs {first.tokenizer_sha256[:12]}); re-tokenize one")
    candidates = [Path(given)] if given else [m.dir / TOKENIZER_NAME for m in used]
    for candidate in candidates:
        if candidate.is_file() and hashlib.sha256(candidate.read_bytes()).hexdigest() == first.tokenizer_sha256:
            output_dir.mkdir(parents=True, exist_ok=True)
            target = output_dir / TOKENIZER_NAME
            if candidate.resolve() != target.resolve():
                shutil.copyfile(candidate, target)
            return TokenizerRef(path=TOKENIZER_NAME, sha256=first.tokenizer_sha256, vocab_size=first.vocab_size)
    where = str(given) if given else f"{TOKENIZER_NAME} beside the manifests"
    raise MixError(f"no tokenizer with sha256 {first.tokenizer_sha256[:12]} found ({where}); pass --tokenizer")


def parse_source(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` or a bare ``PATH`` (the name then comes from the manifest's ``source``)."""
    name, sep, location = spec.partition("=")
    if sep and name and not Path(spec).exists():
        return name, location
    return None, spec


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery mix``: 0 written (warnings on stderr), 2 bad recipe or sources (one line)."""
    parser = argparse.ArgumentParser(
        prog="refinery mix", description="Build mixture.json from per-source shards.", allow_abbrev=False
    )
    parser.add_argument("--config", default=str(DEFAULT_RECIPE), help="mixture recipe YAML (default: LLaMA-1)")
    parser.add_argument("--source", action="append", required=True, metavar="[NAME=]PATH",
                        help="a run dir, shard dir or manifest.json; NAME defaults to the manifest's source "
                             "(repeatable; sub-sources are NAME/SUB)")
    parser.add_argument("--output", required=True, help="directory for mixture.json and tokenizer.model")
    parser.add_argument("--model-params", type=float, default=None,
                        help="model size (e.g. 7e9): compare the budget with Chinchilla and LLaMA")
    parser.add_argument("--token-budget", type=float, default=None, help="override the recipe's token_budget")
    parser.add_argument("--tokenizer", default=None, help="tokenizer .model (default: the copy beside the shards)")
    args = parser.parse_args(argv)
    try:
        result = mix(args.config, [parse_source(s) for s in args.source], args.output, args.model_params,
                     tokenizer=args.tokenizer, token_budget=int(args.token_budget) if args.token_budget else None)
    except (MixError, ShardError, ValueError) as exc:
        print(f"refinery mix: error: {exc}", file=sys.stderr)
        return 2
    _print(result)
    return 0


def _print(result: MixResult) -> None:
    mixture = result.mixture
    print(f"{'source':<24} {'weight':>7} {'tokens':>14} {'documents':>10} {'epochs':>8} {'disk':>10}")
    for s in mixture.sources:
        print(f"{s.name:<24} {s.weight:>7.3f} {s.tokens:>14,} {s.documents:>10,} {s.epochs:>8.2f} "
              f"{s.disk_bytes / 1e6:>8.1f}MB")
    print(f"token budget {mixture.token_budget:,}; wrote {result.path}")
    if result.scaling:
        sc = result.scaling
        print(f"model {sc['model_params']:.3g} params: budget = {sc['tokens_per_param']:.1f} tokens/param; "
              f"Chinchilla-optimal (Hoffmann et al. 2022, ~20/param) = {sc['chinchilla_tokens']:.3g} tokens; "
              f"LLaMA-1 = {sc['llama_tokens']:.3g} tokens ({sc['llama_tokens_per_param']:.0f}/param)")
    for warning in result.warnings:
        print(f"refinery mix: warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
