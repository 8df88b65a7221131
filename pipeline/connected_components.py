"""Connected components of a graph held as a PCollection of edges, computed by Beam shuffles only.

Alternating large-star and small-star (Kiveris et al. 2014, "Connected Components in MapReduce
and Beyond", SoCC) rewire every edge towards the smallest node of its component until the graph
is a set of stars, one per component, centred on that smallest node. Each step groups edges by
one endpoint, so a worker only ever holds one node's neighbourhood, never the edge list: this is
what keeps near-dedup from collapsing into one process as datatrove's single-worker union-find
does at dump scale.

Beam graphs are static, so ``max_rounds`` rounds are unrolled. Every step counts the edges it
rewires; the edges rewired in the last round are summed, and a non-zero sum fails the pipeline
with a message naming ``max_rounds``: an unconverged result would silently keep duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.stage import METRICS_NAMESPACE

Node = Any  # any totally ordered value with a deterministic Beam coder (tuples of str here)
Edge = tuple[Node, Node]
_CHANGES = "changes"


class NotConvergedError(RuntimeError):
    """The unrolled rounds ended while edges were still being rewired."""


class _LargeStar(beam.DoFn):
    """At node u, link every larger neighbour to the smallest node of u's closed neighbourhood."""

    def __init__(self, counter: str) -> None:
        self._counter = counter

    def setup(self) -> None:
        self._changed = Metrics.counter(METRICS_NAMESPACE, self._counter)

    def process(self, element: tuple[Node, Iterable[Node]]) -> Iterator[Any]:
        u, neighbours = element
        m = min(min(neighbours), u)  # first pass; the grouped iterable can be re-read
        changed = 0
        for v in neighbours:  # second pass, streaming: no set of a hub's neighbours in memory
            if v > u:
                yield (v, m)
                changed += m != u
        if changed:
            self._changed.inc(changed)
            yield beam.pvalue.TaggedOutput(_CHANGES, changed)


class _SmallStar(beam.DoFn):
    """At node u, link u and all its smaller neighbours to the smallest of them."""

    def __init__(self, counter: str) -> None:
        self._counter = counter

    def setup(self) -> None:
        self._changed = Metrics.counter(METRICS_NAMESPACE, self._counter)

    def process(self, element: tuple[Node, Iterable[Node]]) -> Iterator[Any]:
        u, parents = element  # every parent is smaller than u
        m = min(parents)
        yield (u, m)
        changed = 0
        for v in parents:
            if v != m:
                yield (v, m)
                changed += 1
        if changed:
            self._changed.inc(changed)
            yield beam.pvalue.TaggedOutput(_CHANGES, changed)


def _both_directions(edge: Edge) -> Iterator[Edge]:
    a, b = edge
    if a != b:
        yield (a, b)
        yield (b, a)


def _child_to_parent(edge: Edge) -> Edge:
    a, b = edge
    return (a, b) if a > b else (b, a)


def _fail_if_changed(total: int, max_rounds: int) -> Iterator[int]:
    if total:
        raise NotConvergedError(
            f"connected components did not converge in max_rounds={max_rounds}: the last round still "
            f"rewired {total} edges; raise dedup.max_rounds"
        )
    yield total


class ConnectedComponents(beam.PTransform):
    """Edges (a, b) in any orientation -> (node, root) for every non-root node of every component.

    The root is the component's minimum node. Nodes that appear in no edge are not in the output;
    self-loops are ignored. Counters ``<label>.round_<i>.changed`` show how fast it converged.
    """

    def __init__(self, max_rounds: int = 8, label: str = "ConnectedComponents") -> None:
        super().__init__(label=label)
        if max_rounds < 2:
            raise ValueError("max_rounds must be >= 2: the last round only proves convergence")
        self._max_rounds = max_rounds
        self._name = label

    def expand(self, edges):
        edges = (
            edges
            | "Orient" >> beam.Map(_child_to_parent)
            | "DropSelfLoops" >> beam.Filter(lambda e: e[0] != e[1])
            | "DistinctInput" >> beam.Distinct()
        )
        last_changes = None
        for i in range(1, self._max_rounds + 1):
            prefix = f"Round{i:02d}"
            counter = f"{self._name}.round_{i:02d}.changed"
            large = (
                edges
                | f"{prefix}Undirect" >> beam.FlatMap(_both_directions)
                | f"{prefix}GroupNeighbours" >> beam.GroupByKey()
                | f"{prefix}LargeStar" >> beam.ParDo(_LargeStar(counter)).with_outputs(_CHANGES, main="edges")
            )
            small = (
                large.edges
                | f"{prefix}GroupParents" >> beam.GroupByKey()
                | f"{prefix}SmallStar" >> beam.ParDo(_SmallStar(counter)).with_outputs(_CHANGES, main="edges")
            )
            edges = small.edges | f"{prefix}Distinct" >> beam.Distinct()
            last_changes = (large[_CHANGES], small[_CHANGES])
        # A leaf branch: it runs with the pipeline and fails it if the last round still rewired.
        _ = (
            last_changes
            | "LastRoundChanges" >> beam.Flatten()
            | "SumLastRoundChanges" >> beam.CombineGlobally(sum)
            | "CheckConverged" >> beam.FlatMap(_fail_if_changed, self._max_rounds)
        )
        return edges
