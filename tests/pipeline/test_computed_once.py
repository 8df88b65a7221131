"""Every DoFn processes every element once per run, on the DirectRunner and on our Dask runner.

A runner that computes a shared upstream task twice still writes correct output (a file sink
overwrites, a count is summed once), so only a count of the work itself shows it: the Dask runner
once ran Read+Extract twice per run and cost 1.8x the CPU of one DirectRunner worker. Beam
metrics cannot make that count here, because the Dask runner reports none. Instead every DoFn of
the test graph appends one line per element it processes to a file of its own (one file per DoFn
instance, named uniquely, so that bundles in different worker processes never share one); after
the run, the files of each DoFn must hold each of its elements exactly once.
"""

from __future__ import annotations

import collections
import functools
import os
import typing as t
import uuid
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.run import run
from pipeline.sinks import WriteJsonLines
from tests.conftest import WARC_DIR

dask = pytest.importorskip("dask", reason="install the dask extra: pip install -e '.[dask]'")
distributed = pytest.importorskip("dask.distributed")

N = 60  # elements created; the even ones are kept, the odd ones dropped
KEPT, DROPPED = "kept", "dropped"


def _record(log_dir: str, step: str, element: object) -> None:
    """Append ``element`` to this process's file for ``step``: one line per element processed.

    The file is named by step, process and a per-call-site token, and opened in append mode per
    line, so that concurrent bundles (threads or worker processes) never interleave or overwrite.
    """
    path = os.path.join(log_dir, f"{step}.{os.getpid()}.{_TOKEN}.log")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{element!r}\n")


_TOKEN = uuid.uuid4().hex  # differs per worker process once this module is imported there


class _Recorded(beam.DoFn):
    """Base for the test's DoFns: ``self.seen(x)`` records that this step processed ``x``."""

    def __init__(self, log_dir: str, step: str) -> None:
        self._log_dir = log_dir
        self._step = step

    def seen(self, element: object) -> None:
        _record(self._log_dir, self._step, element)


class _Split(_Recorded):
    """The shape of every stage of ours: kept elements on the main output, the rest tagged dropped."""

    def process(self, n: int):
        self.seen(n)
        yield n if n % 2 == 0 else beam.pvalue.TaggedOutput(DROPPED, n)


class _Map(_Recorded):
    """Records its input and yields ``fn(input)``; a side input, if any, is passed on to ``fn``."""

    def __init__(self, log_dir: str, step: str, fn=lambda x, *side: x) -> None:
        super().__init__(log_dir, step)
        self._fn = fn

    def process(self, element, *side):
        self.seen(element[0] if isinstance(element, tuple) else element)
        yield self._fn(element, *side)


def _graph(p: beam.Pipeline, log_dir: str, out: Path) -> None:
    """Create -> Reshuffle -> kept/dropped split -> several consumers of each tag, a side input,
    a GroupByKey, a Flatten and four sinks: the shapes of our pipeline (pipeline/run.py)."""
    def step(name: str, fn, *side_inputs) -> beam.ParDo:
        return beam.ParDo(_Map(log_dir, name, fn), *side_inputs)

    split = (p | beam.Create(list(range(N))) | "Spread" >> beam.Reshuffle()
             | "Split" >> beam.ParDo(_Split(log_dir, "Split")).with_outputs(DROPPED, main=KEPT))
    kept, dropped = split[KEPT], split[DROPPED]
    # Two consumers of kept, each down to its own sink.
    rows = kept | "KeptRow" >> step("KeptRow", lambda n: {"id": str(n)})
    _ = rows | "WriteKept" >> WriteJsonLines(str(out / "kept"))
    keyed = kept | "Key" >> step("Key", lambda n: (n % 5, n))
    per_key = step("PerKey", lambda kv: {"key": kv[0], "n": len(kv[1])})
    grouped = keyed | "Group" >> beam.GroupByKey() | "PerKey" >> per_key
    _ = grouped | "WritePerKey" >> WriteJsonLines(str(out / "per_key"))
    # Two consumers of dropped, one of them with a side input computed from kept.
    total_kept = kept | "SumKept" >> beam.CombineGlobally(sum)
    with_side = step("WithSide", lambda n, total: {"n": n, "total": total},
                     beam.pvalue.AsSingleton(total_kept))
    _ = dropped | "WithSide" >> with_side | "WriteSide" >> WriteJsonLines(str(out / "side"))
    reasons = dropped | "Reason" >> step("Reason", lambda n: {"dropped": n})
    # A Flatten of both tags' descendants into one more sink.
    _ = ((reasons, kept | "KeptCount" >> step("KeptCount", lambda n: {"kept": n}))
         | "All" >> beam.Flatten() | "Funnel" >> step("Funnel", lambda row: (next(iter(row)), 1))
         | "Count" >> beam.CombinePerKey(sum) | "CountRow" >> beam.Map(lambda kv: {kv[0]: kv[1]})
         | "WriteCounts" >> WriteJsonLines(str(out / "counts")))


