"""``refinery run`` as a Python API: build the Beam graph for a config, run it, account for it.

The graph: archive paths -> ReadWarc -> Extract -> (filter stages) -> documents Parquet, with every
stage's drops flowing into one funnel (and, if asked, a rejects Parquet). After the runner is
done, the driver reads the small summed funnel back, writes stats.json, checks the accounting and
the error budget, and only then writes ``_SUCCESS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from filters.document import ARROW_SCHEMA, Document
from pipeline import fingerprint, funnel
from pipeline.config import PipelineConfig, load_config
from pipeline.cpu_time import ProcessTreeCpu, runs_locally
from pipeline.dedup import BAND_KEYS, BAND_KEYS_SCHEMA, CLUSTERS, CLUSTERS_SCHEMA
from pipeline.inputs import COMMONCRAWL_BASE_URL, local_bytes, resolve_inputs
from pipeline.output_dir import OutputDir, OutputDirError
from pipeline.readers import build_reader, reader_spec
from pipeline.sinks import WriteJsonLines, WriteParquet, remove_dir
from pipeline.stage import DROPPED, KEPT, Dropped
from pipeline.stages import STAGES
from pipeline.tokenize import Tokenize, finalize_shards

log = logging.getLogger(__name__)

DOCUMENTS_DIR = "documents"
REJECTS_DIR = "rejects"
CLUSTERS_DIR = "clusters"
BAND_KEYS_DIR = "band_keys"
SHARDS_DIR = "shards"
FUNNEL_DIR = "_funnel"
SPILL_DIR = "_spill"  # documents waiting for a corpus-wide verdict (pipeline/spill.py); emptied by the run
REJECTS_SCHEMA = ARROW_SCHEMA.append(pa.field("stage", pa.string())).append(pa.field("reason", pa.string()))


class RunFailed(RuntimeError):
    """The run finished but must not count as complete (too many broken files, lost records)."""


@dataclass
class RunResult:
    output: str
    skipped: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


def run(
    inputs: Sequence[str],
    output: str,
    *,
    config: PipelineConfig | str | Path | None = None,
    beam_args: Sequence[str] = (),
    overwrite: bool = False,
    base_url: str = COMMONCRAWL_BASE_URL,
    limit: int | None = None,
) -> RunResult:
    """Run the pipeline; a complete output is left alone (skipped=True) unless ``overwrite``.

    The output is claimed for the whole run (see pipeline.output_dir), and a complete one is
    skipped only when it was made from the same inputs, config and refinery version; otherwise
    OutputDirError says what differs.
    """
    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    out = OutputDir(output)
    files = resolve_inputs(inputs, base_url, limit, suffixes=reader_spec(cfg).suffixes)
    options = pipeline_options(beam_args)
    _spread_pieces(options, files, cfg)
    made_from = fingerprint.make(files, cfg)
    with out.claimed():
        if out.complete and not overwrite:
            changed = fingerprint.differences(fingerprint.recorded(out.run_info()), made_from)
            if changed:
                raise OutputDirError(f"{output} holds a complete run made from other {'; '.join(changed)}; "
                                     "pass --overwrite to redo it")
            log.info("%s is already complete (has _SUCCESS); skipping. Pass --overwrite to redo it.", output)
            return RunResult(output, skipped=True)
        log.info("%d input file(s) -> %s", len(files), output)
        out.prepare({"inputs": files, "config": asdict(cfg), "beam_args": list(beam_args),
                     "fingerprint": made_from}, overwrite)
        return _run_claimed(output, files, out, cfg, options, beam_args)


def _run_claimed(output: str, files: list[str], out: OutputDir, cfg: PipelineConfig, options: PipelineOptions,
                 beam_args: Sequence[str]) -> RunResult:
    """The run proper, into a prepared directory this process holds the claim of."""
    started = time.monotonic()
    with ProcessTreeCpu() as cpu, beam.Pipeline(options=options) as p:
        stage_order = build(p, files, out, cfg)
    elapsed = time.monotonic() - started
    # Each stage removes its spill files once read back; what is left is the empty folder.
    remove_dir(out.path(SPILL_DIR))

    stats = funnel.summarize(
        out.read_json_lines(f"{FUNNEL_DIR}/counts*"), out.read_json_lines(f"{FUNNEL_DIR}/errors*"), stage_order
    )
    runner = options.view_as(StandardOptions).runner
    stats["run"] = {"inputs": len(files), "seconds": round(elapsed, 1), "runner": runner, "source": cfg.source,
                    "engine": cfg.extract.engine, "input_bytes": local_bytes(files),
                    # CPU of this machine's process tree: the whole run's only when the workers are ours.
                    "cpu_seconds": round(cpu.seconds, 2) if runs_locally(runner, beam_args) else None,
                    # Bytes the runner's shuffles wrote, where it says (our Dask runner); None
                    # where it shuffles in memory (DirectRunner) or does not report it.
                    "shuffle_bytes": getattr(p.result, "shuffle_bytes", None)}
    if cfg.tokenize.enabled:
        shards = finalize_shards(out.path(SHARDS_DIR), cfg.tokenize, cfg.source)
        stats["shards"] = {"manifest": str(shards.manifest.path), "tokens": shards.manifest.tokens,
                           "documents": shards.manifest.documents, "files": len(shards.manifest.shards),
                           "empty_skipped": shards.empty_skipped}
    _check(stats, cfg, out, files)
    out.finish(stats)
    log.info("done in %.1f s: %d records -> %d documents; stats in %s",
             elapsed, stats["totals"]["records"], stats["totals"]["kept"], out.path("stats.json"))
    return RunResult(output, stats=stats)


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Beam options from the user's flags, with DirectRunner unless a runner is named.

    Beam 2.77's own default is Prism, which downloads a binary at start-up; that fails offline and
    surprises people on a laptop, so we never rely on it.
    """
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    return options


