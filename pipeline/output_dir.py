"""The life of a run's output directory: refuse, resume, or replace, and say which.

A finished run ends with ``_SUCCESS``, written last; nothing else makes a directory look
complete. A directory with our ``_RUN.json`` but no ``_SUCCESS`` is an interrupted run: its
outputs are cleared and the run starts again, which with deterministic ids gives exactly the
documents an uninterrupted run would. A non-empty directory that is not ours is never touched.
Paths go through Beam's FileSystems, so the same logic works on gs:// and s3://.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from apache_beam.io.filesystems import FileSystems

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
RUN_INFO = "_RUN.json"
STATS = "stats.json"


class OutputDirError(ValueError):
    """The output directory cannot be used as asked; the message says why and what to do."""


class OutputDir:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def path(self, *parts: str) -> str:
        return FileSystems.join(self.root, *parts)

    @property
    def complete(self) -> bool:
        return FileSystems.exists(self.path(SUCCESS))

    def prepare(self, run_info: dict[str, Any], overwrite: bool = False) -> None:
        """Make the directory ready for a fresh run; raise if that would clobber something."""
        if self.complete and not overwrite:
            raise OutputDirError(f"{self.root} holds a complete run; pass --overwrite to replace it")
        existing = list(self._children())
        if existing:
            ours = FileSystems.exists(self.path(RUN_INFO))
            if not ours:
                raise OutputDirError(
                    f"{self.root} is not empty and was not written by refinery; choose another --output"
                )
            why = "replacing the complete run (--overwrite)" if self.complete else "clearing an interrupted run"
            log.info("%s: %s", self.root, why)
            # _SUCCESS goes first, so a crash while clearing never leaves a "complete" partial dir.
            if self.complete:
                FileSystems.delete([self.path(SUCCESS)])
            FileSystems.delete([p for p in existing if not p.endswith(SUCCESS)])
        self.write_json(RUN_INFO, {**run_info, "started": _now()})

    def finish(self, stats: dict[str, Any]) -> None:
        self.write_json(STATS, stats)
        self.write_text(SUCCESS, _now() + "\n")

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def write_text(self, name: str, text: str) -> None:
        with FileSystems.create(self.path(name)) as handle:
            handle.write(text.encode("utf-8"))

    def read_json_lines(self, pattern: str) -> Iterator[dict[str, Any]]:
        """Rows of the JSON-lines files under this directory that match ``pattern``."""
        for result in FileSystems.match([self.path(pattern)]):
            for meta in sorted(result.metadata_list, key=lambda m: m.path):
                with FileSystems.open(meta.path) as handle:
                    for line in handle.read().decode("utf-8").splitlines():
                        if line.strip():
                            yield json.loads(line)

    def _children(self) -> Iterator[str]:
        if not FileSystems.exists(self.root):
            return
        for result in FileSystems.match([self.path("*")]):
            for meta in result.metadata_list:
                yield meta.path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
