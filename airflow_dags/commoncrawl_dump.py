"""Process one CommonCrawl dump: batches of WARC files through the pipeline, then the dump-wide steps.

validate -> list the dump's warc.paths.gz -> one mapped `refinery run` per batch (pooled,
retried with exponential backoff, skipped by refinery when finished from the same request) -> dedup across the
dump's documents and tokenize them (one `refinery run`) -> mixture -> report -> (optionally) pretrain.

The DAG is thin on purpose: every step is a `refinery` subcommand run from the pipeline's venv
(see refinery_cli), so that Airflow's venv never imports Beam. Steps whose subcommand the
installed refinery does not have yet skip with a log line instead of failing the run.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, Variable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

# The DAG processor puts the bundle's folder on sys.path, but `dag.test()` and some executors do
# not; the helper module sits beside this file either way.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import refinery_cli as cli  # noqa: E402

log = logging.getLogger(__name__)

POOL = "refinery_heavy"  # `airflow pools set refinery_heavy 4 "pipeline runs"` caps concurrent runs
MAX_BATCHES = 1024  # Airflow's default [core] max_map_length; raise both together
RUNNERS = ["DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "pipeline.dask_runner.DaskRunner"]

# A run killed with its worker (OOM, preemption) leaves its output claimed; a retry on another
# host exits 75 (busy) until the claim has been silent for 10 minutes (pipeline/output_dir.py),
# then takes it over. Retries 2, 4 and 8 minutes apart reach past that.
HEAVY = {
    "pool": POOL,
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
}

PARAMS = {
    "dump_id": Param("CC-MAIN-2024-22", type="string", pattern=r"^CC-MAIN-\d{4}-\d{2}$",
                     description="CommonCrawl crawl id"),
    "manifest": Param("", type="string",
                      description="warc.paths[.gz] to read (local path, file:// or https://); "
                                  "empty: <base_url>crawl-data/<dump_id>/warc.paths.gz"),
    "base_url": Param(cli.COMMONCRAWL_BASE_URL, type="string", pattern=r"^(https?|file|gs|s3)://|^/",
                      description="prefix for the manifest's relative entries"),
    "num_files": Param(0, type="integer", minimum=0, description="WARC files to process; 0 = the whole dump"),
    "sample": Param("spread", type="string", enum=["spread", "first"],
                    description="with num_files: evenly spread over the dump, or its first files"),
    "batch_size": Param(100, type="integer", minimum=1, maximum=10_000, description="WARC files per batch"),
    "config": Param("", type="string", description="pipeline YAML; empty = configs/commoncrawl.yaml"),
    "overrides": Param([], type="array", items={"type": "string", "pattern": r"^[A-Za-z0-9_.]+=.*$"},
                       description="KEY=VALUE config overrides (refinery run --set)"),
    "output_root": Param("out/commoncrawl", type="string", minLength=1,
                         description="outputs go to <output_root>/<dump_id>/..."),
    "runner": Param("DirectRunner", type="string", enum=RUNNERS),
    "runner_options": Param([], type="array", items={"type": "string", "pattern": r"^--[A-Za-z0-9_]+(=.*)?$"},
                            description="Beam pipeline options as --name=value (see configs/runners/)"),
    "refinery": Param("", type="string",
                      description="the pipeline venv's refinery executable; empty = Variable "
                                  "refinery_executable, $REFINERY_EXECUTABLE, or <repo>/.venv/bin/refinery"),
    "mixture": Param("", type="string", description="mixture YAML for refinery mix; empty = its default"),
    "tokenizer": Param("", type="string", description="sentencepiece model for tokenizing; empty = its default"),
    "pretrain": Param(False, type="boolean", description="start refinery pretrain at the end"),
    "pretrain_model": Param("configs/model/tiny.yaml", type="string", description="model YAML for refinery pretrain"),
    "pretrain_config": Param("", type="string", description="train YAML for refinery pretrain"),
}


@task
def validate() -> dict[str, Any]:
    """Checks what a schema cannot, and freezes the plan every later task works from."""
    params = get_current_context()["params"]
    executable = cli.resolve_executable(params["refinery"], Variable.get("refinery_executable", default=None))
    if cli.is_local(executable) and not os.access(executable, os.X_OK):
        raise AirflowFailException(f"refinery executable not found or not executable: {executable} "
                                   "(set the `refinery` param, the refinery_executable Variable or $REFINERY_EXECUTABLE)")
    try:
        cli.check_runner_options(params["runner_options"])  # refinery's own flags, in any spelling
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    for name in ("config", "mixture", "tokenizer", "pretrain_config") + (("pretrain_model",) if params["pretrain"] else ()):
        path = params[name]
        if path and cli.is_local(path) and not Path(path.removeprefix("file://")).exists():
            raise AirflowFailException(f"{name}: file not found: {path}")
    root = params["output_root"].rstrip("/") + "/" + params["dump_id"]
    plan = {
        "dump_id": params["dump_id"],
        "manifest": cli.manifest_location(params["dump_id"], params["manifest"], params["base_url"]),
        "base_url": params["base_url"],
        "num_files": params["num_files"],
        "sample": params["sample"],
        "batch_size": params["batch_size"],
        "root": root,
        "refinery": executable,
        "config_args": (["--config", params["config"]] if params["config"] else [])
        + [a for kv in params["overrides"] for a in ("--set", kv)],
        "beam_args": ["--runner", params["runner"], *params["runner_options"]],
        "mixture": params["mixture"],
        "tokenizer": params["tokenizer"],
        "pretrain": params["pretrain"],
        "pretrain_model": params["pretrain_model"],
        "pretrain_config": params["pretrain_config"],
    }
    log.info("plan: %s", plan)
    return plan


@task
def list_batches(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The dump's WARC files (or the sample asked for), cut into numbered batches."""
    entries = cli.read_manifest(plan["manifest"])
    chosen = cli.sample(entries, plan["num_files"], plan["sample"])
    groups = cli.batches([cli.absolute(e, plan["base_url"]) for e in chosen], plan["batch_size"])
    if len(groups) > MAX_BATCHES:
        raise AirflowFailException(f"{len(groups)} batches exceed {MAX_BATCHES}: raise batch_size")
    log.info("%s: %d of %d WARC files in %d batch(es)", plan["manifest"], len(chosen), len(entries), len(groups))
    return [{"index": i, "inputs": g, "output": f"{plan['root']}/batches/batch-{i:05d}"} for i, g in enumerate(groups)]


