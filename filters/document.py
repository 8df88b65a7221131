"""The one document record that flows from extraction to the documents Parquet.

Every stage reads and writes this shape. A stage may add or change fields (through a
:class:`~filters.verdict.Verdict`'s updates) but never drops one, so the Parquet that comes out
carries every score that was computed on the way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Document:
    """One text document plus where it came from and what the stages measured on it.

    ``id`` is stable across re-runs: the WARC-Record-ID for web pages (or a digest of file and
    offset where a record has none), a source-specific key for the other sources. ``timestamp``
    is an ISO 8601 UTC string (``2024-05-18T03:04:05Z``) because WARC dates arrive as strings and
    sort correctly as such; ``meta`` holds the rest as strings so the Arrow schema stays fixed.
    """

    id: str
    text: str
    source: str = "commoncrawl"
    url: str = ""
    lang: str = ""
    lang_score: float | None = None
    quality_score: float | None = None
    timestamp: str = ""
    warc_file: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Document:
        """A copy with ``changes`` applied; unknown field names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict[str, Any]:
        """A plain dict in the column order of :data:`ARROW_SCHEMA` (``meta`` as key/value pairs)."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row["meta"] = sorted(self.meta.items())
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Document:
        """Inverse of :meth:`to_row`; accepts ``meta`` as a dict or as key/value pairs."""
        meta = row.get("meta") or {}
        values = {f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in row}
        values["meta"] = dict(meta) if not isinstance(meta, dict) else meta
        return cls(**values)


ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("url", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float64()),
        pa.field("quality_score", pa.float64()),
        pa.field("timestamp", pa.string()),
        pa.field("warc_file", pa.string()),
        pa.field("meta", pa.map_(pa.string(), pa.string())),
    ]
)
"""Arrow schema of the documents Parquet; its column order is the field order of Document."""

assert ARROW_SCHEMA.names == [f.name for f in dataclasses.fields(Document)]
