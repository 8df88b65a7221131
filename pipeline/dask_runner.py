"""Beam's DaskRunner with the fixes our graph needs; use ``--runner pipeline.dask_runner.DaskRunner``.

Beam 2.77's DaskRunner translates each primitive transform into a ``dask.bag`` operation, but:

1. it keys a transform's bag by the transform, not by the output PCollection, so every consumer
   of a multi-output ParDo (``with_outputs``: our kept/dropped split in every stage) receives the
   elements of *all* its outputs;
2. it computes only the last bag it visited, so every other leaf branch of the graph (all sinks
   but one) silently never runs;
3. it collects a bundle's outputs before ``finish_bundle`` is called, so outputs emitted there
   are lost (that is why Beam's own file sinks write empty files on Dask);
4. its GroupByKey is dask.bag's groupby, which, built before a client exists (as here), picks the
   "disk" shuffle that is only correct inside one process, and whose task shuffle holds every
   shuffled element as Python objects;
5. its GroupByKey wraps every element in a ``WindowedValue`` (with a ``Timestamp`` and a window
   list) before the shuffle and ignores the windows after it: four Python objects per element
   that the shuffle holds and dask's ``sizeof`` cannot see through (a page counted as 72 bytes).
   We group in the global window only and refuse any other windowing instead of ignoring it;
6. its overrides turn Reshuffle into a placeholder that no translation handles, so it passed its
   bag on unchanged: our read step's byte ranges of a file (one partition) stayed one task, on one
   worker, however many workers there were;
7. it sets up and tears down the DoFn around every bundle (every partition), where Beam's own
   runners set an instance up once and reuse it: with our DoFns' setups (an extraction process,
   fastText models) that was a fixed cost per partition.

So that a worker's memory does not grow with the corpus, every partition between tasks is a
:class:`~pipeline.dask_shuffle.Block` (its elements pickled into one buffer, which dask sizes and
spills exactly), GroupByKey shuffles through files under ``--temp_location``
(:func:`~pipeline.dask_shuffle.group_by_key`), combines are lifted before the shuffle, and a
ParDo's DoFn is one graph node its bundles share. A Reshuffle deals its elements round-robin over
as many partitions as the cluster has worker threads (or ``--dask_npartitions``), through the same
files (:func:`~pipeline.dask_shuffle.redistribute`), and a GroupByKey groups into as many, so
that joins (a Flatten adds up its inputs' partitions) do not multiply the partitions downstream.
Each worker process sets a ParDo's DoFn up once and reuses it for the job's bundles
(:class:`_DoFnPool`), and tears it down when the job ends.

This module keeps Beam's translations for Create and Flatten and replaces the ParDo, GroupByKey
and Reshuffle translations and the graph walk: a ParDo's partition is a dict of its outputs by tag,
from which each consumer's task takes its own PCollection's Block; side inputs are materialized
once and handed to the bundles; and every leaf is computed, all of them as one graph optimized
once, so that a task several leaves share (Read+Extract feeds every sink) runs once
(:func:`_one_job`). It is runner plumbing, not a scheduler: Dask still schedules.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
import typing as t
import uuid

import cloudpickle
import dask
import dask.bag as db
from apache_beam import CombinePerKey, DoFn, GroupByKey, ParDo, PTransform, pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask import dask_runner as beam_dask
from apache_beam.runners.dask.overrides import _GroupByKeyOnly, _Reshuffle, dask_overrides
from apache_beam.runners.dask.transform_evaluator import TRANSLATIONS, DaskBagOp, Flatten, NoOp, get_windowed_value
from apache_beam.transforms.combiners import LiftedCombinePerKey
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.dask_shuffle import Block, group_by_key, redistribute

log = logging.getLogger(__name__)

Outputs = dict[t.Optional[str], Block]  # a bundle's output elements, by output tag


class _GroupByKeyInGlobalWindow(PTransform):
    """A GroupByKey with nothing reified: the file shuffle (:func:`group_by_key`) is the whole of it."""

    def __init__(self, replaced: str) -> None:
        super().__init__()
        self._replaced = replaced

    def expand(self, pcoll: pvalue.PCollection) -> pvalue.PCollection:
        if not isinstance(pcoll.windowing.windowfn, GlobalWindows):
            raise NotImplementedError(
                f"{self._replaced}: the Dask runner groups in the global window only, "
                f"not {type(pcoll.windowing.windowfn).__name__}"
            )
        return pcoll | "GroupByKey" >> _GroupByKeyOnly()


class _GroupByKeyOverride(PTransformOverride):
    def matches(self, applied_ptransform: AppliedPTransform) -> bool:
        return type(applied_ptransform.transform) is GroupByKey

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform: AppliedPTransform) -> PTransform:
        return _GroupByKeyInGlobalWindow(applied_ptransform.full_label)


class _CombinePerKeyOverride(PTransformOverride):
    """Combine before the shuffle, as the DirectRunner does: a combine-per-key that groups first
    sends every value of a key to one task, and ``Count.Globally`` over the corpus's documents
    then holds the whole corpus in one worker (it killed both workers at 160k documents)."""

    def matches(self, applied_ptransform: AppliedPTransform) -> bool:
        return isinstance(applied_ptransform.transform, CombinePerKey) and self._lifted(applied_ptransform) is not None

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform: AppliedPTransform) -> PTransform:
        return t.cast(PTransform, self._lifted(applied_ptransform))

    @staticmethod
    def _lifted(applied_ptransform: AppliedPTransform) -> LiftedCombinePerKey | None:
        transform = t.cast(CombinePerKey, applied_ptransform.transform)
        try:
            return LiftedCombinePerKey(transform.fn, transform.args, transform.kwargs)
        except NotImplementedError:  # ten or more side inputs: Beam cannot lift it, so it groups first
            return None


@dataclasses.dataclass
class _SideInputSpec:
    """What a bundle needs to rebuild one side input from its materialized elements."""

    view_class: type
    view_options: dict[str, t.Any]
    window_fn: t.Any


@dataclasses.dataclass
class _BundleSpec:
    """Everything picklable a bundle needs to run a DoFn; receivers are made fresh per bundle."""

    fn: DoFn
    label: str
    window_fn: t.Any
    args: list[t.Any]
    kwargs: dict[str, t.Any]
    side_inputs: list[_SideInputSpec]


class _CollectingReceiver(Receiver):
    def __init__(self, outputs: _Receivers, tag: str | None) -> None:
        self._outputs = outputs
        self._tag = tag

    def receive(self, windowed_value: WindowedValue) -> None:
        self._outputs.outputs.setdefault(self._tag, []).append(windowed_value.value)


class _Receivers(dict):
    """One receiver per output tag, created on first use, each appending to its tag's own list;
    ``take`` hands over a bundle's lists and starts empty ones for the next bundle."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: dict[t.Optional[str], list[t.Any]] = {}

    def __missing__(self, tag: str | None) -> _CollectingReceiver:
        receiver = self[tag] = _CollectingReceiver(self, tag)
        return receiver

    def take(self) -> dict[t.Optional[str], list[t.Any]]:
        outputs, self.outputs = self.outputs, {}
        return outputs


