"""Process one CommonCrawl dump: batches of WARC files through the pipeline, then publish it.

validate (picks the dump: the one asked for, or the newest in CommonCrawl's crawl index that is not
published yet) -> list the dump's warc.paths.gz -> one mapped `refinery run` per batch (pooled,
retried with exponential backoff, skipped by refinery when finished from the same request) ->
dedup across the dump's documents and tokenize them (one `refinery run` into a new run of the
source ``commoncrawl/<dump-id>``) -> publish it to the sources catalog (the refinery_mixture DAG
is scheduled on that) -> report on the dump.

The DAG is thin on purpose: every step is a `refinery` subcommand run from the pipeline's venv
(see refinery_cli), so that Airflow's venv never imports Beam. A subcommand the installed refinery
lacks fails `validate`: a stale install is found before any batch starts, not halfway through.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

# The DAG processor puts the bundle's folder on sys.path, but `dag.test()` and some executors do
# not; the helper modules sit beside this file either way.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import refinery_cli as cli  # noqa: E402
import refinery_tasks as rt  # noqa: E402

log = logging.getLogger(__name__)

MAX_BATCHES = 1024  # Airflow's default [core] max_map_length; raise both together
HEAVY = rt.HEAVY
CRAWL_INDEX = "https://index.commoncrawl.org/collinfo.json"  # every crawl CommonCrawl has published
NEEDED = ("run", "catalog", "report")  # the subcommands this DAG calls

PARAMS = {
    "dump_id": Param("", type="string", pattern=r"^(CC-MAIN-\d{4}-\d{2})?$",
                     description="CommonCrawl crawl id; empty = the newest crawl in crawl_index, unless it "
                                 "is published already (then the run skips)"),
    "crawl_index": Param(CRAWL_INDEX, type="string",
                         description="CommonCrawl's collinfo.json (local path, file:// or https://); "
                                     "a dump_id it does not list fails; empty = no check"),
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
    "output_root": Param("out", type="string", minLength=1,
                         description="batches go to <output_root>/commoncrawl/<dump_id>/, the published "
                                     "run to <output_root>/sources/commoncrawl/<dump_id>/<run-id>/"),
    **rt.runner_params(),
    "refinery": rt.refinery_param(),
    "tokenizer": Param("", type="string", description="sentencepiece model: the published run is tokenized "
                                                      "for the mixture; empty = deduplicated only"),
}


def _dump_id(executable: str, params: dict[str, Any]) -> str:
    """The dump asked for, checked against the crawl index; or, on a schedule, the index's newest
    dump unless it is published already: a processed dump is never started twice, and a fresh
    install does not walk back through every crawl ever made."""
    asked, location = params["dump_id"], params["crawl_index"]
    if not location:
        if not asked:
            raise AirflowFailException("dump_id: empty, and there is no crawl_index to pick the newest dump from")
        return asked
    try:
        ids = cli.crawl_ids(cli.read_json(location), location)
    except (OSError, ValueError) as exc:
        raise AirflowFailException(f"crawl_index: {exc}".splitlines()[0]) from None
    if asked:
        if asked not in ids:
            raise AirflowFailException(f"dump_id {asked} is not in the crawl index {location} (newest: {ids[-1]})")
        return asked
    newest = ids[-1]
    if f"commoncrawl/{newest}" in rt.published(executable, params["output_root"]):
        raise AirflowSkipException(f"{newest}, the newest dump in {location}, is published already")
    return newest


@task
def validate() -> dict[str, Any]:
    """Checks what a schema cannot, picks the dump, and freezes the plan every later task works from."""
    params = get_current_context()["params"]
    executable = rt.executable(params, NEEDED)
    beam_args = rt.runner_args(params)
    rt.check_files(params, ("config", "tokenizer"))
    dump_id = _dump_id(executable, params)
    output_root = params["output_root"].rstrip("/")
    plan = {
        "dump_id": dump_id,
        "source": f"commoncrawl/{dump_id}",
        "manifest": cli.manifest_location(dump_id, params["manifest"], params["base_url"]),
        "base_url": params["base_url"],
        "num_files": params["num_files"],
        "sample": params["sample"],
        "batch_size": params["batch_size"],
        "output_root": output_root,
        "root": f"{output_root}/commoncrawl/{dump_id}",
        "refinery": executable,
        "config_args": (["--config", params["config"]] if params["config"] else [])
        + [a for kv in params["overrides"] for a in ("--set", kv)],
        "beam_args": beam_args,
        "tokenizer": params["tokenizer"],
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


@task(**HEAVY)
def process_batch(plan: dict[str, Any], batch: dict[str, Any]) -> str:
    """One `refinery run` over a batch. A batch finished from the same inputs and config is skipped
    by refinery itself; one finished from others fails the task (exit 2) instead of being reused."""
    output = batch["output"]
    rt.refinery(plan["refinery"], ["run", "--input", *batch["inputs"], "--output", output,
                                     *plan["config_args"], *plan["beam_args"]])
    return output


@task(**HEAVY)
def dedup_dump(plan: dict[str, Any], batch_outputs: list[str]) -> dict[str, str]:
    """Dedup across the whole dump (each batch only deduplicated within itself), and tokenize, into a
    new run of the source: its id comes from the batches and the tokenizer, so a re-run finds it
    finished and another tokenizer makes another run rather than overwriting the published one.

    Tokenizing is a section of `refinery run` (tokenize.tokenizer), so the kept documents are
    written as token shards in the same pass, under <run>/shards.
    """
    inputs = [f"{o}/documents/*.parquet" for o in sorted(batch_outputs)]
    run_id = cli.run_id({"inputs": inputs, "tokenizer": cli.fingerprint(plan["tokenizer"]) if plan["tokenizer"] else ""})
    output = f"{plan['output_root']}/sources/{plan['source']}/{run_id}"
    tokenize = ["--set", f"tokenize.tokenizer={plan['tokenizer']}"] if plan["tokenizer"] else []
    if not tokenize:
        log.warning("no tokenizer param: the dump is deduplicated but not tokenized, so no mixture can use it")
    rt.refinery(plan["refinery"], ["run", "--input", *inputs, "--output", output,
                                     "--set", "input.format=documents",
                                     "--set", "stages=[exact_dedup, minhash_dedup]", *tokenize, *plan["beam_args"]])
    return {"run_id": run_id, "output": output}


@task(outlets=[rt.SOURCES])
def publish(plan: dict[str, Any], dedup: dict[str, str]) -> dict[str, str]:
    """The dump becomes the latest run of ``commoncrawl/<dump-id>``: the mixture DAG starts on it."""
    return rt.publish(plan["refinery"], plan["output_root"], plan["source"], dedup["run_id"],
                      get_current_context()["outlet_events"])


@task
def report(plan: dict[str, Any], dedup: dict[str, str]) -> None:
    """The dump's own report: its funnel and dedup (the mixture DAG reports on the mixture)."""
    rt.refinery(plan["refinery"], ["report", dedup["output"], "--out", f"{plan['root']}/report"])


@dag(
    dag_id="commoncrawl_dump",
    schedule="@weekly",  # cheap when there is nothing new: validate reads the index and skips
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
    publish(plan, dedup)
    report(plan, dedup)


commoncrawl_dump()
