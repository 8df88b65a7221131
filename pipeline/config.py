"""The pipeline config: the reader, the recipe (an ordered list of stages) and each stage's settings.

``configs/commoncrawl.yaml`` is the default web config. Each stage's section holds the fields of
the filter or transform that implements it, so a threshold is set where it is used, with its
source cited beside it in the YAML. Unknown keys and unknown stage names fail with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.banned_words import BannedWords
from filters.c4 import C4
from filters.config import load_yaml
from filters.fineweb import FineWeb
from filters.gopher_quality import GopherQuality
from filters.gopher_repetition import GopherRepetition
from filters.html import ExtractOptions
from filters.langid import LanguageId
from filters.minhash import DedupConfig
from filters.quality_classifier import QualityClassifier
from filters.url_blocklist import UrlBlocklist
from pipeline.line_dedup import LineDedupConfig
from pipeline.read import ReadConfig
from pipeline.readers import InputConfig
from pipeline.stages import STAGES
from pipeline.tokenize import TokenizeConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "commoncrawl.yaml"

# The web recipe when a config does not list its own: cheap URL and language checks first, then
# repetition and boilerplate, the quality rules, and dedup last (it is the most expensive per doc).
DEFAULT_STAGES = ("url_blocklist", "langid", "banned_words", "gopher_repetition", "line_dedup",
                  "gopher_quality", "c4", "fineweb", "exact_dedup", "minhash_dedup")


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """What gets written besides the kept documents."""

    # Write every dropped document, with its stage and reason, to rejects/ (Parquet).
    rejects: bool = False
    # Parquet files per output; 0 lets the runner choose (one per bundle on DirectRunner).
    num_shards: int = 0


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """A whole run's settings: sections mirror the stages they configure."""

    # The `source` column of every document (the mixture groups by it).
    source: str = "commoncrawl"
    input: InputConfig = field(default_factory=InputConfig)
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    # The recipe: stage names from pipeline.stages.STAGES, run in this order.
    stages: tuple[str, ...] = DEFAULT_STAGES
    url_blocklist: UrlBlocklist = field(default_factory=UrlBlocklist)
    langid: LanguageId = field(default_factory=LanguageId)
    banned_words: BannedWords = field(default_factory=BannedWords)
    gopher_repetition: GopherRepetition = field(default_factory=GopherRepetition)
    line_dedup: LineDedupConfig = field(default_factory=LineDedupConfig)
    gopher_quality: GopherQuality = field(default_factory=GopherQuality)
    c4: C4 = field(default_factory=C4)
    fineweb: FineWeb = field(default_factory=FineWeb)
    # No default model: `refinery train-quality` makes one; the stage needs its model_path.
    quality_classifier: QualityClassifier | None = None
    dedup: DedupConfig = field(default_factory=DedupConfig)
    # Token shards of the kept documents, when a tokenizer is named (`refinery train-tokenizer`).
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"stages: unknown stage '{unknown[0]}' (known: {', '.join(STAGES)})")
        repeated = sorted({s for s in self.stages if self.stages.count(s) > 1})
        if repeated:
            raise ValueError(f"stages: '{repeated[0]}' is listed twice")
        if "quality_classifier" in self.stages and self.quality_classifier is None:
            raise ValueError("stages lists quality_classifier but the quality_classifier section "
                             "(its model_path) is missing; train one with `refinery train-quality`")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """The config at ``path`` (the default web config if None), with dotted-key overrides."""
    return load_yaml(PipelineConfig, path or DEFAULT_CONFIG, overrides)