class _SetUpDoFn:
    """One DoFn instance in one worker process: unpickled and set up once, then run bundle after
    bundle (one Dask partition = one bundle), as a Beam worker runs a DoFn; outputs of
    finish_bundle are kept too.

    Its side inputs are bound once: every bundle of a ParDo gets the same materialized side input
    (one graph node), so rebuilding them per bundle would only repeat work.
    """

    def __init__(self, pickled_spec: bytes, side_values: t.Sequence[list[t.Any]]) -> None:
        spec: _BundleSpec = cloudpickle.loads(pickled_spec)
        self._window_fn = spec.window_fn
        self._receivers = _Receivers()
        handler = _OutputHandler(
            window_fn=spec.window_fn, main_receivers=self._receivers[None], tagged_receivers=self._receivers,
            per_element_output_counter=None, output_batch_converter=None,
            process_yields_batches=False, process_batch_yields_elements=False,
        )
        side_inputs = [
            SideInputMap(side.view_class, side.view_options, [get_windowed_value(v, side.window_fn) for v in values])
            for side, values in zip(spec.side_inputs, side_values, strict=True)
        ]
        self._invoker = DoFnInvoker.create_invoker(
            DoFnSignature(spec.fn), handler, context=DoFnContext(spec.label, state=None),
            side_inputs=side_inputs, input_args=spec.args, input_kwargs=spec.kwargs,
            user_state_context=None, bundle_finalizer_param=DoFn.BundleFinalizerParam(),
        )
        self._invoker.invoke_setup()

    def run(self, items: t.Iterable[t.Any]) -> Outputs:
        self._invoker.invoke_start_bundle()
        for item in items:
            self._invoker.invoke_process(get_windowed_value(item, self._window_fn))
        self._invoker.invoke_finish_bundle()
        return {tag: Block(values) for tag, values in self._receivers.take().items()}

    def teardown(self) -> None:
        """Best effort, as in Beam: a teardown that fails is logged, never the job's failure."""
        try:
            self._invoker.invoke_teardown()
        except Exception:  # noqa: BLE001
            log.warning("teardown of a DoFn failed", exc_info=True)


