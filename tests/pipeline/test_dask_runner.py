"""The pipeline on Dask: pipeline.dask_runner.DaskRunner against a real 2-worker LocalCluster.

Beam's own DaskRunner mixes the outputs of multi-output ParDos, runs only one leaf of the graph
and drops what finish_bundle emits; these tests hold our runner and sinks to the DirectRunner's
results, first on a small graph with exactly those shapes, then on real WARC files.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from filters.document import Document
from filters.minhash import DedupConfig
from pipeline.dedup import ExactDedup, MinHashDedup
from pipeline.run import run
from pipeline.sinks import WriteJsonLines, WriteParquet
from pipeline.stage import Dropped
from tests.conftest import WARC_DIR
from tests.pipeline.test_dedup import WIKITEXT, edited

dask = pytest.importorskip("dask", reason="install the dask extra: pip install -e '.[dask]'")
distributed = pytest.importorskip("dask.distributed")

# Small crawls that keep documents, drop some for many reasons, and share boilerplate lines.
WARCS = ["dolma_wget_sample-0000.warc.gz", "dolma_wget_sample-0001.warc.gz", "ukwa_wikipedia-mona-lisa.warc.gz",
         "resiliparse_CC-MAIN-2020-34_sample.warc.gz"]
SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("n", pa.int64())])


def dask_args(address: str) -> list[str]:
    return ["--runner", "pipeline.dask_runner.DaskRunner", "--dask_client_address", address,
            "--dask_npartitions", "4"]


class _Split(beam.DoFn):
    def process(self, n: int):
        yield n if n % 2 == 0 else beam.pvalue.TaggedOutput("odd", n)


class _CountPerBundle(beam.DoFn):
    def start_bundle(self) -> None:
        self._n = 0

    def process(self, n: int) -> None:
        self._n += 1

    def finish_bundle(self):
        yield WindowedValue(self._n, 0, [GlobalWindow()])


def _small_graph(p: beam.Pipeline, out: Path) -> None:
    split = p | beam.Create(list(range(40))) | beam.ParDo(_Split()).with_outputs("odd", main="even")
    total_odd = split.odd | "SumOdd" >> beam.CombineGlobally(sum)
    _ = (split.even | "WithOdd" >> beam.Map(lambda n, odd: {"id": f"e{n}", "n": n + odd}, beam.pvalue.AsSingleton(total_odd))
         | "WriteEven" >> WriteParquet(str(out / "even" / "part"), SCHEMA, num_shards=3))
    _ = split.odd | "OddJson" >> beam.Map(lambda n: {"odd": n}) | "WriteOdd" >> WriteJsonLines(str(out / "odd" / "part"))
    _ = (split.even | beam.ParDo(_CountPerBundle()) | "Sum" >> beam.CombineGlobally(sum)
         | "WriteCount" >> WriteJsonLines(str(out / "count" / "part")))
    _ = (split.odd | beam.Filter(lambda n: n > 1000) | "Empty" >> beam.Map(lambda n: {"id": str(n), "n": n})
         | "WriteEmpty" >> WriteParquet(str(out / "empty" / "part"), SCHEMA))


def _numbered(names: list[str]) -> bool:
    """part-00000-of-N .. part-(N-1)-of-N, nothing else."""
    return names == [f"part-{i:05d}-of-{len(names):05d}.jsonl" for i in range(len(names))]


def _read_small(out: Path) -> dict:
    lines = lambda d: [json.loads(x) for f in sorted((out / d).iterdir()) for x in f.read_text().splitlines()]  # noqa: E731
    return {
        "even": sorted(pq.read_table(out / "even").to_pylist(), key=lambda r: r["n"]),
        "odd": sorted(r["odd"] for r in lines("odd")),
        "count": lines("count"),
        # Without num_shards a sink writes one file per bundle (pipeline/sinks.py), and bundles are
        # the runner's: "odd" may be split differently, though always into whole, numbered files.
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.parts[len(out.parts)] != "odd"),
        "odd_files_numbered": _numbered(sorted(p.name for p in (out / "odd").iterdir())),
        "empty_rows": pq.read_table(out / "empty").num_rows,
        "empty_schema": pq.read_schema(next((out / "empty").iterdir())).remove_metadata().equals(SCHEMA),
    }


def test_tagged_outputs_side_inputs_finish_bundle_and_every_leaf(cluster: str, tmp_path: Path) -> None:
    results = {}
    temp_location = tmp_path / "temp"
    for name, args in (("direct", ["--runner", "DirectRunner"]),
                       ("dask", [*dask_args(cluster), "--temp_location", str(temp_location)])):
        p = beam.Pipeline(options=PipelineOptions(args))
        _small_graph(p, tmp_path / name)
        result = p.run()
        if name == "dask":  # the shuffle files go under --temp_location and go with the run
            assert Path(result.shuffle_dir).parent == temp_location
        result.wait_until_finish()
        results[name] = _read_small(tmp_path / name)
    assert results["dask"] == results["direct"]
    assert temp_location.is_dir() and not list(temp_location.iterdir())  # written there, then deleted
    direct = results["direct"]
    assert [r["n"] for r in direct["even"]] == [n + 400 for n in range(0, 40, 2)]  # 400 = sum of odd < 40
    assert direct["odd"] == list(range(1, 40, 2))
    assert direct["count"] == [20]
    assert direct["empty_rows"] == 0 and direct["empty_schema"]
    # Final names only, numbered in order; no temporary directory left behind.
    assert [f for f in direct["files"] if f.startswith("even/")] == [
        "even/part-00000-of-00003.parquet", "even/part-00001-of-00003.parquet", "even/part-00002-of-00003.parquet"]
    assert not [f for f in results["dask"]["files"] if ".temp" in f]


def test_dask_sizes_blocks_exactly_and_the_shuffle_groups_by_encoded_key(tmp_path: Path) -> None:
    # A worker spills only what dask can measure; its fallback sizeof saw ~112 bytes per page.
    import dask.bag
    from dask.sizeof import sizeof

    from pipeline.dask_shuffle import Block, group_by_key

    page = Document(id="p", text="word " * 20_000, url="https://example.org/")
    block = Block([page] * 3 + [Dropped(page, "Stage", "reason")])
    assert sizeof(block) >= 100_000  # one pickled page: repeats of one object are memoized
    assert [type(x).__name__ for x in block] == ["Document"] * 3 + ["Dropped"] and len(block) == 4
    # Keys as dedup's graph nodes make them; 1 and 1.0 encode differently, so Beam keeps them apart.
    keys = [("1", "2020-01-01", -0.5, f"doc-{i % 97}") for i in range(3000)] + [1, 1.0, "1"]
    bag = dask.bag.from_sequence(list(zip(keys, range(3003))), npartitions=7)
    grouped = dask.compute(group_by_key(bag, str(tmp_path)), scheduler="sync")[0]
    expected: dict = {}
    for key, n in zip(keys, range(3003)):
        expected.setdefault((type(key), key), []).append(n)
    assert len(grouped) == 100 and {(type(k), k): sorted(v) for k, v in grouped} == expected
    assert len([f for f in tmp_path.rglob("*") if f.is_file()]) == 7  # one file of pieces per input partition


def test_dask_groups_unwrapped_and_refuses_windows_it_would_ignore() -> None:
    # Beam's own Dask GroupByKey wraps each element in a WindowedValue that the shuffle holds and
    # dask cannot size, then drops the windows; ours groups plain elements in the global window only.
    from apache_beam.transforms import window

    from pipeline.dask_runner import DaskRunner

    p = beam.Pipeline(runner=DaskRunner())
    _ = (p | beam.Create([("k", 1)]) | beam.WindowInto(window.FixedWindows(60)) | "Group" >> beam.GroupByKey())
    with pytest.raises(NotImplementedError, match="Group: .*global window only, not FixedWindows"):
        p.run()


def test_dask_combines_before_it_groups() -> None:
    # Count.Globally over the corpus would otherwise send every document to one task.
    from apache_beam.transforms.combiners import LiftedCombinePerKey

    from pipeline.dask_runner import _CombinePerKeyOverride

    p = beam.Pipeline()
    _ = p | beam.Create(range(10)) | beam.combiners.Count.Globally()
    p.replace_all([_CombinePerKeyOverride()])
    lifted: list = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node) -> None:
            lifted.extend([node] if isinstance(node.transform, LiftedCombinePerKey) else [])

    p.visit(Visitor())
    assert len(lifted) == 1


def _near_duplicate_families() -> list[Document]:
    """40 real WikiText windows, each with 0-3 edited copies and some exact copies: many clusters."""
    words = WIKITEXT.read_text(encoding="utf-8").split()
    docs = []
    for family in range(40):
        text = " ".join(words[family * 700 : family * 700 + 600])
        docs.append(Document(id=f"f{family:02d}-orig", text=text, timestamp=f"2020-01-{family % 28 + 1:02d}T00:00:00Z"))
        for copy in range(family % 4):
            docs.append(Document(id=f"f{family:02d}-edit{copy}", text=edited(text, 100 + 20 * copy, copy)))
        if family % 5 == 0:
            docs.append(Document(id=f"f{family:02d}-exact", text=text))
    return docs


def test_dedup_on_dask_matches_direct_runner(cluster: str, tmp_path: Path) -> None:
    # The dedup scale figures (benchmarks/dedup.py --runner dask) rest on this: same decisions on Dask.
    docs = _near_duplicate_families()
    outputs = {}
    for name, args in (("direct", ["--runner", "DirectRunner"]), ("dask", dask_args(cluster))):
        out = tmp_path / name
        with beam.Pipeline(options=PipelineOptions(args)) as p:
            exact = p | beam.Create(docs) | beam.Reshuffle() | ExactDedup(DedupConfig())
            near = exact["kept"] | MinHashDedup(DedupConfig())
            _ = (near["kept"] | "KeptIds" >> beam.Map(lambda d: {"id": d.id})
                 | "WriteKept" >> WriteJsonLines(str(out / "kept" / "part")))
            _ = near["clusters"] | "WriteClusters" >> WriteJsonLines(str(out / "clusters" / "part"))
        read = lambda d: sorted(json.dumps(json.loads(x), sort_keys=True) for f in sorted((out / d).iterdir())  # noqa: E731
                                for x in f.read_text().splitlines())
        outputs[name] = {"kept": read("kept"), "clusters": read("clusters")}
    assert outputs["dask"] == outputs["direct"]
    kept = {json.loads(x)["id"] for x in outputs["direct"]["kept"]}
    assert kept == {f"f{family:02d}-orig" for family in range(40)}  # every family collapses to its dated original


def _documents(out: Path) -> list[tuple[str, str]]:
    table = pq.read_table(out / "documents")
    return sorted(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))


@pytest.mark.integration
def test_pipeline_on_dask_matches_direct_runner(cluster: str, tmp_path: Path) -> None:
    inputs = [str(WARC_DIR / name) for name in WARCS]
    direct = run(inputs, str(tmp_path / "direct"), beam_args=["--runner", "DirectRunner"])
    on_dask = run(inputs, str(tmp_path / "dask"), beam_args=dask_args(cluster))
    assert on_dask.stats["accounting_ok"] and on_dask.stats["totals"] == direct.stats["totals"]
    assert on_dask.stats["funnel"] == direct.stats["funnel"]
    docs = _documents(tmp_path / "dask")
    assert len(docs) > 20
    assert docs == _documents(tmp_path / "direct")
    assert (tmp_path / "dask" / "_SUCCESS").exists()
    assert not list((tmp_path / "dask").rglob(".temp-*")) and not list((tmp_path / "dask").rglob("beam-temp-*"))
    assert not (tmp_path / "dask" / "_spill").exists() and not (tmp_path / "direct" / "_spill").exists()
    # What the shuffles wrote, for `refinery estimate`: small records only, far less than the input.
    assert 0 < on_dask.stats["run"]["shuffle_bytes"] < 0.2 * on_dask.stats["run"]["input_bytes"]
    assert direct.stats["run"]["shuffle_bytes"] is None


class _Logged(beam.DoFn):
    """Writes a file per setup, per bundle and per teardown, named by worker process and a fresh
    token, so that after the run the files say how often each happened and in which process."""

    def __init__(self, log_dir: str, seconds_per_element: float = 0.0) -> None:
        self._log_dir = log_dir
        self._seconds = seconds_per_element

    def _log(self, event: str, lines: list[str] = ()) -> None:
        name = f"{event}.{os.getpid()}.{uuid.uuid4().hex}"
        Path(self._log_dir, name).write_text("".join(f"{line}\n" for line in lines))

    def setup(self) -> None:
        self._log("setup")

    def start_bundle(self) -> None:
        self._elements: list[str] = []

    def process(self, element):
        time.sleep(self._seconds)
        self._elements.append(repr(element))
        yield element

    def finish_bundle(self) -> None:
        self._log("bundle", self._elements)

    def teardown(self) -> None:
        self._log("teardown")


def _events(log_dir: Path, event: str) -> list[Path]:
    return [f for f in log_dir.iterdir() if f.name.startswith(f"{event}.")]


def test_reshuffle_on_dask_spreads_one_partition_over_several(cluster: str, tmp_path: Path) -> None:
    # Our read step in small: one file (one partition) -> its byte ranges -> Reshuffle -> read. Beam's
    # Dask overrides turned Reshuffle into a no-op, so every range stayed in one bundle, one worker.
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    args = [*dask_args(cluster), "--temp_location", str(tmp_path / "temp")]
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = (p | beam.Create(["file"]) | "Pieces" >> beam.FlatMap(lambda f: [(f, i) for i in range(8)])
             | beam.Reshuffle() | beam.ParDo(_Logged(str(log_dir), seconds_per_element=0.5)))
    bundles = [f.read_text().splitlines() for f in _events(log_dir, "bundle")]
    assert sorted(x for b in bundles for x in b) == sorted(repr(("file", i)) for i in range(8))  # each once
    assert len([b for b in bundles if b]) == 4  # dealt over --dask_npartitions partitions, two pieces each
    # Which worker runs which partition is Dask's choice: usually both, but under a loaded full suite
    # the scheduler has put all four on one. Spreading the partitions is ours to test; placing them not.


def test_a_reshuffle_deals_one_piece_per_partition_when_told(cluster: str, tmp_path: Path) -> None:
    """--dask_reshuffle_partitions (refinery run sets it to the input's pieces): a partition holds one
    piece's records at a time, not a worker thread's share of the whole input."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    args = [*dask_args(cluster), "--temp_location", str(tmp_path / "temp"), "--dask_reshuffle_partitions", "8"]
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = (p | beam.Create(["file"]) | "Pieces" >> beam.FlatMap(lambda f: [(f, i) for i in range(8)])
             | beam.Reshuffle() | beam.ParDo(_Logged(str(log_dir))))
    bundles = [f.read_text().splitlines() for f in _events(log_dir, "bundle")]
    assert sorted(len(b) for b in bundles if b) == [1] * 8


def test_run_counts_the_pieces_of_its_input_for_dask(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.dask_runner import SpreadOptions
    from pipeline.run import _spread_pieces, pipeline_options

    big, small = tmp_path / "big.warc.gz", tmp_path / "small.warc.gz"
    with big.open("wb") as f:
        f.truncate(10_000_000)
    small.write_bytes(b"x")
    cfg = load_config(None, {"read.split_bytes": 4_000_000})
    options = pipeline_options(["--runner", "pipeline.dask_runner.DaskRunner"])
    _spread_pieces(options, [str(big), str(small)], cfg)
    assert options.view_as(SpreadOptions).dask_reshuffle_partitions == 3 + 1
    told = pipeline_options(["--runner", "pipeline.dask_runner.DaskRunner", "--dask_reshuffle_partitions", "2"])
    _spread_pieces(told, [str(big)], cfg)
    assert told.view_as(SpreadOptions).dask_reshuffle_partitions == 2


def test_a_dofn_is_set_up_once_per_worker_not_per_bundle(cluster: str, tmp_path: Path) -> None:
    # Beam sets a DoFn up once and reuses it for bundle after bundle; ours set it up per Dask
    # partition, and our setups start an extraction process or load a ~100 MB model.
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    args = [*dask_args(cluster)[:-1], "12", "--temp_location", str(tmp_path / "temp")]  # 12 partitions
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = p | beam.Create(list(range(48))) | beam.ParDo(_Logged(str(log_dir), seconds_per_element=0.01))
    bundles = _events(log_dir, "bundle")
    assert len(bundles) == 12
    setups = _events(log_dir, "setup")
    workers = {f.name.split(".")[1] for f in bundles}
    assert len(setups) == len(workers) <= 2  # one instance per worker process (one thread each)
    assert {f.name.split(".")[1] for f in setups} == workers
    # The job's end tears the instances down on every worker, rather than leaving them to the next job.
    assert len(_events(log_dir, "teardown")) == len(setups)
