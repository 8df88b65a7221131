"""``refinery estimate``: what a whole dump would cost, from running the recipe on a sample of it.

A few input files, spread evenly over the list, are each run on their own with the real recipe
(once per extraction engine). Each run gives measured figures: CPU seconds of this machine's
process tree (pipeline.cpu_time), input bytes, records, documents and tokens kept, bytes written.
Dividing by input bytes gives rates; multiplying the rates by the dump's size gives the
projection. One run per file, rather than one run of the whole sample, is what gives a spread:
the low and high figures use the cheapest and the dearest file's rate.

The module has two halves. The projection (:class:`SampleFigures` -> :func:`project` ->
:func:`table`) is plain arithmetic on numbers, unit-tested on fixed figures. Measuring
(:func:`measure_run`, :func:`estimate`) runs the pipeline and reads its outputs.

What is measured and what is assumed is kept apart, and the assumptions are printed:
- tokens are measured when the config tokenizes (tokenize.tokenizer); otherwise they are kept
  UTF-8 text bytes divided by ``bytes_per_token``.
- shuffle disk is measured when the runner reports it (``stats["run"]["shuffle_bytes"]``);
  otherwise it is the documents entering the first dedup stage times a per-document figure.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# USD per core-hour. An on-demand general-purpose cloud vCPU costs roughly 0.03-0.05 USD an hour;
# pass --price-per-core-hour with your own price.
DEFAULT_PRICE_PER_CORE_HOUR = 0.05
CURRENCY = "USD"
# Used only when the run is not tokenized: a LLaMA-style 32k BPE gives roughly 4 UTF-8 bytes per
# token on English web text. An assumption, printed as one; tokenize the run for exact counts.
DEFAULT_BYTES_PER_TOKEN = 4.2
# Shuffle disk per document entering the first shuffling stage, when the runner does not report
# it: benchmarks/pipeline_cost.py on Dask, the default web recipe over 4x the bench pages, wrote
# 9.1 MB of shuffle files for 2,560 documents entering LineDedup. Text no longer crosses a shuffle
# (pipeline/spill.py); most of what is left is dedup's 4 kB shingle sample per signed document.
SHUFFLE_BYTES_PER_DOCUMENT = 3_600
# The stages that shuffle (GroupByKey) documents or their keys; the first one's input is counted.
SHUFFLE_STAGES = ("LineDedup", "ExactDedup", "MinHashDedup")
ESTIMATE_FILE = "estimate.json"
GB = 1e9


class EstimateError(ValueError):
    """The estimate cannot be made as asked (e.g. a remote runner); the message says why."""


# -- the projection: plain numbers in, plain numbers out ------------------------------------------


@dataclass(frozen=True)
class SampleFigures:
    """What one sample run (one input file, one engine, one runner) measured."""

    file: str
    engine: str
    runner: str
    input_bytes: int
    cpu_seconds: float
    wall_seconds: float
    records: int
    documents: int
    text_bytes: int  # UTF-8 bytes of the kept documents' text
    output_bytes: int  # everything the run wrote
    tokens: int | None = None  # from the run's shards, when it was tokenized
    shuffle_documents: int = 0  # documents entering the first dedup stage
    shuffle_bytes: int | None = None  # as the runner reported it, when it did

    @property
    def cpu_seconds_per_gb(self) -> float:
        return self.cpu_seconds / (self.input_bytes / GB)

    @property
    def records_per_core_second(self) -> float:
        return self.records / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass(frozen=True)
class Spread:
    """A figure with its range over the sample files: ``value`` (the estimate), ``low``, ``high``."""

    value: float
    low: float
    high: float

    def scaled(self, factor: float) -> Spread:
        return Spread(self.value * factor, self.low * factor, self.high * factor)


@dataclass(frozen=True)
class Projection:
    """One engine x runner: the whole dump's figures, and the measured rates they came from."""

    engine: str
    runner: str
    dump_bytes: float
    core_hours: Spread
    cost: Spread
    documents: float
    tokens: float
    tokens_measured: bool
    output_bytes: float
    shuffle_bytes: float
    shuffle_measured: bool
    # Per sample file: value = median, low/high = min/max.
    cpu_seconds_per_gb: Spread
    records_per_core_second: Spread
    sample_files: int
    sample_bytes: int
    sample_cpu_seconds: float
    sample_wall_seconds: float
    samples: list[SampleFigures] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_evenly(files: Sequence[str], n: int) -> list[str]:
    """``n`` files spread over the list: the middle one of each of ``n`` equal slices.

    Deterministic, so a re-run measures the same files; spread, because a dump's file list is
    sorted by time and segment, and neighbouring files are alike.
    """
    if n <= 0:
        raise EstimateError("--sample must be at least 1")
    if n >= len(files):
        return list(files)
    return [files[(2 * i + 1) * len(files) // (2 * n)] for i in range(n)]


def dump_bytes(sample_bytes: Sequence[int], total_files: int) -> float:
    """The dump's size: its file count times the sample's mean file size (CommonCrawl's WARC files
    are cut at ~1 GB, so the mean of a few is close; sizing every file would cost a request each)."""
    return total_files * statistics.fmean(sample_bytes)


def _rate_spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def _estimated_tokens(sample: SampleFigures, bytes_per_token: float) -> float:
    return sample.tokens if sample.tokens is not None else sample.text_bytes / bytes_per_token


def _estimated_shuffle(sample: SampleFigures) -> float:
    if sample.shuffle_bytes is not None:
        return sample.shuffle_bytes
    return sample.shuffle_documents * SHUFFLE_BYTES_PER_DOCUMENT


def project(samples: Sequence[SampleFigures], total_bytes: float,
            price_per_core_hour: float = DEFAULT_PRICE_PER_CORE_HOUR,
            bytes_per_token: float = DEFAULT_BYTES_PER_TOKEN) -> Projection:
    """Scale one engine x runner's sample figures to ``total_bytes`` of input.

    The estimate uses pooled rates (sample totals over sample bytes), so a large file weighs as
    much as its bytes; low and high use the cheapest and dearest single file's CPU per byte.
    """
    if not samples:
        raise EstimateError("no sample runs to project from")
    sample_bytes = sum(s.input_bytes for s in samples)
    if sample_bytes <= 0:
        raise EstimateError("the sample files are empty; nothing to scale from")
    scale = total_bytes / sample_bytes
    per_file_cpu = [s.cpu_seconds_per_gb for s in samples]
    total_gb = total_bytes / GB
    core_hours = Spread(sum(s.cpu_seconds for s in samples) * scale / 3600,
                        min(per_file_cpu) * total_gb / 3600, max(per_file_cpu) * total_gb / 3600)
    return Projection(
        engine=samples[0].engine,
        runner=samples[0].runner,
        dump_bytes=total_bytes,
        core_hours=core_hours,
        cost=core_hours.scaled(price_per_core_hour),
        documents=sum(s.documents for s in samples) * scale,
        tokens=sum(_estimated_tokens(s, bytes_per_token) for s in samples) * scale,
        tokens_measured=all(s.tokens is not None for s in samples),
        output_bytes=sum(s.output_bytes for s in samples) * scale,
        shuffle_bytes=sum(_estimated_shuffle(s) for s in samples) * scale,
        shuffle_measured=all(s.shuffle_bytes is not None for s in samples),
        cpu_seconds_per_gb=_rate_spread(per_file_cpu),
        records_per_core_second=_rate_spread([s.records_per_core_second for s in samples]),
        sample_files=len(samples),
        sample_bytes=sample_bytes,
        sample_cpu_seconds=sum(s.cpu_seconds for s in samples),
        sample_wall_seconds=sum(s.wall_seconds for s in samples),
        samples=list(samples),
    )


def project_all(samples: Sequence[SampleFigures], total_bytes: float,
                price_per_core_hour: float = DEFAULT_PRICE_PER_CORE_HOUR,
                bytes_per_token: float = DEFAULT_BYTES_PER_TOKEN) -> list[Projection]:
    """One projection per (engine, runner), in the order they were first measured."""
    groups: dict[tuple[str, str], list[SampleFigures]] = {}
    for sample in samples:
        groups.setdefault((sample.engine, sample.runner), []).append(sample)
    return [project(group, total_bytes, price_per_core_hour, bytes_per_token) for group in groups.values()]


# -- display: the same columns in the terminal and in report.html ---------------------------------

PROJECTION_COLUMNS = ("engine", "runner", "core-hours (low-high)", f"cost {CURRENCY} (low-high)", "documents kept",
                      "tokens kept", "output", "shuffle disk")
RATE_COLUMNS = ("engine", "runner", "sample files", "sample input", "CPU-s per input GB (median, min-max)",
                "records per core-s (median, min-max)", "sample CPU-s", "sample wall-s")


_BYTE_UNITS = (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
_COUNT_UNITS = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3))


def human_count(value: float) -> str:
    """1234567 -> '1.23M' (B for billions, as token budgets are written)."""
    for suffix, size in _COUNT_UNITS:
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def human_bytes(value: float) -> str:
    """1234567 -> '1.23 MB' (decimal units, as cloud storage is billed)."""
    for suffix, size in _BYTE_UNITS:
        if abs(value) >= size:
            return f"{value / size:.3g} {suffix}"
    return f"{value:.0f} B"


def _sig(value: float) -> str:
    """Three significant figures without exponents ('12,300', '4.56', '0.0000851')."""
    if value == 0:
        return "0"
    rounded = float(f"{value:.3g}")
    if abs(rounded) >= 100:
        return f"{rounded:,.0f}"
    decimals = 2 - math.floor(math.log10(abs(rounded)))
    return f"{rounded:.{decimals}f}"


def _spread(spread: Spread) -> str:
    """'value (low-high)', or the value alone when there was one file to measure."""
    if _sig(spread.low) == _sig(spread.high):
        return _sig(spread.value)
    return f"{_sig(spread.value)} ({_sig(spread.low)}-{_sig(spread.high)})"


def projection_row(p: Projection) -> list[str]:
    """The projection as display strings; a trailing '*' marks an assumed (not measured) figure."""
    return [p.engine, p.runner, _spread(p.core_hours), _spread(p.cost), human_count(p.documents),
            human_count(p.tokens) + ("" if p.tokens_measured else "*"), human_bytes(p.output_bytes),
            human_bytes(p.shuffle_bytes) + ("" if p.shuffle_measured else "*")]


def rate_row(p: Projection) -> list[str]:
    """The measured rates behind a projection, as display strings."""
    return [p.engine, p.runner, str(p.sample_files), human_bytes(p.sample_bytes), _spread(p.cpu_seconds_per_gb),
            _spread(p.records_per_core_second), _sig(p.sample_cpu_seconds), _sig(p.sample_wall_seconds)]


def assumption_notes(projections: Sequence[Projection], bytes_per_token: float) -> list[str]:
    """The footnotes that say which figures are assumed, and what they were assumed from."""
    notes = []
    if any(not p.tokens_measured for p in projections):
        notes.append(f"* tokens: kept text bytes / {bytes_per_token:g} bytes per token (assumed; set "
                     "tokenize.tokenizer to count them)")
    if any(not p.shuffle_measured for p in projections):
        notes.append(f"* shuffle disk: {SHUFFLE_BYTES_PER_DOCUMENT / 1e3:g} kB per document entering dedup "
                     "(assumed, from benchmarks/pipeline_cost.py on Dask; the DirectRunner shuffles in memory)")
    return notes


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns: the first two (engine, runner) to the left, the numbers to the right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def table(result: dict[str, Any], projections: Sequence[Projection]) -> str:
    """The terminal report: the dump, the projection per engine x runner, the rates, the caveats."""
    dump = result["dump"]
    lines = [
        f"dump: {dump['total_files']:,} files x {human_bytes(dump['mean_file_bytes'])} (mean of the sample) "
        f"= {human_bytes(dump['total_bytes'])}; sample: {dump['sample_files']} file(s), each run on its own",
        f"price: {result['price_per_core_hour']:g} {CURRENCY} per core-hour",
        "",
        "projection for the whole dump",
        *_text_table(PROJECTION_COLUMNS, [projection_row(p) for p in projections]),
        "",
        "measured rates (per sample file)",
        *_text_table(RATE_COLUMNS, [rate_row(p) for p in projections]),
        "",
        *assumption_notes(projections, result["bytes_per_token"]),
        *result["caveats"],
    ]
    return "\n".join(lines)


CAVEATS = (
    "CPU is this machine's process tree, including each run's start-up (loading models, starting "
    "the extraction process): on sample files much smaller than the dump's, the rates are high.",
    "Each sample file is deduplicated on its own: over the whole dump, dedup removes more.",
)


# -- measuring: run the recipe on the sample ------------------------------------------------------


# What a run writes for its consumers (pipeline.run's output directories, named here so that the
# report can cost a run without importing Beam); a report written into the run is not counted.
OUTPUT_PARTS = ("documents", "rejects", "clusters", "band_keys", "shards", "stats.json")


def output_bytes(run_dir: Path) -> int:
    """Bytes of the run's outputs on disk."""
    total = 0
    for part in OUTPUT_PARTS:
        path = run_dir / part
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def kept_text_bytes(run_dir: str | Path) -> int:
    """UTF-8 bytes of the kept documents' text, streamed one column from documents/*.parquet."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    total = 0
    for path in sorted(Path(run_dir, "documents").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["text"]):
            total += pc.sum(pc.binary_length(batch.column(0).cast("binary"))).as_py() or 0
    return total


def shuffle_documents(stats: dict[str, Any]) -> int:
    """Documents entering the first stage that shuffles; 0 when the recipe has none."""
    for stage in stats.get("funnel", []):
        if stage["stage"] in SHUFFLE_STAGES:
            return int(stage["in"])
    return 0


def measure_run(run_dir: str | Path, stats: dict[str, Any], file: str, input_bytes: int) -> SampleFigures:
    """A finished run's figures, from its stats.json body and the files it wrote."""
    info = stats.get("run", {})
    if info.get("cpu_seconds") is None:
        raise EstimateError(f"{run_dir}: the run has no cpu_seconds (its workers were not on this machine)")
    return SampleFigures(
        file=file, engine=info.get("engine", "trafilatura"), runner=info.get("runner") or "DirectRunner",
        input_bytes=input_bytes, cpu_seconds=float(info["cpu_seconds"]), wall_seconds=float(info.get("seconds", 0)),
        records=int(stats["totals"]["records"]), documents=int(stats["totals"]["kept"]),
        text_bytes=kept_text_bytes(run_dir), output_bytes=output_bytes(Path(run_dir)),
        tokens=stats.get("shards", {}).get("tokens"), shuffle_documents=shuffle_documents(stats),
        shuffle_bytes=info.get("shuffle_bytes"),
    )


def run_cost(stats: dict[str, Any], run_dir: str | Path,
             price_per_core_hour: float = DEFAULT_PRICE_PER_CORE_HOUR,
             bytes_per_token: float = DEFAULT_BYTES_PER_TOKEN, tokens: int | None = None) -> Projection | None:
    """One finished run's own cost, in the estimate's columns (None when it lacks the figures).

    ``tokens``: the run's shard tokens when they were written after the run (stats.json then
    does not have them)."""
    info = stats.get("run", {})
    if info.get("cpu_seconds") is None or not info.get("input_bytes"):
        return None
    figures = measure_run(run_dir, stats, f"{info.get('inputs', '?')} file(s)", int(info["input_bytes"]))
    if tokens is not None:
        figures = replace(figures, tokens=tokens)
    return project([figures], figures.input_bytes, price_per_core_hour, bytes_per_token)


def _check_runner(beam_args: Sequence[str]) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.cpu_time import runs_locally
    from pipeline.run import pipeline_options

    runner = pipeline_options(beam_args).view_as(StandardOptions).runner
    if not runs_locally(runner, beam_args):
        raise EstimateError(f"runner {runner}: estimate measures CPU on this machine; use the DirectRunner "
                            "or a Dask LocalCluster (no --dask_client_address)")
    return runner


def _sample_sizes(files: Sequence[str]) -> list[int]:
    from pipeline.inputs import InputError, file_size

    sizes = []
    for path in files:
        size = file_size(path)
        if not size:
            raise InputError(f"{path}: cannot tell its size (needed to scale the sample to the dump)")
        sizes.append(size)
    return sizes


def _run_dir(work_dir: Path, engine: str, index: int, path: str) -> Path:
    return work_dir / engine / f"{index:02d}-{path.rstrip('/').rsplit('/', 1)[-1]}"


def estimate(
    inputs: Sequence[str],
    work_dir: str | Path,
    *,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    engines: Sequence[str] = (),
    sample: int = 3,
    beam_args: Sequence[str] = (),
    base_url: str | None = None,
    total_files: int | None = None,
    price_per_core_hour: float = DEFAULT_PRICE_PER_CORE_HOUR,
    bytes_per_token: float = DEFAULT_BYTES_PER_TOKEN,
) -> tuple[dict[str, Any], list[Projection]]:
    """Run the recipe on a sample of ``inputs`` per engine; write and return the projection.

    Raises a user error (EstimateError, InputError, ConfigError) before running anything when
    the request cannot work, and RunFailed when a sample run failed (the estimate would be wrong).
    """
    from pipeline.config import load_config
    from pipeline.inputs import COMMONCRAWL_BASE_URL, resolve_inputs
    from pipeline.readers import reader_spec
    from pipeline.run import RunFailed, run

    base = load_config(config, overrides)
    configs = {e: load_config(config, {**(overrides or {}), "extract.engine": e})
               for e in (engines or [base.extract.engine])}
    runner = _check_runner(beam_args)
    if price_per_core_hour < 0 or bytes_per_token <= 0:
        raise EstimateError("--price-per-core-hour must be >= 0 and --bytes-per-token > 0")
    files = resolve_inputs(inputs, base_url or COMMONCRAWL_BASE_URL, suffixes=reader_spec(base).suffixes)
    total = total_files or len(files)
    if total < len(files):
        raise EstimateError(f"--total-files {total} is less than the {len(files)} files the inputs list")
    chosen = sample_evenly(files, sample)
    sizes = _sample_sizes(chosen)
    log.info("estimate: %d of %d file(s) sampled, %s engine(s), runner %s", len(chosen), len(files),
             ", ".join(configs), runner)

    work = Path(work_dir)
    figures: list[SampleFigures] = []
    failures: list[str] = []
    for engine, cfg in configs.items():
        for index, (path, size) in enumerate(zip(chosen, sizes, strict=True)):
            run_dir = _run_dir(work, engine, index, path)
            try:
                result = run([path], str(run_dir), config=cfg, beam_args=beam_args, overwrite=True)
            except RunFailed as exc:
                failures.append(f"{engine} {path}: {exc}")
                continue
            figures.append(measure_run(run_dir, result.stats, path, size))
    if failures:
        raise RunFailed(f"{len(failures)} sample run(s) failed, so there is no estimate: " + "; ".join(failures))

    total_bytes = dump_bytes(sizes, total)
    projections = project_all(figures, total_bytes, price_per_core_hour, bytes_per_token)
    result = {
        "dump": {"total_files": total, "listed_files": len(files), "sample_files": len(chosen),
                 "mean_file_bytes": statistics.fmean(sizes), "total_bytes": total_bytes},
        "price_per_core_hour": price_per_core_hour, "currency": CURRENCY, "bytes_per_token": bytes_per_token,
        "shuffle_bytes_per_document": SHUFFLE_BYTES_PER_DOCUMENT, "caveats": list(CAVEATS),
        "projections": [p.as_dict() for p in projections],
    }
    work.mkdir(parents=True, exist_ok=True)
    (work / ESTIMATE_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result, projections
