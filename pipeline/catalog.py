"""``refinery catalog``: where the latest finished run of every source is found.

Every curated run of a source lands in its own directory, ``<root>/sources/<source>/<run-id>/``,
and is never written again once it has its ``_SUCCESS``. A run becomes what the mixture uses only
when it is *published*: ``<root>/sources/<source>/catalog.json`` then names it as ``latest``.
Keeping the runs apart from the pointer is what lets a new Wikipedia dump be curated while the
last mixture still trains on the old one, and a bad run be rolled back by publishing an old id.

A source is ``name`` or ``name/sub`` (``commoncrawl/CC-MAIN-2024-22``), so that several dumps
share the recipe's ``commoncrawl`` weight (pipeline/mix.py splits a key among its sub-sources).

The catalog is small JSON, written whole to a temporary file and moved over the old one
(``os.replace``), so a reader sees the old catalog or the new one, never half of one. Publishers
of one source take an exclusive lock so that neither loses the other's entry. Local (or mounted)
paths only: this module does not write object stores.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SOURCES_DIR = "sources"
CATALOG_NAME = "catalog.json"
SUCCESS_NAME = "_SUCCESS"
FORMAT = "refinery-catalog/1"
# Recipe keys are lower-case names (configs/mixture/); a sub-source may carry a dump id's capitals.
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class CatalogError(ValueError):
    """A catalog, source name or run that cannot be used; the message names the file or value."""


@dataclass(frozen=True)
class Published:
    """One source's latest published run."""

    source: str
    run_id: str
    path: str
    published_at: str
    documents: int | None = None


def check_source(source: str) -> str:
    if not SOURCE_NAME.fullmatch(source):
        raise CatalogError(f"source {source!r}: not a source name (lower-case name, or name/sub as "
                           "commoncrawl/CC-MAIN-2024-22)")
    return source


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise CatalogError(f"run id {run_id!r}: letters, digits, '.', '_' and '-' only")
    return run_id


def source_dir(root: str | Path, source: str) -> Path:
    return Path(root) / SOURCES_DIR / check_source(source)


def run_dir(root: str | Path, source: str, run_id: str) -> Path:
    return source_dir(root, source) / check_run_id(run_id)


def catalog_path(root: str | Path, source: str) -> Path:
    return source_dir(root, source) / CATALOG_NAME


