"""A run's statistics as pandas DataFrames, for notebooks (and for ``refinery report``).

    >>> from pipeline.run_stats import load_run
    >>> run = load_run("out/CC-MAIN-2024-22")
    >>> run.funnel                       # stage, in, dropped, out
    >>> run.reasons                      # stage, reason, documents
    >>> run.documents(["lang", "quality_score"]).describe()
    >>> run.rejects(["stage", "reason", "url"]).query("reason == 'c4.too_few_sentences'")

Every part is optional except a finished run's ``stats.json`` or ``documents/``: a run without
rejects, dedup clusters or shards gives empty frames (or ``None``) for those, never an error, so
one notebook works on every kind of run. Parquet is read column by column (``columns=``) so asking
for scores never loads the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.shards import MANIFEST_NAME, Manifest, ShardError, read_manifest

DOCUMENTS_DIR = "documents"
REJECTS_DIR = "rejects"
CLUSTERS_DIR = "clusters"
SHARDS_DIR = "shards"
STATS_FILE = "stats.json"


class RunStatsError(ValueError):
    """The directory is not a run (or a part of it is unreadable); the message names the file."""


@dataclass
class RunStats:
    """Lazy views of one run directory; nothing is read until it is asked for."""

    path: Path
    stats: dict[str, Any] = field(default_factory=dict)

    # -- the funnel, from stats.json ------------------------------------------------------------
    @cached_property
    def funnel(self) -> pd.DataFrame:
        rows = [{k: s[k] for k in ("stage", "in", "dropped", "out")} for s in self.stats.get("funnel", [])]
        return pd.DataFrame(rows, columns=["stage", "in", "dropped", "out"])

    @cached_property
    def reasons(self) -> pd.DataFrame:
        rows = [{"stage": s["stage"], "reason": r, "documents": n}
                for s in self.stats.get("funnel", []) for r, n in s["reasons"].items()]
        return pd.DataFrame(rows, columns=["stage", "reason", "documents"])

    @cached_property
    def files(self) -> pd.DataFrame:
        rows = [{"file": name, "records": e["records"], "kept": e["kept"], "dropped": sum(e["dropped"].values()),
                 "accounted": e["accounted"], "errors": len(e.get("errors", []))}
                for name, e in self.stats.get("files", {}).items()]
        return pd.DataFrame(rows, columns=["file", "records", "kept", "dropped", "accounted", "errors"])

    @property
    def totals(self) -> dict[str, int]:
        return dict(self.stats.get("totals", {}))

    # -- Parquet outputs --------------------------------------------------------------------------
    def parquet_files(self, directory: str) -> list[Path]:
        root = self.path / directory
        return sorted(root.glob("*.parquet")) if root.is_dir() else []

    @property
    def has_rejects(self) -> bool:
        return bool(self.parquet_files(REJECTS_DIR))

    @property
    def has_clusters(self) -> bool:
        return bool(self.parquet_files(CLUSTERS_DIR))

    def documents(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Kept documents; pass ``columns`` to leave the text (or anything else) unread."""
        return self._read(DOCUMENTS_DIR, columns)

    def rejects(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Dropped documents with ``stage`` and ``reason`` (empty unless output.rejects was on)."""
        return self._read(REJECTS_DIR, columns)

    def clusters(self) -> pd.DataFrame | None:
        """One row per document of a near-duplicate cluster (doc_id, cluster_id, cluster_size, kept)."""
        return self._read(CLUSTERS_DIR, None) if self.has_clusters else None

    def batches(self, directory: str, columns: Sequence[str], batch_size: int = 2048) -> Iterator[pa.RecordBatch]:
        """Stream a Parquet output in record batches, for passes that must not hold it whole."""
        for path in self.parquet_files(directory):
            parquet = pq.ParquetFile(path)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            yield from parquet.iter_batches(batch_size=batch_size, columns=present)

    def _read(self, directory: str, columns: Sequence[str] | None) -> pd.DataFrame:
        files = self.parquet_files(directory)
        if not files:
            return pd.DataFrame(columns=list(columns or []))
        try:
            tables = [pq.read_table(f, columns=list(columns) if columns else None) for f in files]
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise RunStatsError(f"{self.path / directory}: cannot read Parquet: {exc}") from None
        return pa.concat_tables(tables).to_pandas()

    def languages(self) -> pd.Series:
        """Kept documents per language, most frequent first."""
        langs = self.documents(["lang"])
        if langs.empty:
            return pd.Series(dtype="int64", name="documents")
        return langs["lang"].replace("", "(none)").value_counts().rename("documents")

    # -- shards -----------------------------------------------------------------------------------
    @cached_property
    def manifests(self) -> dict[str, Manifest]:
        """Shard manifests of the run: ``shards/manifest.json`` or one per ``shards/<sub>/``."""
        root = self.path / SHARDS_DIR
        paths = [root / MANIFEST_NAME] if (root / MANIFEST_NAME).is_file() else sorted(root.glob(f"*/{MANIFEST_NAME}"))
        found = {}
        for path in paths:
            try:
                manifest = read_manifest(path)
            except ShardError as exc:
                raise RunStatsError(str(exc)) from None
            found[manifest.source if path.parent == root else f"{manifest.source}/{path.parent.name}"] = manifest
        return found

    @property
    def shards(self) -> pd.DataFrame:
        rows = [{"source": name, "file": s.bin, "tokens": s.tokens, "documents": s.documents,
                 "bytes": s.bytes + 8 * (s.documents + 1)}
                for name, m in self.manifests.items() for s in m.shards]
        return pd.DataFrame(rows, columns=["source", "file", "tokens", "documents", "bytes"])

    @property
    def tokens(self) -> int | None:
        """Tokens in the run's shards (separators included), or None when it was not tokenized."""
        return sum(m.tokens for m in self.manifests.values()) if self.manifests else None


def load_run(run_dir: str | Path) -> RunStats:
    """A run directory (what ``refinery run`` wrote); fails only if it holds no run at all."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunStatsError(f"{path}: not a directory")
    stats_path = path / STATS_FILE
    stats: dict[str, Any] = {}
    if stats_path.is_file():
        try:
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunStatsError(f"{stats_path}: cannot read run statistics: {exc}") from None
    elif not (path / DOCUMENTS_DIR).is_dir():
        raise RunStatsError(f"{path}: no {STATS_FILE} and no {DOCUMENTS_DIR}/; is this a refinery run directory?")
    return RunStats(path, stats)
