"""Content-addressed steps for ``refinery ablate``: a study re-runs only what it has not done before.

Why. An ablation grows one arm or one seed at a time, and each arm costs a curation run and a
training run per seed. Every step's output directory is named by a hash of everything that decides
it (the arm: recipe content, input, tokenizer; a run: the arm, model, train settings and seed), and
is complete only once its ``done.json`` is written, last and atomically. So a study that adds an arm
or a seed runs only the new steps, and one that was interrupted resumes: a directory without
``done.json`` is cleared and redone.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DONE = "done.json"


def content_key(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, str() for paths and the like)."""
    blob = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def input_files(inputs: Sequence[str]) -> list[Path]:
    """The files behind ``--input``: globs expanded, directories walked (a run's Parquet parts)."""
    files: list[Path] = []
    for spec in inputs:
        matches = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
        for match in map(Path, matches):
            if match.is_dir():
                files.extend(sorted(p for p in match.rglob("*") if p.is_file() and not p.name.startswith(("_", "."))))
            elif match.is_file():
                files.append(match)
    return files


def input_fingerprint(inputs: Sequence[str], memo: Path) -> dict[str, str]:
    """sha256 of every input file's bytes, keyed by path; remembered in ``memo`` by (path, size, mtime)
    so a large crawl is read once per change, not once per study."""
    known: dict[str, Any] = json.loads(memo.read_text(encoding="utf-8")) if memo.is_file() else {}
    result: dict[str, str] = {}
    for path in input_files(inputs):
        stat = path.stat()
        stamp = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if known.get(stamp) is None:
            known[stamp] = file_sha256(path)
        result[str(path)] = known[stamp]
    write_json(memo, known)
    return result


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def cached_step(directory: Path, key_material: Any, build: Callable[[Path], dict[str, Any]]) -> tuple[dict, bool]:
    """``build(directory)``'s result, or the one a previous study recorded there: (result, reused).

    ``key_material`` is stored beside the result, so a directory is never reused for another key
    even if two keys' prefixes collide."""
    done = directory / DONE
    key = content_key(key_material)
    if done.is_file():
        recorded = json.loads(done.read_text(encoding="utf-8"))
        if recorded.get("key") == key:
            return recorded["result"], True
    if directory.exists():
        shutil.rmtree(directory)  # an interrupted or foreign step: start it again from nothing
    directory.mkdir(parents=True)
    result = build(directory)
    write_json(done, {"key": key, "material": key_material, "result": result})
    return result, False