def _spread_pieces(options: PipelineOptions, files: Sequence[str], cfg: PipelineConfig) -> None:
    """On our Dask runner, one partition per piece of input after the read step's Reshuffle.

    Each ParDo's output for a partition is held whole between Dask tasks, so a partition of many
    pieces (one per worker thread, by default) held all their records: memory per worker grew with
    the input (x1 -> x4 pages: 2.3-3x peak PSS). Counted from local file sizes (a stat each), and one
    per file where sizes are not known cheaply; a user's ``--dask_reshuffle_partitions`` stands.
    """
    if "DaskRunner" not in str(options.view_as(StandardOptions).runner or ""):
        return
    from pipeline.dask_runner import SpreadOptions  # imports dask, an optional extra

    spread = options.view_as(SpreadOptions)
    if spread.dask_reshuffle_partitions:
        return
    split = cfg.read.split_bytes
    pieces = 0
    for path in files:
        size = local_bytes([path])
        pieces += max(1, -(-size // split)) if size and split else 1
    spread.dask_reshuffle_partitions = min(pieces, _MAX_SPREAD)


# Beyond this many partitions the scheduler's per-task cost (~40 tasks per partition before the
# first shuffle) outweighs what smaller partitions save.
_MAX_SPREAD = 4096


def build(p: beam.Pipeline, files: Sequence[str], out: OutputDir, cfg: PipelineConfig) -> list[str]:
    """Add the whole graph to ``p``; returns the stage labels in funnel order."""
    reader, reader_stages = build_reader(cfg)
    read = p | "ListFiles" >> beam.Create(list(files)) | "Read" >> reader
    docs = read[KEPT]
    dropped = [("Read", read[DROPPED])]
    stage_order = list(reader_stages)
    extra_outputs: dict[str, Any] = {}
    for name in cfg.stages:
        spec = STAGES[name]
        result = docs | spec.label >> spec.build(cfg, out.path(SPILL_DIR, spec.label))
        docs = result[KEPT]
        dropped.append((spec.label, result[DROPPED]))
        extra_outputs.update({k: v for k, v in result.items() if k not in (KEPT, DROPPED)})
        stage_order.append(spec.label)

    _ = (
        docs
        | "DocumentRows" >> beam.Map(Document.to_row)
        | "WriteDocuments" >> WriteParquet(
            out.path(DOCUMENTS_DIR, "part"), ARROW_SCHEMA, file_name_suffix=".parquet",
            num_shards=cfg.output.num_shards,
        )
    )
    # Dedup side outputs: who was clustered with whom (for the report), and the LSH band keys
    # (so that the next dump can be deduplicated against this one).
    for tag, directory, schema in ((CLUSTERS, CLUSTERS_DIR, CLUSTERS_SCHEMA), (BAND_KEYS, BAND_KEYS_DIR, BAND_KEYS_SCHEMA)):
        if tag in extra_outputs:
            _ = extra_outputs[tag] | f"Write{tag.title().replace('_', '')}" >> WriteParquet(
                out.path(directory, "part"), schema, file_name_suffix=".parquet", num_shards=cfg.output.num_shards,
            )
    # Each stage's drops are counted and written where they are dropped. A Flatten of every stage's
    # drops would hold them all until the last stage ran, on runners that materialize a Flatten
    # fed by several stages (the DirectRunner does, in memory): every rejected text of the run.
    counts = [read[funnel.COUNTS], docs | "CountKept" >> beam.Map(funnel.kept_count)]
    for label, stage_dropped in dropped:
        counts.append(stage_dropped | f"CountDropped{label}" >> beam.Map(funnel.dropped_count))
        if cfg.output.rejects:
            _ = (
                stage_dropped
                | f"RejectRows{label}" >> beam.Map(_reject_row)
                | f"WriteRejects{label}" >> WriteParquet(
                    out.path(REJECTS_DIR, label), REJECTS_SCHEMA, file_name_suffix=".parquet",
                    num_shards=cfg.output.num_shards,
                )
            )
    _ = (
        tuple(counts)
        | "SumCounts" >> funnel.SumCounts()
        | "CountsJson" >> beam.Map(funnel.count_to_json)
        | "WriteCounts" >> WriteJsonLines(out.path(FUNNEL_DIR, "counts"), file_name_suffix=".jsonl")
    )
    if cfg.tokenize.enabled:
        _ = docs | "Tokenize" >> Tokenize(cfg.tokenize, out.path(SHARDS_DIR), cfg.source)
    errors = read[funnel.ERRORS] if funnel.ERRORS in read else p | "NoErrors" >> beam.Create([])
    _ = (
        errors
        | "ErrorsJson" >> beam.Map(funnel.error_to_json)
        | "WriteErrors" >> WriteJsonLines(out.path(FUNNEL_DIR, "errors"), file_name_suffix=".jsonl")
    )
    return stage_order


def _reject_row(dropped: Dropped) -> dict[str, Any]:
    return {**dropped.doc.to_row(), "stage": dropped.stage, "reason": dropped.reason}


def _check(stats: dict[str, Any], cfg: PipelineConfig, out: OutputDir, files: Sequence[str]) -> None:
    """Fail (after stats.json is written, before _SUCCESS) on lost records or too many broken files."""
    problems = []
    unaccounted = [f for f, e in stats["files"].items() if not e["accounted"]]
    if unaccounted:
        problems.append(f"records unaccounted for in {len(unaccounted)} file(s): {', '.join(unaccounted[:5])}")
    failed = [f for f, e in stats["files"].items() if e.get("errors")]
    if files and len(failed) / len(files) > cfg.read.max_error_fraction:
        problems.append(
            f"{len(failed)} of {len(files)} input files could not be read to their end "
            f"(more than read.max_error_fraction={cfg.read.max_error_fraction:g}): {', '.join(failed[:10])}"
        )
    if problems:
        out.write_json("stats.json", stats)
        raise RunFailed("; ".join(problems) + f" (details in {out.path('stats.json')})")
