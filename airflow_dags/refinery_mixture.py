"""From the sources catalog to a trained model: mixture, pretraining, eval, report.

Scheduled on the catalog's asset: whenever commoncrawl_dump or refinery_sources publishes a run,
validate -> resolve (`refinery catalog latest --recipe`: the latest run of every source the recipe
names; a source with weight and nothing published fails here, naming it) -> mix (`refinery mix`
into <output_root>/mixtures/<mix-id>/, the id a digest of the runs and the request) ->
pretrain (optional: `torchrun ... refinery pretrain --resume`, so a retry continues from the
last checkpoint) -> evaluate (`refinery eval`, the table written beside the checkpoint) ->
report (`refinery report` over every run, with the mixture).

The same catalog and params give the same mix id, so a re-run finds the mixture complete and the
pretraining at its last step: it starts nothing that finished.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import refinery_cli as cli  # noqa: E402
import refinery_tasks as rt  # noqa: E402

log = logging.getLogger(__name__)

NEEDED = ("catalog", "mix", "report")
NEEDED_TO_TRAIN = ("pretrain", "eval")

PARAMS = {
    "output_root": Param("out", type="string", minLength=1,
                         description="the catalog's root (<output_root>/sources/); a run started by a publish "
                                     "takes the publisher's root"),
    "recipe": Param(str(cli.REPO / "configs" / "mixture" / "llama1.yaml"), type="string", minLength=1,
                    description="mixture recipe YAML (weights per source)"),
    "model_params": Param(7e9, type="number", exclusiveMinimum=0,
                          description="target model size: the mixture's token-budget table is computed for it"),
    "token_budget": Param(0, type="integer", minimum=0, description="tokens to train on; 0 = the recipe's"),
    "tokenizer": Param("", type="string", description="tokenizer .model; empty = the copy beside the shards"),
    "pretrain": Param(False, type="boolean", description="pretrain on the mixture, then evaluate"),
    "pretrain_model": Param(str(cli.REPO / "configs" / "model" / "tiny.yaml"), type="string", minLength=1,
                            description="model YAML (configs/model/)"),
    "pretrain_config": Param("", type="string", description="train YAML (configs/train/); empty = its default"),
    "pretrain_steps": Param(0, type="integer", minimum=0, description="optimizer steps; 0 = the train config's"),
    "nnodes": Param(1, type="integer", minimum=1, maximum=1024, description="torchrun --nnodes"),
    "nproc_per_node": Param(1, type="integer", minimum=1, maximum=64,
                            description="torchrun --nproc_per_node: GPUs per node (CPU processes with gloo)"),
    "rdzv_endpoint": Param("", type="string", pattern=r"^([A-Za-z0-9_.-]+:\d+)?$",
                           description="host:port where the nodes meet (nnodes > 1)"),
    "eval_windows": Param(64, type="integer", minimum=1, description="held-out windows per source for the eval"),
    "refinery": rt.refinery_param(),
}


def _output_root(context: dict[str, Any], params: dict[str, Any]) -> str:
    """The publisher's root when an asset event started the run (all must agree), else the param."""
    roots = {str(event.extra["output_root"])
             for events in context.get("triggering_asset_events", {}).values()
             for event in events if event.extra and "output_root" in event.extra}
    if len(roots) > 1:
        raise AirflowFailException(f"the publishes that started this run name several output roots: {sorted(roots)}")
    return (roots.pop() if roots else params["output_root"]).rstrip("/")


@task
def validate() -> dict[str, Any]:
    """Checks what a schema cannot (files, nodes with no meeting point) and freezes the plan."""
    context = get_current_context()
    params = context["params"]
    executable = rt.executable(params, NEEDED + (NEEDED_TO_TRAIN if params["pretrain"] else ()))
    rt.check_files(params, ("recipe", "tokenizer", "pretrain_config"))
    if params["pretrain"]:
        model = params["pretrain_model"]
        if not Path(model).is_file() or Path(model).suffix not in {".yaml", ".yml"}:
            raise AirflowFailException(f"pretrain_model: no model config at {model} (a YAML from configs/model/)")
        if params["nnodes"] > 1 and not params["rdzv_endpoint"]:
            raise AirflowFailException("rdzv_endpoint: nnodes > 1 needs the host:port where the nodes meet")
    plan = {key: params[key] for key in PARAMS if key != "refinery"}
    plan.update(refinery=executable, output_root=_output_root(context, params))
    log.info("plan: %s", plan)
    return plan


