"""Runs inside .venv-airflow (never imported by pytest): loads the DAG folder, or test-runs DAGs.

``import`` lists the DAGs, their tasks and schedules; ``test RUNS_JSON`` runs ``[[dag_id, conf], ...]``
one after the other with ``dag.test()`` in this one process (Airflow's start-up is paid once).
Prints one JSON line prefixed with RESULT: so the test can read it among Airflow's log lines.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _states(run: Any) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return {k: sorted(v) for k, v in states.items()}


def _asset_events() -> list[dict[str, Any]]:
    """Every asset event in the database, oldest first: what the publish tasks emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).order_by(AssetEvent.id)).all()
        return [{"uri": e.uri, "extra": dict(e.extra or {})} for e in events]


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    mode = sys.argv[1]
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if mode == "import":
        result: Any = {
            "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
            "dags": {dag_id: sorted(t.task_id for t in dag.tasks) for dag_id, dag in bag.dags.items()},
            "schedules": {dag_id: f"{dag.timetable!r} {getattr(dag.timetable, 'asset_condition', '')!r}"
                          for dag_id, dag in bag.dags.items()},
            "outlets": {dag_id: {t.task_id: [repr(o) for o in t.outlets] for t in dag.tasks if t.outlets}
                        for dag_id, dag in bag.dags.items()},
        }
    else:
        runs = []
        for dag_id, conf in json.loads(sys.argv[2]):
            # dag.test() leaves a run's conf in the DAG's params for the next run of the same DAG in
            # this process: each conf must give every key whose default it relies on.
            run = bag.get_dag(dag_id).test(run_conf=conf)
            runs.append({"dag_id": dag_id, "run_state": str(run.state), "states": _states(run)})
        result = {"runs": runs, "asset_events": _asset_events()}
    print("RESULT:" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
