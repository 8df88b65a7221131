"""``refinery verify``: check shards against their manifests before a training run trusts them.

A directory may be one source's shard dir, a run dir (``shards/`` inside), a mixture's output dir
(``mixture.json`` naming manifests elsewhere), or any tree of those: every ``manifest.json`` found
under it, and every manifest a ``mixture.json`` names, is checked with trainer.shards.verify
(sizes, sha256 of each .bin and .idx, offsets). Each problem names the file it concerns.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from trainer.mixture import MixtureError, load_mixture
from trainer.shards import MANIFEST_NAME, Problem, verify as verify_shards

MIXTURE_NAME = "mixture.json"


def manifests_under(path: Path) -> list[Path]:
    """Manifests under ``path`` plus those its mixture.json files name (deduplicated, sorted)."""
    if path.is_file():
        return [path] if path.name != MIXTURE_NAME else _from_mixture(path)
    found = set(path.rglob(MANIFEST_NAME))
    for mixture in path.rglob(MIXTURE_NAME):
        found.update(_from_mixture(mixture))
    return sorted({p.resolve() for p in found})


def _from_mixture(path: Path) -> list[Path]:
    try:
        return [source.manifest for source in load_mixture(path).sources]
    except MixtureError:
        # load_mixture stops at the first bad manifest; list them all so verify reports each.
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [path.parent / entry["manifest"] for entry in raw.get("sources", []) if "manifest" in entry]


def verify(path: str | Path, *, checksums: bool = True) -> list[Problem]:
    """Every defect of every shard set under ``path``; empty when all of them are sound."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    manifests = manifests_under(path)
    if not manifests:
        return [Problem(path, f"no {MANIFEST_NAME} or {MIXTURE_NAME} found")]
    problems: list[Problem] = []
    for manifest in tqdm(manifests, desc="verify", unit="manifest", disable=len(manifests) < 2):
        problems.extend(verify_shards(manifest, checksums=checksums))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery verify DIR...``: 0 all sound, 1 problems found (each on stdout), 2 no such path."""
    parser = argparse.ArgumentParser(
        prog="refinery verify", description="Check token shards against their manifests.", allow_abbrev=False
    )
    parser.add_argument("paths", nargs="+", metavar="DIR", help="shard dir, run dir, mixture dir or manifest")
    parser.add_argument("--no-checksums", action="store_true", help="check sizes and offsets only (no hashing)")
    args = parser.parse_args(argv)
    problems: list[Problem] = []
    checked = 0
    for target in args.paths:
        try:
            found = verify(target, checksums=not args.no_checksums)
        except FileNotFoundError as exc:
            print(f"refinery verify: error: {exc}", file=sys.stderr)
            return 2
        problems.extend(found)
        checked += len(manifests_under(Path(target)))
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"refinery verify: {len(problems)} problem(s) in {checked} manifest(s)", file=sys.stderr)
        return 1
    print(f"ok: {checked} manifest(s) verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