def _refinery(executable: str, args: list[str], **kwargs: Any) -> str:
    """``refinery ARGS``; a usage mistake (exit 2) fails the task at once, other failures are retried."""
    try:
        return cli.run_cli(executable, args, **kwargs)
    except cli.RefineryUsageError as exc:
        raise AirflowFailException(str(exc)) from None


@task(**HEAVY)
def process_batch(plan: dict[str, Any], batch: dict[str, Any]) -> str:
    """One `refinery run` over a batch. A batch finished from the same inputs and config is skipped
    by refinery itself; one finished from others fails the task (exit 2) instead of being reused."""
    output = batch["output"]
    _refinery(plan["refinery"], ["run", "--input", *batch["inputs"], "--output", output,
                                   *plan["config_args"], *plan["beam_args"]])
    return output


@task(**HEAVY)
def dedup_dump(plan: dict[str, Any], batch_outputs: list[str]) -> str:
    """Dedup across the whole dump (each batch only deduplicated within itself), and tokenize.

    Tokenizing is a section of `refinery run` (tokenize.tokenizer), so the kept documents are
    written as token shards in the same pass, under <root>/dedup/shards.
    """
    output = f"{plan['root']}/dedup"  # refinery skips it when finished from the same batches and config
    inputs = [f"{o}/documents/*.parquet" for o in sorted(batch_outputs)]
    tokenize = ["--set", f"tokenize.tokenizer={plan['tokenizer']}"] if plan["tokenizer"] else []
    if not tokenize:
        log.warning("no tokenizer param: the dump is deduplicated but not tokenized (refinery train-tokenizer)")
    _refinery(plan["refinery"], ["run", "--input", *inputs, "--output", output,
                                   "--set", "input.format=documents",
                                   "--set", "stages=[exact_dedup, minhash_dedup]", *tokenize, *plan["beam_args"]])
    return output


def _optional_step(plan: dict[str, Any], subcommand: str, args: list[str]) -> None:
    """Steps built by other parts of the project: skip cleanly while the subcommand is missing."""
    try:
        _refinery(plan["refinery"], [subcommand, *args], require=subcommand)
    except cli.SubcommandMissing as exc:
        log.warning("skipping: %s", exc)
        raise AirflowSkipException(str(exc)) from None


@task
def mix(plan: dict[str, Any], dedup_output: str) -> str:
    if not plan["tokenizer"]:
        raise AirflowSkipException("no tokenizer param, so no token shards to mix")
    output = f"{plan['root']}/mixture"
    args = ["--source", f"{plan['dump_id']}={dedup_output}", "--output", output]
    args += (["--config", plan["mixture"]] if plan["mixture"] else [])
    _optional_step(plan, "mix", args + ["--tokenizer", plan["tokenizer"]])
    return f"{output}/mixture.json"


@task(trigger_rule="none_failed")
def report(plan: dict[str, Any], dedup_output: str) -> None:
    """Runs whether or not there is a mixture: the funnel and dedup sections need only the run."""
    args = [dedup_output, "--out", f"{plan['root']}/report"]
    if plan["tokenizer"]:
        args += ["--mixture", f"{plan['root']}/mixture/mixture.json"]
    _optional_step(plan, "report", args)


@task(**HEAVY)
def pretrain(plan: dict[str, Any], mixture: str) -> None:
    if not plan["pretrain"]:
        raise AirflowSkipException("pretrain=false")
    args = ["--model", plan["pretrain_model"], "--data", mixture, "--out", f"{plan['root']}/pretrain", "--resume"]
    _optional_step(plan, "pretrain", args + (["--train-config", plan["pretrain_config"]] if plan["pretrain_config"] else []))


@dag(
    dag_id="commoncrawl_dump",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["refinery", "commoncrawl"],
    doc_md=__doc__,
)
def commoncrawl_dump() -> None:
    plan = validate()
    outputs = process_batch.partial(plan=plan).expand(batch=list_batches(plan))
    dedup = dedup_dump(plan, outputs)
    mixture = mix(plan, dedup)
    mixture >> report(plan, dedup)
    pretrain(plan, mixture)


commoncrawl_dump()
