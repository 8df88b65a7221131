"""mixture.json: which shard directories the trainer samples, and in what proportions.

The pipeline's ``refinery mix`` step writes it (through :func:`write_mixture`) and the trainer reads
it (through :func:`load_mixture`). Format, version 1::

    {
      "format": "refinery-mixture",
      "version": 1,
      "token_budget": 1000000000000,      # tokens the run is planned to consume
      "sources": [
        {"name": "cc",                    # unique; names the per-source held-out loss
         "weight": 0.67,                  # sampling proportion; all weights sum to 1
         "manifest": "cc/manifest.json",  # relative to this file's directory, or absolute
         "tokens": 123, "documents": 4,   # copied from the manifest (checked against it)
         "epochs": 1.1,                   # token_budget * weight / tokens: passes over this source
         "disk_bytes": 246}
      ],
      "tokenizer": {"path": "tokenizer.model", "sha256": "...", "vocab_size": 32000}
    }

The weights are *sampling* proportions (LLaMA-1, Touvron et al. 2023, Table 1 "Sampling prop."):
the share of training windows drawn from each source, whatever its size; ``epochs`` records how
often that repeats a source (Table 1 "Epochs"). A mixture is only usable when every source was
tokenized by the same tokenizer into the same id space, so the loader checks that across sources
and against the ``tokenizer`` block.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.shards import Manifest, ShardError, read_manifest

FORMAT = "refinery-mixture"
VERSION = 1
WEIGHT_TOLERANCE = 1e-6


class MixtureError(ValueError):
    """A mixture.json that cannot be trained on; the message names the file and the key."""


@dataclass(frozen=True, kw_only=True)
class TokenizerRef:
    """The tokenizer every source of the mixture was encoded with."""

    path: str
    """Tokenizer model file (relative to the mixture's directory, or absolute)."""
    sha256: str
    """Hash of the tokenizer file; must equal each manifest's ``tokenizer_sha256``."""
    vocab_size: int
    """Number of ids; the model's embedding must have exactly this many rows."""


@dataclass(frozen=True, kw_only=True)
class MixtureSource:
    """One source of the mixture. ``manifest`` is resolved to an absolute path once loaded."""

    name: str
    """Unique source name (``cc``, ``wikipedia``, ...)."""
    weight: float
    """Sampling proportion in [0, 1]; the weights of a mixture sum to 1."""
    manifest: Path
    """The source's shard ``manifest.json``."""
    tokens: int
    """Tokens in the source's shards (separators included)."""
    documents: int
    """Documents in the source's shards."""
    epochs: float
    """Planned passes over this source: ``token_budget * weight / tokens``."""
    disk_bytes: int
    """Bytes of shard files (.bin and .idx) on disk."""


@dataclass(frozen=True, kw_only=True)
class Mixture:
    """A validated mixture with each source's manifest already parsed."""

    path: Path
    token_budget: int
    sources: tuple[MixtureSource, ...]
    tokenizer: TokenizerRef
    manifests: tuple[Manifest, ...]
    """Parsed manifests, aligned with ``sources``."""

    @property
    def weights(self) -> list[float]:
        return [s.weight for s in self.sources]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def tokenizer_path(self) -> Path:
        return _resolve(self.path.parent, self.tokenizer.path)


def source_from_manifest(
    name: str, manifest: str | Path, *, weight: float, token_budget: int
) -> MixtureSource:
    """A mixture entry whose counts come from the manifest, so the pipeline cannot mistype them."""
    parsed = read_manifest(manifest)
    epochs = token_budget * weight / parsed.tokens if parsed.tokens else 0.0
    return MixtureSource(
        name=name,
        weight=weight,
        manifest=parsed.path,
        tokens=parsed.tokens,
        documents=parsed.documents,
        epochs=epochs,
        disk_bytes=parsed.disk_bytes,
    )


def write_mixture(
    path: str | Path, sources: Sequence[MixtureSource], *, token_budget: int, tokenizer: TokenizerRef
) -> Path:
    """Write mixture.json and load it back, so an invalid mixture fails here rather than in training.

    Manifest paths under the mixture's directory are stored relative to it, so the whole tree can be
    moved or synced as one unit.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    entries = []
    for source in sources:
        manifest = Path(source.manifest).resolve()
        stored = os.path.relpath(manifest, base) if manifest.is_relative_to(base) else str(manifest)
        entries.append(
            {
                "name": source.name,
                "weight": source.weight,
                "manifest": stored,
                "tokens": source.tokens,
                "documents": source.documents,
                "epochs": source.epochs,
                "disk_bytes": source.disk_bytes,
            }
        )
    data = {
        "format": FORMAT,
        "version": VERSION,
        "token_budget": token_budget,
        "sources": entries,
        "tokenizer": {"path": tokenizer.path, "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    load_mixture(path)
    return path


def load_mixture(path: str | Path) -> Mixture:
    """Parse and validate mixture.json and every manifest it names."""
    path = Path(path)
    where = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MixtureError(f"{where}: mixture file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MixtureError(f"{where}: cannot read mixture: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise MixtureError(f"{where}: not a refinery mixture (format must be {FORMAT!r})")
    if raw.get("version") != VERSION:
        raise MixtureError(f"{where}: version {raw.get('version')!r} is not supported (expected {VERSION})")
    token_budget = _get(raw, "token_budget", int, where)
    tok_raw = _get(raw, "tokenizer", dict, where)
    tokenizer = TokenizerRef(
        path=_get(tok_raw, "path", str, where, "tokenizer"),
        sha256=_get(tok_raw, "sha256", str, where, "tokenizer"),
        vocab_size=_get(tok_raw, "vocab_size", int, where, "tokenizer"),
    )
    source_list = _get(raw, "sources", list, where)
    if not source_list:
        raise MixtureError(f"{where}: key 'sources' is empty")
    sources: list[MixtureSource] = []
    manifests: list[Manifest] = []
    for i, entry in enumerate(source_list):
        key = f"sources[{i}]"
        if not isinstance(entry, dict):
            raise MixtureError(f"{where}: {key} must be a mapping")
        source = MixtureSource(
            name=_get(entry, "name", str, where, key),
            weight=float(_get(entry, "weight", (int, float), where, key)),
            manifest=_resolve(path.parent, _get(entry, "manifest", str, where, key)),
            tokens=_get(entry, "tokens", int, where, key),
            documents=_get(entry, "documents", int, where, key),
            epochs=float(_get(entry, "epochs", (int, float), where, key)),
            disk_bytes=_get(entry, "disk_bytes", int, where, key),
        )
        key = f"sources[{i}] ({source.name})"
        if not math.isfinite(source.weight) or source.weight < 0:
            raise MixtureError(f"{where}: {key}.weight must be a non-negative number, got {source.weight}")
        if source.name in {s.name for s in sources}:
            raise MixtureError(f"{where}: {key}.name is used twice")
        try:
            manifest = read_manifest(source.manifest)
        except ShardError as exc:
            raise MixtureError(f"{where}: {key}.manifest: {exc}") from None
        if (manifest.tokens, manifest.documents) != (source.tokens, source.documents):
            raise MixtureError(
                f"{where}: {key} says {source.tokens} tokens / {source.documents} documents but "
                f"{manifest.path} has {manifest.tokens} / {manifest.documents}; re-run `refinery mix`"
            )
        if manifest.vocab_size != tokenizer.vocab_size:
            raise MixtureError(
                f"{where}: {key}: {manifest.path} has vocab_size {manifest.vocab_size}, "
                f"tokenizer.vocab_size is {tokenizer.vocab_size}"
            )
        if manifest.tokenizer_sha256 != tokenizer.sha256:
            raise MixtureError(
                f"{where}: {key}: {manifest.path} was tokenized with tokenizer "
                f"{manifest.tokenizer_sha256[:12]}, "
                f"tokenizer.sha256 is {tokenizer.sha256[:12]}"
            )
        if manifests and (manifest.eos_id, manifest.bos_id) != (manifests[0].eos_id, manifests[0].bos_id):
            raise MixtureError(f"{where}: {key}: eos_id/bos_id differ from those of {manifests[0].path}")
        sources.append(source)
        manifests.append(manifest)
    total = sum(s.weight for s in sources)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise MixtureError(
            f"{where}: key 'sources[*].weight' sums to {total!r}, must be 1 (within {WEIGHT_TOLERANCE})"
        )
    return Mixture(
        path=path,
        token_budget=token_budget,
        sources=tuple(sources),
        tokenizer=tokenizer,
        manifests=tuple(manifests),
    )


def _resolve(base: Path, name: str) -> Path:
    candidate = Path(name)
    return candidate if candidate.is_absolute() else base / candidate


def _get(raw: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, prefix: str = "") -> Any:
    key = f"{prefix}.{name}" if prefix else name
    if name not in raw:
        raise MixtureError(f"{where}: missing key '{key}'")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise MixtureError(f"{where}: key '{key}' must be {expected}, got {value!r}")
    return value
