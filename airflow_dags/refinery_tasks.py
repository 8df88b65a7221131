"""What the three refinery DAGs share: the catalog's asset, the executable check, running a step.

commoncrawl_dump and refinery_sources publish finished runs to the sources catalog
(``refinery catalog publish``) with SOURCES as their outlet; refinery_mixture is scheduled on it,
so any source publishing starts a mixture over the latest run of every source. The event's extra
carries the output root, so the mixture DAG finds the catalog the publisher wrote to.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, Param, Variable
from airflow.sdk.exceptions import AirflowFailException

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import refinery_cli as cli  # noqa: E402

POOL = "refinery_heavy"  # `airflow pools set refinery_heavy 4 "pipeline runs"` caps concurrent runs

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

SOURCES = Asset(name="refinery_sources", uri="refinery://sources")
RUNNERS = ["DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "pipeline.dask_runner.DaskRunner"]


def refinery_param() -> Param:
    return Param("", type="string", description="the pipeline venv's refinery executable; empty = Variable "
                 "refinery_executable, $REFINERY_EXECUTABLE, or <repo>/.venv/bin/refinery")


def runner_params() -> dict[str, Param]:
    return {"runner": Param("DirectRunner", type="string", enum=RUNNERS),
            "runner_options": Param([], type="array", items={"type": "string", "pattern": r"^--[A-Za-z0-9_]+(=.*)?$"},
                                    description="Beam pipeline options as --name=value (see configs/runners/)")}


def fail(message: str) -> AirflowFailException:
    """A task failure that is not retried: the request is wrong, one line says what."""
    return AirflowFailException(message)


def executable(params: Mapping[str, Any], needed: Sequence[str]) -> str:
    """The refinery to run, checked to exist and to have every subcommand the DAG will call."""
    found = cli.resolve_executable(params["refinery"], Variable.get("refinery_executable", default=None))
    if cli.is_local(found) and not os.access(found, os.X_OK):
        raise fail(f"refinery executable not found or not executable: {found} "
                   "(set the `refinery` param, the refinery_executable Variable or $REFINERY_EXECUTABLE)")
    missing = cli.missing_subcommands(found, needed)
    if missing:
        raise fail(f"{found} has no subcommand {', '.join(missing)} (`refinery --help`); "
                   "reinstall the pipeline venv (make install) before running this DAG")
    return found


def check_files(params: Mapping[str, Any], names: Sequence[str]) -> None:
    """Every named param that is a local path must exist; one line names the param and the path."""
    for name in names:
        path = params[name]
        if path and cli.is_local(path) and not Path(path.removeprefix("file://")).exists():
            raise fail(f"{name}: file not found: {path}")


def runner_args(params: Mapping[str, Any]) -> list[str]:
    try:
        cli.check_runner_options(params["runner_options"])  # refinery's own flags, in any spelling
    except ValueError as exc:
        raise fail(str(exc)) from None
    return ["--runner", params["runner"], *params["runner_options"]]


def refinery(executable: str, args: list[str], **kwargs: Any) -> str:
    """``refinery ARGS``; a usage mistake (exit 2) fails the task at once, other failures are retried."""
    try:
        return cli.run_cli(executable, args, **kwargs)
    except cli.RefineryUsageError as exc:
        raise fail(str(exc)) from None


def publish(executable: str, root: str, source: str, run_id: str, outlet_events: Any) -> dict[str, str]:
    """``refinery catalog publish``, then an event on SOURCES naming the root, source and run."""
    refinery(executable, ["catalog", "publish", "--root", root, "--source", source, "--run-id", run_id])
    event = {"output_root": root, "source": source, "run_id": run_id}
    outlet_events[SOURCES].extra = event
    return event


def latest_runs(executable: str, root: str, recipe: str) -> dict[str, dict[str, Any]]:
    """``refinery catalog latest``: {source: {run_id, path, ...}} for the recipe's sources."""
    out = refinery(executable, ["catalog", "latest", "--root", root, "--recipe", recipe])
    start, end = out.find("{"), out.rfind("}")  # the JSON, among any log lines of the run
    return json.loads(out[start:end + 1])


def published(executable: str, root: str) -> set[str]:
    """The names of every source with a published run under ``root``."""
    out = refinery(executable, ["catalog", "latest", "--root", root])
    start, end = out.find("{"), out.rfind("}")
    return set(json.loads(out[start:end + 1]))
