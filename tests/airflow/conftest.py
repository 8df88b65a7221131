"""Airflow under test: its own venv, a temporary AIRFLOW_HOME with SQLite, this repo's refinery.

Airflow runs in .venv-airflow (`make airflow-venv`), apart from the pipeline's .venv, so every
Airflow step here is a subprocess of .venv-airflow/bin/python; its tasks call .venv/bin/refinery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

AIRFLOW_VENV = REPO / ".venv-airflow"
DRIVER = Path(__file__).with_name("airflow_driver.py")


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.fail(f"{AIRFLOW_VENV} is missing: run `make airflow-venv` (Airflow lives in its own venv)")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "REFINERY_EXECUTABLE": str(Path(sys.executable).with_name("refinery")),
    }
    airflow = str(AIRFLOW_VENV / "bin" / "airflow")
    for command in ([airflow, "db", "migrate"], [airflow, "pools", "set", "refinery_heavy", "1", "pipeline runs"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return env


def driver(env: dict[str, str], *args: str) -> tuple[dict, str]:
    done = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), str(DRIVER), *args], env=env,
                          capture_output=True, text=True, timeout=1500)
    log = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT:")]
    assert done.returncode == 0 and lines, log[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT:")), log


def run_dags(env: dict[str, str], *runs: tuple[str, dict[str, Any]]) -> tuple[list[dict], list[dict], str]:
    """``dag.test()`` of each (dag_id, conf) in turn, in one Airflow process: (runs, asset events, log)."""
    result, log = driver(env, "test", json.dumps([list(r) for r in runs]))
    return result["runs"], result["asset_events"], log