class _DoFnPool:
    """The set-up instances of one ParDo's DoFn in one worker process, for the length of one job.

    Our DoFns' setup is costly: Extract starts an extraction child process (pipeline/time_limit.py,
    0.5-1 CPU-s each) and the filter stages load fastText models (~100 MB), so setting a DoFn up
    for every bundle (every Dask partition), as this runner did, cost a setup per partition. A
    bundle borrows an idle instance (a new one is set up only when none is idle) and gives it back
    when it ends, so a worker sets up at most as many instances of a ParDo as it runs bundles of it
    at once (one, with one thread per worker), and no instance is ever in two threads at a time.
    A bundle that fails tears its instance down instead, as a Beam worker discards it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_SetUpDoFn] = []
        self._all: list[_SetUpDoFn] = []

    def run(
        self, items: t.Iterable[t.Any], pickled_spec: bytes, side_values: t.Sequence[list[t.Any]]
    ) -> Outputs:
        with self._lock:
            dofn = self._idle.pop() if self._idle else None
        if dofn is None:
            dofn = _SetUpDoFn(pickled_spec, side_values)  # outside the lock: setup may take seconds
            with self._lock:
                self._all.append(dofn)
        try:
            outputs = dofn.run(items)
        except BaseException:
            with self._lock:
                self._all.remove(dofn)
            dofn.teardown()
            raise
        with self._lock:
            self._idle.append(dofn)
        return outputs

    def close(self) -> int:
        """Tear down every instance; returns how many there were."""
        with self._lock:
            dofns, self._all, self._idle = self._all, [], []
        for dofn in dofns:
            dofn.teardown()
        return len(dofns)


# This worker process's DoFn pools, by (job, ParDo label). Module state lives as long as the
# worker process, which imports this module to run its first bundle.
_POOLS: dict[tuple[str, str], _DoFnPool] = {}
_POOLS_LOCK = threading.Lock()


def _run_bundle(items: t.Iterable[t.Any], pool_key: tuple[str, str], pickled_spec: bytes,
                *side_values: list[t.Any]) -> Outputs:
    """One Dask partition = one bundle, run by a set-up DoFn of this worker's pool for the ParDo.

    The spec arrives pickled, as one graph node that all of a ParDo's bundles share: a worker keeps
    the run spec of every task upstream of data it still holds, so a DoFn embedded in each task
    (14-25 kB by dask's sizeof per fused task) made that bookkeeping grow with the corpus. It is
    unpickled only when the pool sets up a new instance.
    """
    with _POOLS_LOCK:
        pool = _POOLS.setdefault(pool_key, _DoFnPool())
    return pool.run(items, pickled_spec, side_values)


def _release_job(job: str) -> int:
    """Tear down this worker's DoFns of ``job`` (run on every worker when the job ends, so that a
    long-lived cluster does not keep every past job's models and extraction processes); returns
    how many were torn down."""
    with _POOLS_LOCK:
        pools = [_POOLS.pop(key) for key in [key for key in _POOLS if key[0] == job]]
    return sum(pool.close() for pool in pools)


class _TaggedParDo(DaskBagOp):
    """A ParDo whose bag keeps each output's tag, so that consumers can take only theirs."""

    def apply(
        self, input_bag: db.Bag, side_inputs: t.Sequence[tuple[t.Any, db.Bag]] = (), job: str = ""
    ) -> db.Bag:
        """``job`` names this run, so that each worker keeps this ParDo's set-up DoFns for this run only."""
        transform = t.cast(ParDo, self.transform)
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        spec = _BundleSpec(
            fn=transform.fn, label=transform.label,
            window_fn=main_input.windowing.windowfn if hasattr(main_input, "windowing") else None,
            args=list(args), kwargs=dict(kwargs),
            side_inputs=[_SideInputSpec(type(si), si._view_options(), si._window_mapping_fn) for si, _ in side_inputs],
        )
        # A Bag passed whole (not partition-wise) must be a single value: a delayed list of it.
        materialized = [bag.map_partitions(list).to_delayed(optimize_graph=False) for _, bag in side_inputs]
        whole = [_concat_delayed(parts) for parts in materialized]
        shared = dask.delayed(cloudpickle.dumps(spec), pure=True)
        return input_bag.map_partitions(_run_bundle, (job, self.applied.full_label), shared, *whole)


def _concat_delayed(parts: list[t.Any]) -> t.Any:
    return dask.delayed(_concat, pure=True)(*parts)


def _concat(*chunks: list[t.Any]) -> list[t.Any]:
    return [v for chunk in chunks for v in chunk]


_TRANSLATIONS: dict[type, type[DaskBagOp]] = {**TRANSLATIONS, ParDo: _TaggedParDo}


def _output(outputs: Outputs, tag: str | None) -> Block | tuple[()]:
    return outputs.get(tag, ())


def _drain(partition: t.Any) -> list[t.Any]:
    """A leaf's work (files written) was done by the task that made its partition: ship nothing back."""
    return []


@dataclasses.dataclass
class _GraphBuilder(PipelineVisitor):
    """Translates the pipeline into bags, one per transform.

    ``partitions`` is how many partitions a Reshuffle deals its elements over and a GroupByKey
    groups into (see :func:`_partitions`); ``job`` names the run (see :class:`_DoFnPool`).
    """

    bag_kwargs: dict[str, t.Any]
    shuffle_dir: str
    partitions: int = 1
    reshuffle_partitions: int = 0
    job: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    bags: dict[AppliedPTransform, db.Bag | None] = dataclasses.field(default_factory=dict)
    consumed: set[AppliedPTransform] = dataclasses.field(default_factory=set)
    tagged: set[AppliedPTransform] = dataclasses.field(default_factory=set)

    def visit_transform(self, node: AppliedPTransform) -> None:
        op = _TRANSLATIONS.get(type(node.transform), NoOp)(node, bag_kwargs=self.bag_kwargs)
        inputs = [self._bag_of(pc) for pc in node.inputs if not isinstance(pc, pvalue.PBegin)]
        side_inputs = [(si, self._bag_of(si.pvalue)) for si in node.side_inputs]
        if isinstance(node.transform, _GroupByKeyOnly):
            self.bags[node] = group_by_key(inputs[0], self.shuffle_dir, self.partitions)
        elif isinstance(node.transform, _Reshuffle):
            # Beam's dask overrides make Reshuffle a placeholder that no translation handles, so
            # it passed its bag on unchanged, and one file's pieces stayed one task.
            self.bags[node] = redistribute(inputs[0], self.shuffle_dir,
                                           max(self.partitions, self.reshuffle_partitions))
        elif isinstance(op, Flatten):
            self.bags[node] = op.apply(inputs)
        elif isinstance(op, _TaggedParDo):
            self.bags[node] = op.apply(inputs[0], side_inputs, job=self.job)
            self.tagged.add(node)
        else:
            if side_inputs:
                raise NotImplementedError(f"{node.full_label}: side inputs on {type(node.transform).__name__}")
            self.bags[node] = op.apply(inputs[0] if inputs else None)

    def _bag_of(self, pcoll: pvalue.PCollection) -> db.Bag:
        producer = pcoll.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if producer in self.tagged:
            # A task per consumed tag: once each has run, the bundle's dict is released, so a
            # tag read late (Sign's documents, at the final join) no longer keeps the others alive.
            return bag.map_partitions(_output, tag=pcoll.tag)
        return bag

    def leaves(self) -> list[db.Bag]:
        return [bag for node, bag in self.bags.items() if node not in self.consumed and bag is not None]


@dataclasses.dataclass
class DaskRunnerResult(beam_dask.DaskRunnerResult):
    """Closes the client (and the LocalCluster it may own) and deletes the shuffle files once the
    job is over: not before, since a task re-run after a lost worker may need to read them again."""

    shuffle_dir: str
    job: str = ""
    shuffle_bytes: int | None = None  # what the job's shuffles wrote, once it is over

    def wait_until_finish(self, duration: float | None = None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self._release_dofns()
            self.client.close()
            if FileSystems.exists(self.shuffle_dir):
                # Every piece stays until the end (a re-run task may read it again), so the
                # folder's size now is every byte the job shuffled: `refinery estimate` uses it.
                self.shuffle_bytes = _folder_bytes(self.shuffle_dir)
                FileSystems.delete([self.shuffle_dir])

    def _release_dofns(self) -> None:
        """Tear down the job's DoFns on every worker; a worker that cannot be reached keeps them
        until it exits (Beam, too, does not promise teardown)."""
        try:
            self.client.run(_release_job, self.job)
        except Exception:  # noqa: BLE001
            log.warning("could not tear down the job's DoFns on every worker", exc_info=True)


class DaskRunner(beam_dask.DaskRunner):
    """Beam's DaskRunner with tagged outputs routed, all leaves computed (shared work once),
    finish_bundle kept, combines lifted, GroupByKey and Reshuffle shuffled through files, and
    DoFns set up once per worker."""

    def run_pipeline(self, pipeline, options) -> DaskRunnerResult:
        import dask.distributed as ddist

        dask_options = options.view_as(beam_dask.DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = beam_dask.DaskOptions._extract_bag_kwargs(dask_options)
        # In order: combines are lifted, then every GroupByKey (theirs too) becomes ours.
        pipeline.replace_all([_CombinePerKeyOverride(), _GroupByKeyOverride(), *dask_overrides()])
        client = ddist.Client(**dask_options)
        spread = options.view_as(SpreadOptions).dask_reshuffle_partitions or 0
        builder = _GraphBuilder(bag_kwargs, _shuffle_dir(options), _partitions(client, bag_kwargs), spread)
        pipeline.visit(builder)
        job = _one_job(builder.leaves())
        futures = [client.compute(job)] if job is not None else []
        return DaskRunnerResult(client, futures, builder.shuffle_dir, builder.job)


def _one_job(leaves: list[db.Bag]) -> db.Bag | None:
    """Every leaf of the graph as one bag (of nothing), so that dask optimizes one graph, once.

    dask fuses each linear chain of tasks into one task named after its last key. Optimized one
    collection at a time (as ``dask.optimize(*leaves)`` does since dask moved to expressions, and
    as this runner did), a task that several leaves share is linear *within each leaf's own culled
    graph*, so it is fused into every leaf's chain under a different key, and the merged graph
    computes it once per leaf: Read+Extract, upstream of every sink, ran twice per run (measured:
    1.8x the CPU of one DirectRunner worker, and every Split element twice in
    tests/pipeline/test_computed_once.py). Culled and fused as one collection whose keys are all
    the leaves', a task that feeds two others is never fused, so it runs once and its partition is
    shared. A leaf's work (files written) is done by the tasks that make it, so nothing comes back.
    """
    if not leaves:
        return None
    return db.concat([leaf.map_partitions(_drain) for leaf in leaves])


def _partitions(client: t.Any, bag_kwargs: dict[str, t.Any]) -> int:
    """How many partitions a Reshuffle and a GroupByKey make: ``--dask_npartitions`` when given,
    else ``_PARTITIONS_PER_THREAD`` per worker thread the cluster has when the job is submitted.

    A Reshuffle must make at least one per thread, so that every worker gets a share of a few heavy
    elements (our read step's file pieces, ``read.split_bytes`` each). A GroupByKey makes as many,
    not as many as its input has: a Flatten (every CoGroupByKey) adds its inputs' partitions up,
    so keeping them doubled the partitions per join, into thousands of near-empty tasks (2144 per
    run of our graph on one file). Tasks cost scheduler CPU: our graph has ~460 per partition
    (468 at 1, 923 at 2, measured), so more partitions per thread cost more than they balance.

    Every element of a Reshuffle's partition is in memory at once downstream of it (our read step:
    the records of every piece in it), so a Reshuffle makes ``--dask_reshuffle_partitions`` when
    that is more (``refinery run`` sets it to the number of pieces of its input: one piece per
    partition, so a worker's memory does not grow with the input).
    """
    if bag_kwargs.get("npartitions"):
        return int(bag_kwargs["npartitions"])
    threads = sum(client.nthreads().values())
    return max(1, threads * _PARTITIONS_PER_THREAD)


_PARTITIONS_PER_THREAD = 1


class SpreadOptions(PipelineOptions):
    """How many partitions a Reshuffle deals over at least (see :func:`_partitions`)."""

    @classmethod
    def _add_argparse_args(cls, parser: t.Any) -> None:
        parser.add_argument("--dask_reshuffle_partitions", type=int, default=None,
                            help="partitions a Reshuffle makes at least (refinery run: one per input piece)")


def _folder_bytes(directory: str) -> int:
    pattern = FileSystems.join(directory, "**")
    return sum(m.size_in_bytes for r in FileSystems.match([pattern]) for m in r.metadata_list)


def _shuffle_dir(options: PipelineOptions) -> str:
    """A fresh directory for this run's shuffle files: under ``--temp_location`` when it is set (it
    must be a path every worker can reach), else a local temporary directory, which only the
    workers of a LocalCluster share."""
    temp_location = options.view_as(GoogleCloudOptions).temp_location
    if temp_location:
        return FileSystems.join(temp_location, f"refinery-shuffle-{uuid.uuid4().hex}")
    return tempfile.mkdtemp(prefix="refinery-shuffle-")
