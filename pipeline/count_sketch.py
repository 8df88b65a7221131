"""``SketchCounts``: a PCollection of key arrays -> one :class:`~filters.count_sketch.CountSketch`.

A combine, so runners lift it: each bundle sums its keys into a partial sketch, and only the
partial sketches (their non-zero cells) cross the shuffle. The result is meant as a singleton
side input of the step that decides which keys go on to an exact count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from filters.count_sketch import CountSketch


class _Sum(beam.CombineFn):
    def __init__(self, cells: int, keys_of: Callable[[Any], np.ndarray]) -> None:
        self._cells = cells
        self._keys_of = keys_of

    def create_accumulator(self) -> CountSketch:
        return CountSketch(self._cells)

    def add_input(self, sketch: CountSketch, element: Any) -> CountSketch:
        sketch.add(self._keys_of(element))
        return sketch

    def merge_accumulators(self, sketches: Iterable[CountSketch]) -> CountSketch:
        # One at a time: a runner may decode the partial sketches lazily, one table each.
        parts = iter(sketches)
        merged = next(parts)
        for sketch in parts:
            merged.merge(sketch)
        return merged

    def extract_output(self, sketch: CountSketch) -> CountSketch:
        return sketch


def SketchCounts(cells: int, keys_of: Callable[[Any], np.ndarray]) -> beam.PTransform:
    """Elements -> one CountSketch of ``cells`` cells per row over ``keys_of(element)`` for each."""
    return beam.CombineGlobally(_Sum(cells, keys_of))
