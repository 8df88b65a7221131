"""The pipeline config: one typed dataclass per stage, read from YAML by the one loader.

``configs/commoncrawl.yaml`` is the default web config. Every stage section can be tuned there,
and each threshold's source is cited next to it in the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.config import load_yaml
from filters.html import ExtractOptions
from pipeline.read import ReadConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "commoncrawl.yaml"


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """What gets written besides the kept documents."""

    # Write every dropped document, with its stage and reason, to rejects/ (Parquet).
    rejects: bool = False
    # Parquet files per output; 0 lets the runner choose (one per bundle on DirectRunner).
    num_shards: int = 0


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """A whole run's settings; sections mirror the stages in the order they run."""

    # The `source` column of every document (the mixture groups by it).
    source: str = "commoncrawl"
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    output: OutputConfig = field(default_factory=OutputConfig)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """The config at ``path`` (the default web config if None), with dotted-key overrides."""
    return load_yaml(PipelineConfig, path or DEFAULT_CONFIG, overrides)
