"""The catalogue of stages a recipe can list, and how each becomes a PTransform.

A recipe (``stages:`` in a pipeline config) is an ordered list of these names. Filter stages
wrap one pure filter from ``filters/`` whose settings are the config section of the same name;
line dedup and the two dedup stages are corpus-wide aggregations with their own transforms.
The Beam label of a stage is also its name in the funnel, so it never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from pipeline.stage import FilterStage


@dataclass(frozen=True)
class StageSpec:
    label: str
    # (pipeline config, a scratch directory of the run for this stage) -> PTransform returning
    # {"kept", "dropped", ...}. Stages that decide from the whole corpus park documents there.
    build: Callable[[Any, str], beam.PTransform]


def _filter(label: str, section: str) -> StageSpec:
    return StageSpec(label, lambda cfg, _: FilterStage(label, [getattr(cfg, section)]))


def _line_dedup(cfg: Any, scratch: str) -> beam.PTransform:
    from pipeline.line_dedup import LineDedup

    return LineDedup(cfg.line_dedup, spill_dir=scratch)


def _dedup_together(cfg: Any) -> bool:
    """Whether the recipe runs minhash_dedup right after exact_dedup.

    Then both are decided by one :class:`pipeline.dedup.Deduplicate` in the minhash_dedup step, so
    that documents are spilled and read back once rather than once per stage; the
    exact_dedup step passes the documents through and its drops, still labelled ``ExactDedup``,
    leave with MinHashDedup's. Nothing runs between the two, so the result is the same.
    """
    stages = list(cfg.stages)
    return any(a == "exact_dedup" and b == "minhash_dedup" for a, b in zip(stages, stages[1:]))


def _exact_dedup(cfg: Any, scratch: str) -> beam.PTransform:
    from pipeline.dedup import ExactDedup, ExactDedupWithNext

    return ExactDedupWithNext() if _dedup_together(cfg) else ExactDedup(cfg.dedup, spill_dir=scratch)


def _minhash_dedup(cfg: Any, scratch: str) -> beam.PTransform:
    from pipeline.dedup import MinHashDedup

    return MinHashDedup(cfg.dedup, exact=_dedup_together(cfg), spill_dir=scratch)


STAGES: dict[str, StageSpec] = {
    "url_blocklist": _filter("UrlBlocklist", "url_blocklist"),
    "langid": _filter("LanguageId", "langid"),
    "banned_words": _filter("BannedWords", "banned_words"),
    "gopher_repetition": _filter("GopherRepetition", "gopher_repetition"),
    "line_dedup": StageSpec("LineDedup", _line_dedup),
    "gopher_quality": _filter("GopherQuality", "gopher_quality"),
    "c4": _filter("C4", "c4"),
    "fineweb": _filter("FineWeb", "fineweb"),
    "quality_classifier": _filter("QualityClassifier", "quality_classifier"),
    "exact_dedup": StageSpec("ExactDedup", _exact_dedup),
    "minhash_dedup": StageSpec("MinHashDedup", _minhash_dedup),
}