def _processed(log_dir: Path) -> dict[str, collections.Counter[str]]:
    """step -> how many times each element was recorded, over every file of that step."""
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for path in log_dir.iterdir():
        counts[path.name.split(".")[0]].update(path.read_text(encoding="utf-8").splitlines())
    return counts


def _expected() -> dict[str, collections.Counter[str]]:
    even, odd = [n for n in range(N) if n % 2 == 0], [n for n in range(N) if n % 2]
    once = lambda xs: collections.Counter(repr(x) for x in xs)  # noqa: E731
    return {
        "Split": once(range(N)), "KeptRow": once(even), "Key": once(even), "PerKey": once(range(5)),
        "WithSide": once(odd), "Reason": once(odd), "KeptCount": once(even),
        "Funnel": once([{"dropped": n} for n in odd] + [{"kept": n} for n in even]),
    }


@pytest.mark.parametrize("runner", ["direct", "dask"])
def test_every_dofn_processes_every_element_once(
    runner: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    args = ["--runner", "DirectRunner"]
    if runner == "dask":
        address = request.getfixturevalue("cluster")
        args = ["--runner", "pipeline.dask_runner.DaskRunner", "--dask_client_address", address,
                "--dask_npartitions", "4", "--temp_location", str(tmp_path / "temp")]
    log_dir = tmp_path / "processed"
    log_dir.mkdir()
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _graph(p, str(log_dir), tmp_path / "out")
    processed = _processed(log_dir)
    twice = {step: sorted(x for x, n in seen.items() if n > 1) for step, seen in processed.items()}
    assert not {step: xs for step, xs in twice.items() if xs}, "elements processed more than once"
    assert processed == _expected()


def _count_calls(log_dir: str | None) -> None:
    """Make ReadArchive and ExtractText in this process record each element they process; with
    ``None``, undo it. Run on every Dask worker through ``Client.run``: a worker unpickles a DoFn
    by reference to its class, so the class attribute patched here is the one its bundles call."""
    from pipeline.extract import _ExtractText
    from pipeline.read import _ReadArchive

    for cls, step, key in ((_ReadArchive, "Read", lambda piece: piece),
                           (_ExtractText, "Extract", lambda record: record.record_id)):
        original = getattr(cls.process, "__wrapped__", cls.process)
        if log_dir is None:
            cls.process = original
            continue

        def process(self, element, _original=original, _step=step, _key=key):
            _record(t.cast(str, log_dir), _step, _key(element))
            return _original(self, element)

        cls.process = functools.wraps(original)(process)


@pytest.mark.integration
def test_read_and_extract_run_once_per_record_on_dask(cluster: str, tmp_path: Path) -> None:
    """The real ``refinery run`` graph on one real WARC: each piece is read and each HTML record
    extracted exactly once, and as many records are extracted as the funnel says reached Extract."""
    log_dir = tmp_path / "processed"
    log_dir.mkdir()
    with distributed.Client(cluster) as client:
        client.run(_count_calls, str(log_dir))
        try:
            beam_args = ["--runner", "pipeline.dask_runner.DaskRunner", "--dask_client_address", cluster,
                         "--dask_npartitions", "4"]
            result = run([str(WARC_DIR / "dolma_wget_sample-0000.warc.gz")], str(tmp_path / "out"),
                         beam_args=beam_args)
        finally:
            client.run(_count_calls, None)
    processed = _processed(log_dir)
    assert {step: sorted(x for x, n in seen.items() if n > 1) for step, seen in processed.items()} == {
        "Read": [], "Extract": []}
    assert len(processed["Read"]) == 1  # the file is small: one piece
    reached_extract = next(s["in"] for s in result.stats["funnel"] if s["stage"] == "Extract")
    assert len(processed["Extract"]) == reached_extract > 20
