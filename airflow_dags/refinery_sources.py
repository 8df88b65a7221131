"""Curate the LLaMA mixture's other sources (Wikipedia, GitHub, books, arXiv, StackExchange, C4),
each with its own config, into a new run, and publish it to the sources catalog.

validate -> list_jobs -> curate x N (mapped: one `refinery run` per source into
<output_root>/sources/<source>/<run-id>/) -> publish x N (`refinery catalog publish`; the
refinery_mixture DAG is scheduled on the catalog's asset).

The run id is a digest of what the run is made of (inputs by path and size, config and tokenizer
by content, overrides): the same request lands in the same run, which refinery finds complete
and skips; a new dump of a source lands in a new run, and the published one is untouched until
the new one has its _SUCCESS.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import refinery_cli as cli  # noqa: E402
import refinery_tasks as rt  # noqa: E402

log = logging.getLogger(__name__)

NEEDED = ("run", "catalog")
CONFIGS = cli.REPO / "configs" / "sources"
# The recipe's key for each source, and the config that curates it (books come from Gutenberg).
DEFAULT_CONFIGS = {"wikipedia": "wikipedia", "github": "github", "books": "gutenberg", "arxiv": "arxiv",
                   "stackexchange": "stackexchange", "c4": "c4"}
JOB = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "inputs"],
    "properties": {
        "source": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$",
                   "description": "the recipe's key (wikipedia, github, books, ...) or key/sub (wikipedia/de)"},
        "inputs": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "config": {"type": "string", "description": "source YAML; empty = configs/sources/ for a known source"},
        "overrides": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9_.]+=.*$"}},
    },
}

PARAMS = {
    "sources": Param([], type="array", items=JOB, minItems=1,
                     description="one entry per source to curate: {source, inputs, config?, overrides?}"),
    "output_root": Param("out", type="string", minLength=1,
                         description="runs go to <output_root>/sources/<source>/<run-id>/"),
    "tokenizer": Param("", type="string", description="sentencepiece model: runs are tokenized for the mixture"),
    **rt.runner_params(),
    "refinery": rt.refinery_param(),
}


def _job(entry: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """One source's run, checked: its config exists (a known source defaults to its own)."""
    source = entry["source"]
    config = entry.get("config") or ""
    if not config:
        known = DEFAULT_CONFIGS.get(source.split("/")[0])
        if known is None:
            raise AirflowFailException(f"sources: '{source}' has no config in configs/sources/; give its config")
        config = str(CONFIGS / f"{known}.yaml")
    if cli.is_local(config) and not Path(config.removeprefix("file://")).is_file():
        raise AirflowFailException(f"sources: '{source}' config not found: {config}")
    for path in entry["inputs"]:
        if cli.is_local(path) and not any(c in path for c in "*?[") and not Path(path.removeprefix("file://")).exists():
            raise AirflowFailException(f"sources: '{source}' input not found: {path}")
    overrides = [a for kv in entry.get("overrides", []) for a in ("--set", kv)]
    tokenize = ["--set", f"tokenize.tokenizer={params['tokenizer']}"] if params["tokenizer"] else []
    run_id = cli.run_id({"source": source, "config": cli.fingerprint(config), "overrides": overrides,
                         "tokenizer": cli.fingerprint(params["tokenizer"]) if params["tokenizer"] else "",
                         "inputs": [[p, _size(p)] for p in entry["inputs"]]})
    return {"source": source, "run_id": run_id, "inputs": entry["inputs"],
            "output": f"{params['output_root'].rstrip('/')}/sources/{source}/{run_id}",
            "config_args": ["--config", config, *overrides, *tokenize]}


def _size(path: str) -> int | None:
    local = Path(path.removeprefix("file://"))
    return local.stat().st_size if cli.is_local(path) and local.is_file() else None


@task
def validate() -> dict[str, Any]:
    """Checks what a schema cannot (files, a source named twice), and freezes each source's run."""
    params = get_current_context()["params"]
    executable = rt.executable(params, NEEDED)
    beam_args = rt.runner_args(params)
    rt.check_files(params, ("tokenizer",))
    jobs = [_job(entry, params) for entry in params["sources"]]
    names = [j["source"] for j in jobs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AirflowFailException(f"sources: '{twice[0]}' is given twice")
    plan = {"refinery": executable, "beam_args": beam_args, "output_root": params["output_root"].rstrip("/"),
            "jobs": jobs}
    log.info("plan: %s", plan)
    return plan


@task
def list_jobs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return plan["jobs"]


@task(**rt.HEAVY)
def curate(plan: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """One `refinery run` of one source into its new run (skipped by refinery when finished)."""
    rt.refinery(plan["refinery"], ["run", "--input", *job["inputs"], "--output", job["output"],
                                     *job["config_args"], *plan["beam_args"]])
    return job


@task(outlets=[rt.SOURCES])
def publish(plan: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """The run becomes its source's latest: the mixture DAG starts on it."""
    return rt.publish(plan["refinery"], plan["output_root"], job["source"], job["run_id"],
                      get_current_context()["outlet_events"])


@dag(
    dag_id="refinery_sources",
    schedule=None,  # triggered with the dumps to curate: each source's dumps come out on their own dates
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["refinery", "sources"],
    doc_md=__doc__,
)
def refinery_sources() -> None:
    plan = validate()
    curated = curate.partial(plan=plan).expand(job=list_jobs(plan))
    publish.partial(plan=plan).expand(job=curated)


refinery_sources()