@task
def resolve(plan: dict[str, Any]) -> dict[str, Any]:
    """The latest run of every source in the recipe, and the mixture's directory named after them."""
    runs = rt.latest_runs(plan["refinery"], plan["output_root"], plan["recipe"])
    request = {"runs": {s: r["path"] for s, r in sorted(runs.items())}, "recipe": cli.fingerprint(plan["recipe"]),
               "token_budget": plan["token_budget"], "tokenizer": cli.fingerprint(plan["tokenizer"]),
               "model_params": plan["model_params"]}
    mix_id = cli.run_id(request)
    log.info("mixture %s over %s", mix_id, ", ".join(f"{s} ({r['run_id']})" for s, r in sorted(runs.items())))
    return {"id": mix_id, "runs": request["runs"], "dir": f"{plan['output_root']}/mixtures/{mix_id}"}


@task
def mix(plan: dict[str, Any], chosen: dict[str, Any]) -> str:
    """`refinery mix`, which keeps a mixture.json already made from the same shards and recipe."""
    args = ["mix", "--config", plan["recipe"], "--output", chosen["dir"], "--model-params", f"{plan['model_params']:g}"]
    for source, path in chosen["runs"].items():
        args += ["--source", f"{source}={path}"]
    args += ["--token-budget", str(plan["token_budget"])] if plan["token_budget"] else []
    args += ["--tokenizer", plan["tokenizer"]] if plan["tokenizer"] else []
    rt.refinery(plan["refinery"], args)
    return f"{chosen['dir']}/mixture.json"


@task(**{**rt.HEAVY, "pool": "default_pool"})
def pretrain(plan: dict[str, Any], chosen: dict[str, Any], mixture: str) -> str:
    """torchrun across nodes x GPUs; `--resume` makes a retry continue from the newest checkpoint
    (and a run already at its last step return at once)."""
    if not plan["pretrain"]:
        raise AirflowSkipException("pretrain=false")
    out = f"{chosen['dir']}/pretrain"
    args = ["pretrain", "--model", plan["pretrain_model"], "--data", mixture, "--out", out, "--resume"]
    args += ["--train-config", plan["pretrain_config"]] if plan["pretrain_config"] else []
    args += ["--steps", str(plan["pretrain_steps"])] if plan["pretrain_steps"] else []
    launcher = cli.torchrun(plan["refinery"], plan["nnodes"], plan["nproc_per_node"], plan["rdzv_endpoint"],
                            chosen["id"])
    rt.refinery(plan["refinery"], args, launcher=launcher)
    return out


@task
def evaluate(plan: dict[str, Any], checkpoint: str, mixture: str) -> str:
    """Held-out loss and bits per byte per source, as JSON beside the checkpoint (eval.json)."""
    out = f"{checkpoint}/eval.json"
    rt.refinery(plan["refinery"], ["eval", "--ckpt", checkpoint, "--data", mixture, "--out", out,
                                     "--max-windows", str(plan["eval_windows"])])
    return out


@task(trigger_rule="none_failed")
def report(plan: dict[str, Any], chosen: dict[str, Any], mixture: str) -> str:
    """Every source's run and the mixture in one report (it runs whether or not there was training)."""
    out = f"{chosen['dir']}/report"
    rt.refinery(plan["refinery"], ["report", *chosen["runs"].values(), "--mixture", mixture, "--out", out])
    return out


@dag(
    dag_id="refinery_mixture",
    schedule=[rt.SOURCES],  # any source published (a dump, or one of the other sources)
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["refinery", "mixture", "pretrain"],
    doc_md=__doc__,
)
def refinery_mixture() -> None:
    plan = validate()
    chosen = resolve(plan)
    mixture = mix(plan, chosen)
    checkpoint = pretrain(plan, chosen, mixture)
    evaluate(plan, checkpoint, mixture) >> report(plan, chosen, mixture)


refinery_mixture()