def read_catalog(root: str | Path, source: str) -> dict[str, Any] | None:
    """The catalog of ``source`` (None when nothing was published); malformed is a CatalogError."""
    path = catalog_path(root, source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: malformed catalog (not JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CatalogError(f"{path}: malformed catalog (no 'format': {FORMAT!r})")
    runs = data.get("runs")
    if data.get("source") != source or not isinstance(runs, list) or not all(
            isinstance(r, dict) and isinstance(r.get("run_id"), str) for r in runs):
        raise CatalogError(f"{path}: malformed catalog ('source' must be {source!r} and 'runs' a list of runs)")
    if data.get("latest") not in {r["run_id"] for r in runs}:
        raise CatalogError(f"{path}: malformed catalog ('latest' {data.get('latest')!r} is not one of its runs)")
    return data


def latest(root: str | Path, source: str) -> Published | None:
    """The published run of ``source``, checked to be finished; None when nothing was published."""
    data = read_catalog(root, source)
    if data is None:
        return None
    entry = next(r for r in data["runs"] if r["run_id"] == data["latest"])
    path = run_dir(root, source, entry["run_id"])
    if not (path / SUCCESS_NAME).is_file():
        raise CatalogError(f"{catalog_path(root, source)}: latest run {entry['run_id']} has no {SUCCESS_NAME} "
                           f"({path})")
    return Published(source, entry["run_id"], str(path), str(entry.get("published_at", "")),
                     entry.get("documents"))


def published_sources(root: str | Path) -> list[str]:
    """Every source with a catalog under ``root``, by name (``commoncrawl/CC-MAIN-2024-22`` included)."""
    base = Path(root) / SOURCES_DIR
    names = []
    for path in sorted(base.glob(f"*/{CATALOG_NAME}")) + sorted(base.glob(f"*/*/{CATALOG_NAME}")):
        names.append(path.parent.relative_to(base).as_posix())
    return sorted(names)


def latest_all(root: str | Path) -> dict[str, Published]:
    return {source: found for source in published_sources(root) if (found := latest(root, source))}


def for_recipe(root: str | Path, weights: Mapping[str, float], recipe: str) -> dict[str, Published]:
    """The latest run of every published source the recipe has a key for; a key with weight and
    nothing published under it is a CatalogError naming it (weight 0 needs nothing)."""
    published = latest_all(root)
    chosen = {s: p for s, p in published.items() if any(s == k or s.startswith(k + "/") for k in weights)}
    for key, weight in weights.items():
        if weight > 0 and not any(s == key or s.startswith(key + "/") for s in chosen):
            raise CatalogError(f"source '{key}' has weight {weight:g} in {recipe} but no run of it is published "
                               f"under {Path(root) / SOURCES_DIR / key}; publish one or set its weight to 0")
    return chosen


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One publisher per source at a time (an flock, released with the process if it dies)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".catalog.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(root: str | Path, source: str, run_id: str) -> tuple[Published, bool]:
    """Make ``<root>/sources/<source>/<run_id>`` the latest of its source; returns it and whether the
    catalog changed (publishing the run that is already latest writes nothing)."""
    path = run_dir(root, source, run_id)
    if not (path / SUCCESS_NAME).is_file():
        raise CatalogError(f"{path}: not a finished run (no {SUCCESS_NAME}); only finished runs are published")
    with _locked(source_dir(root, source)):
        data = read_catalog(root, source) or {"format": FORMAT, "source": source, "latest": None, "runs": []}
        if data["latest"] == run_id:
            return latest(root, source), False  # type: ignore[return-value]
        entry = {"run_id": run_id, "published_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "documents": _documents(path)}
        data["runs"] = [r for r in data["runs"] if r["run_id"] != run_id] + [entry]
        data["latest"] = run_id
        target = catalog_path(root, source)
        tmp = target.with_name(f".{CATALOG_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    return Published(source, run_id, str(path), entry["published_at"], entry["documents"]), True


def _documents(path: Path) -> int | None:
    """Kept documents from the run's stats.json, for the catalog's history (None if unreadable)."""
    try:
        return int(json.loads((path / "stats.json").read_text(encoding="utf-8"))["totals"]["kept"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery catalog publish|latest``: 0 done, 2 a bad name, run or catalog (one line)."""
    parser = argparse.ArgumentParser(prog="refinery catalog", allow_abbrev=False,
                                     description="Publish a source's finished run; find the latest runs.")
    commands = parser.add_subparsers(dest="command", required=True)
    pub = commands.add_parser("publish", allow_abbrev=False, help="make <root>/sources/SOURCE/RUN_ID the latest")
    pub.add_argument("--root", required=True, help="output root holding sources/")
    pub.add_argument("--source", required=True, help="source name: wikipedia, commoncrawl/CC-MAIN-2024-22, ...")
    pub.add_argument("--run-id", required=True)
    find = commands.add_parser("latest", allow_abbrev=False,
                               help="print the latest run of each source as JSON {source: {...}}")
    find.add_argument("--root", required=True, help="output root holding sources/")
    find.add_argument("--source", help="only this source (fails if nothing is published for it)")
    find.add_argument("--recipe", help="mixture recipe: only its sources, and fail naming any weighted one missing")
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            found, changed = publish(args.root, args.source, args.run_id)
            print(f"{'published' if changed else 'already latest'}: {found.source} -> {found.path}")
            return 0
        print(json.dumps({s: asdict(p) for s, p in _find(args).items()}, indent=2, sort_keys=True))
        return 0
    except CatalogError as exc:
        print(f"refinery catalog: error: {exc}", file=sys.stderr)
        return 2


def _find(args: argparse.Namespace) -> dict[str, Published]:
    if args.source:
        found = latest(args.root, args.source)
        if found is None:
            raise CatalogError(f"source '{args.source}': nothing published under {source_dir(args.root, args.source)}")
        return {args.source: found}
    if args.recipe:
        from pipeline.mix import MixError, load_recipe

        try:
            recipe = load_recipe(args.recipe)
        except MixError as exc:
            raise CatalogError(str(exc)) from None
        return for_recipe(args.root, recipe.weights, str(recipe.path))
    return latest_all(args.root)


if __name__ == "__main__":
    sys.exit(main())
