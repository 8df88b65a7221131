"""What a run's output was made from, so that a finished output is reused only for the same request.

A fingerprint is the input list with sizes, the config after ``--set`` overrides, and the refinery
version. ``prepare`` records it in ``_RUN.json``; a later run into a finished output compares its
own with it and skips only when nothing differs. Sizes are those of local files: a size of a
gs://, s3:// or https:// file costs a request each, too slow for a dump's worth on the driver,
so remote inputs are compared by path alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from typing import Any

from pipeline.config import PipelineConfig


def make(files: Sequence[str], cfg: PipelineConfig) -> dict[str, Any]:
    """The fingerprint of a run over ``files`` with ``cfg``, in its JSON form (as recorded)."""
    inputs = [[f, os.path.getsize(f) if os.path.isfile(f) else None] for f in files]
    return json.loads(json.dumps({"inputs": inputs, "config": asdict(cfg), "version": version()}))


def recorded(run_info: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint in a ``_RUN.json``; older ones recorded only input paths and the config."""
    if "fingerprint" in run_info:
        return run_info["fingerprint"]
    legacy = {"inputs": [[f, None] for f in run_info.get("inputs", [])], "config": run_info.get("config")}
    return {k: v for k, v in legacy.items() if v is not None}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one phrase per part; parts ``old`` lacks are not compared."""
    found = []
    if "inputs" in old:
        inputs = _input_changes(dict(map(tuple, old["inputs"])), dict(map(tuple, new["inputs"])))
        if inputs:
            found.append(f"inputs ({inputs})")
    if "config" in old:
        before, after = _flatten(old["config"]), _flatten(new["config"])
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if keys:
            found.append(f"config keys {', '.join(keys)}")
    if "version" in old and old["version"] != new["version"]:
        found.append(f"version {old['version']} (now {new['version']})")
    return found


def version() -> str:
    try:
        return metadata.version("refinery")
    except metadata.PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "unknown"


def _input_changes(old: dict[str, int | None], new: dict[str, int | None]) -> str:
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    resized = sorted(f for f in old.keys() & new.keys() if None not in (old[f], new[f]) and old[f] != new[f])
    parts = [f"{len(names)} {what}, e.g. {os.path.basename(names[0])}"
             for names, what in ((added, "added"), (removed, "removed"), (resized, "changed size")) if names]
    return "; ".join(parts)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"read": {"max_error_fraction": 0.05}}`` as ``{"read.max_error_fraction": 0.05}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat
