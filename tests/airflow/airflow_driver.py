"""Runs inside .venv-airflow (never imported by pytest): loads the DAG folder, or test-runs the DAG.

Prints one JSON line prefixed with RESULT: so the test can read it among Airflow's log lines.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    mode = sys.argv[1]
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if mode == "import":
        result = {
            "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
            "dags": {dag_id: sorted(t.task_id for t in dag.tasks) for dag_id, dag in bag.dags.items()},
        }
    else:
        dag = bag.get_dag("commoncrawl_dump")
        run = dag.test(run_conf=json.loads(sys.argv[2]))
        states: dict[str, list[str]] = {}
        for ti in run.get_task_instances():
            states.setdefault(ti.task_id, []).append(str(ti.state))
        result = {"run_state": str(run.state), "states": {k: sorted(v) for k, v in states.items()}}
    print("RESULT:" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
