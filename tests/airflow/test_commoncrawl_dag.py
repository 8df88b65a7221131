"""The commoncrawl_dump DAG under real Airflow, in its own venv, on a local manifest of real WARCs.

Airflow runs in .venv-airflow (`make airflow-venv`), apart from the pipeline's .venv, so every
Airflow step here is a subprocess of .venv-airflow/bin/python with its own AIRFLOW_HOME and a
SQLite database in a temp dir; its tasks call this repo's .venv/bin/refinery.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.output_dir import RUN_INFO
from tests.conftest import REPO, WARC_DIR

pytestmark = pytest.mark.integration

AIRFLOW_VENV = REPO / ".venv-airflow"
DRIVER = Path(__file__).with_name("airflow_driver.py")
# Two batches: two small crawls that keep documents, then CommonCrawl's own sample, which keeps none.
WARCS = ["dolma_wget_sample-0000.warc.gz", "dolma_wget_sample-0001.warc.gz", "whirlwind_CC-MAIN-2024-22.warc.gz"]


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
                          capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT:")]
    assert done.returncode == 0 and lines, log[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT:")), log


def root_of(tmp_path: Path) -> Path:
    return tmp_path / "out" / "CC-MAIN-2024-22"


def test_dag_folder_imports_without_errors(airflow_env: dict[str, str]) -> None:
    result, _ = driver(airflow_env, "import")
    assert result["import_errors"] == {}
    assert set(result["dags"]["commoncrawl_dump"]) >= {
        "validate", "list_batches", "process_batch", "dedup_dump", "mix", "report", "pretrain"}


def test_dag_runs_a_dump_and_reuses_finished_batches_only_for_the_same_request(airflow_env: dict[str, str], tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress("".join(f"{WARC_DIR / name}\n" for name in WARCS).encode()))
    conf = {"dump_id": "CC-MAIN-2024-22", "manifest": str(manifest), "base_url": "file:///",
            "batch_size": 2, "output_root": str(tmp_path / "out"), "runner": "DirectRunner",
            "overrides": ["extract.engine=resiliparse"]}  # the fast extraction path, picked per trigger

    result, log = driver(airflow_env, "test", json.dumps(conf))
    assert result["run_state"] == "success", log[-4000:]
    states = result["states"]
    assert states["process_batch"] == ["success", "success"]
    assert states["dedup_dump"] == ["success"]
    # No tokenizer given: nothing to mix or pretrain on; the report still covers the run.
    assert states["mix"] == ["skipped"] and states["pretrain"] == ["skipped"]
    assert states["report"] == ["success"] and (root_of(tmp_path) / "report" / "report.html").exists()
    root = root_of(tmp_path)
    batches = sorted((root / "batches").iterdir())
    assert [b.name for b in batches] == ["batch-00000", "batch-00001"]
    assert all((b / "_SUCCESS").exists() for b in batches)
    for batch in batches:
        assert json.loads((batch / RUN_INFO).read_text())["config"]["extract"]["engine"] == "resiliparse"
    per_batch = [pq.read_table(b / "documents").num_rows for b in batches]
    assert per_batch[0] > 0
    assert (root / "dedup" / "_SUCCESS").exists()
    assert 0 < pq.read_table(root / "dedup" / "documents").num_rows <= sum(per_batch)

    stamps = {b.name: (b / "_SUCCESS").stat().st_mtime_ns for b in batches}
    again, log = driver(airflow_env, "test", json.dumps(conf))
    assert again["run_state"] == "success", log[-4000:]
    assert log.count("already complete") >= 3  # refinery itself skipped both batches and the dedup
    assert {b.name: (b / "_SUCCESS").stat().st_mtime_ns for b in batches} == stamps

    # Finished batches are reused only for the same request: another engine fails the batch task
    # (refinery exits 2 naming the differing key) instead of passing old output off as new.
    other, log = driver(airflow_env, "test", json.dumps({**conf, "overrides": ["extract.engine=trafilatura"]}))
    assert other["run_state"] == "failed" and "extract.engine" in log, log[-4000:]
    assert {b.name: (b / "_SUCCESS").stat().st_mtime_ns for b in batches} == stamps
