"""The shape every stage shares: kept documents out of the main output, dropped ones with a reason.

A stage is a composite PTransform whose ``expand`` returns ``{"kept": ..., "dropped": ...}``.
Dropped elements are :class:`Dropped` records, so the funnel, the per-file accounting and the
optional rejects Parquet are all built from one PCollection that every stage feeds.
``FilterStage`` runs a list of pure filters from ``filters/`` and counts ``in``, ``kept`` and
``dropped.<reason>`` per stage as Beam counters, for the runner's UI while the job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters import Document, Filter

import pipeline.beam_dofn_specs  # noqa: F401  (installs the memo of Beam's DoFn introspection)

KEPT = "kept"
DROPPED = "dropped"
METRICS_NAMESPACE = "refinery"


@dataclass(frozen=True, slots=True)
class Dropped:
    """A document a stage removed, with the stage label and the filter's reason."""

    doc: Document
    stage: str
    reason: str


class _ApplyFilters(beam.DoFn):
    """Runs filters in order; the first drop wins, and every filter's updates stay on the doc."""

    def __init__(self, stage: str, filters: Sequence[Filter]) -> None:
        self._stage = stage
        self._filters = tuple(filters)

    def setup(self) -> None:
        # Filters with a model (language ID, quality classifier) load it here, once per worker,
        # and fail here on a bad setting rather than on the first document.
        for flt in self._filters:
            if hasattr(flt, "setup"):
                flt.setup()
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{self._stage}.in")
        self._kept = Metrics.counter(METRICS_NAMESPACE, f"{self._stage}.kept")

    def process(self, doc: Document):
        self._in.inc()
        for flt in self._filters:
            verdict = flt(doc)
            doc = verdict.apply(doc)
            if not verdict.keep:
                Metrics.counter(METRICS_NAMESPACE, f"{self._stage}.dropped.{verdict.reason}").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, Dropped(doc, self._stage, verdict.reason))
                return
        self._kept.inc()
        yield doc


class FilterStage(beam.PTransform):
    """A named stage made of pure filters: ``{"kept": docs, "dropped": Dropped records}``."""

    def __init__(self, stage: str, filters: Sequence[Filter]) -> None:
        super().__init__(label=stage)
        self._stage = stage
        self._filters = tuple(filters)

    def expand(self, docs):
        outputs = docs | "Apply" >> beam.ParDo(_ApplyFilters(self._stage, self._filters)).with_outputs(
            DROPPED, main=KEPT
        )
        return {KEPT: outputs[KEPT], DROPPED: outputs[DROPPED]}
