"""Paths in a report are relative to the report or named by their run, never a machine's absolute path.

A report is copied, mailed and opened on another machine: ``/home/alice/scratch/run-7`` tells the
reader nothing and leaks where it was made. Every string of the report's data goes through
``Portable`` before it is written, except document texts (``text``), which are shown as they are:

* a path inside the refinery checkout becomes repository-relative (``configs/mixture/llama1.yaml``);
* a path that shares a directory with the report becomes relative to it (``../runs/commoncrawl``);
* any other path is named by its last component (``demo-crawl.warc.gz``).

Paths are found inside longer strings too (a warning naming its recipe file), by a pattern that
leaves URLs (``https://host/path``), fractions and reason keys (``stage / reason``) alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# An absolute path: a "/" not preceded by a word character, ":" or "/", then non-separator characters.
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/[^\s'\"(),;<>\[\]{}]+")
UNTOUCHED_KEYS = frozenset({"text"})


class Portable:
    """Rewrites absolute paths for a report written to ``report_dir``."""

    def __init__(self, report_dir: str | Path) -> None:
        self.base = Path(os.path.abspath(report_dir))

    def path(self, value: str | Path) -> str:
        """One path, as the report shows it (relative paths are returned as they are)."""
        text = str(value)
        if not os.path.isabs(text):
            return text
        path = Path(os.path.abspath(text))
        if path.is_relative_to(REPO):
            return path.relative_to(REPO).as_posix() or "."
        common = Path(os.path.commonpath([path, self.base]))
        if common != Path(common.anchor):
            return PurePosixPath(os.path.relpath(path, self.base)).as_posix()
        return path.name or text

    def text(self, value: str) -> str:
        """Every absolute path inside ``value`` rewritten; the rest kept."""
        return _ABSOLUTE.sub(lambda m: self.path(m.group(0)), value)

    def data(self, value: Any, key: str | None = None) -> Any:
        """A copy of JSON-like ``value`` with every string made portable (``text`` fields kept)."""
        if isinstance(value, str):
            return value if key in UNTOUCHED_KEYS else self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v, key) for v in value]
        return value
