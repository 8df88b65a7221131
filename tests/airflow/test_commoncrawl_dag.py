"""The commoncrawl_dump DAG under real Airflow, in its own venv, on a local manifest of real WARCs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.output_dir import RUN_INFO
from tests.airflow.conftest import driver, run_dags
from tests.conftest import WARC_DIR

pytestmark = pytest.mark.integration

# Two batches: two small crawls that keep documents, then CommonCrawl's own sample, which keeps none.
WARCS = ["dolma_wget_sample-0000.warc.gz", "dolma_wget_sample-0001.warc.gz", "whirlwind_CC-MAIN-2024-22.warc.gz"]


def root_of(tmp_path: Path) -> Path:
    return tmp_path / "out" / "commoncrawl" / "CC-MAIN-2024-22"


def crawl_index(path: Path, *ids: str) -> Path:
    """A local stand-in for CommonCrawl's collinfo.json (newest first, as theirs is)."""
    path.write_text(json.dumps([{"id": i, "name": f"{i} index", "cdx-api": f"https://index.example/{i}-index"}
                                for i in ids]))
    return path


def stale_refinery(path: Path, real: str, hide: str) -> Path:
    """The real refinery, installed before `refinery HIDE` existed: its --help does not list it."""
    path.write_text(f"#!/bin/sh\nif [ \"$1\" = --help ]; then {real} --help | grep -v '^    {hide} '; exit 0; fi\n"
                    f'exec {real} "$@"\n')
    path.chmod(0o755)
    return path


def test_dag_folder_imports_without_errors(airflow_env: dict[str, str]) -> None:
    result, _ = driver(airflow_env, "import")
    assert result["import_errors"] == {}
    assert set(result["dags"]["commoncrawl_dump"]) == {
        "validate", "list_batches", "process_batch", "dedup_dump", "publish", "report"}
    assert set(result["dags"]["refinery_sources"]) == {"validate", "list_jobs", "curate", "publish"}
    assert set(result["dags"]["refinery_mixture"]) == {"validate", "resolve", "mix", "pretrain", "evaluate", "report"}
    # Both publishers emit the catalog's asset, and the mixture is scheduled on it.
    for dag_id in ("commoncrawl_dump", "refinery_sources"):
        assert "refinery://sources" in str(result["outlets"][dag_id]["publish"])
    assert "refinery_sources" in result["schedules"]["refinery_mixture"]
    assert "expression='0 0 * * 0'" in result["schedules"]["commoncrawl_dump"]  # @weekly


def test_dag_runs_a_dump_and_reuses_finished_batches_only_for_the_same_request(
        airflow_env: dict[str, str], tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress("".join(f"{WARC_DIR / name}\n" for name in WARCS).encode()))
    index = crawl_index(tmp_path / "collinfo.json", "CC-MAIN-2024-26", "CC-MAIN-2024-22")
    conf = {"dump_id": "CC-MAIN-2024-22", "crawl_index": str(index), "manifest": str(manifest),
            "base_url": "file:///", "batch_size": 2, "output_root": str(tmp_path / "out"), "runner": "DirectRunner",
            "overrides": ["extract.engine=resiliparse"]}  # the fast extraction path, picked per trigger

    (result,), events, log = run_dags(airflow_env, ("commoncrawl_dump", conf))
    assert result["run_state"] == "success", log[-4000:]
    states = result["states"]
    assert states["process_batch"] == ["success", "success"]
    assert states["dedup_dump"] == states["publish"] == states["report"] == ["success"]
    assert (root_of(tmp_path) / "report" / "report.html").exists()
    root = root_of(tmp_path)
    batches = sorted((root / "batches").iterdir())
    assert [b.name for b in batches] == ["batch-00000", "batch-00001"]
    assert all((b / "_SUCCESS").exists() for b in batches)
    for batch in batches:
        assert json.loads((batch / RUN_INFO).read_text())["config"]["extract"]["engine"] == "resiliparse"
    per_batch = [pq.read_table(b / "documents").num_rows for b in batches]
    assert per_batch[0] > 0
    # The dedup is a new run of the source commoncrawl/<dump-id>, published to its catalog.
    source = tmp_path / "out" / "sources" / "commoncrawl" / "CC-MAIN-2024-22"
    catalog = json.loads((source / "catalog.json").read_text())
    published = source / catalog["latest"]
    assert (published / "_SUCCESS").exists()
    assert 0 < pq.read_table(published / "documents").num_rows <= sum(per_batch)
    assert events[-1]["extra"] == {"output_root": str(tmp_path / "out"), "source": "commoncrawl/CC-MAIN-2024-22",
                                   "run_id": catalog["latest"]}

    stamps = {b.name: (b / "_SUCCESS").stat().st_mtime_ns for b in batches}
    catalog_bytes = (source / "catalog.json").read_bytes()
    stale = stale_refinery(tmp_path / "stale-refinery", airflow_env["REFINERY_EXECUTABLE"], "catalog")
    runs, _, log = run_dags(
        airflow_env,
        ("commoncrawl_dump", conf),
        # Finished batches are reused only for the same request: another engine fails the batch task
        # (refinery exits 2 naming the differing key) instead of passing old output off as new.
        ("commoncrawl_dump", {**conf, "overrides": ["extract.engine=trafilatura"]}),
        # A dump the index does not list, and an install that lacks a subcommand: validate fails.
        ("commoncrawl_dump", {**conf, "dump_id": "CC-MAIN-2031-01"}),
        ("commoncrawl_dump", {**conf, "refinery": str(stale)}),
    )
    again, other, unknown, old = runs
    assert again["run_state"] == "success", log[-4000:]
    assert log.count("already complete") >= 3  # refinery itself skipped both batches and the dedup
    assert "already latest" in log
    assert other["run_state"] == "failed" and "extract.engine" in log, log[-4000:]
    assert unknown["run_state"] == old["run_state"] == "failed"
    assert unknown["states"]["validate"] == old["states"]["validate"] == ["failed"]
    assert "dump_id CC-MAIN-2031-01 is not in the crawl index" in log
    assert f"{stale} has no subcommand catalog" in log
    assert {b.name: (b / "_SUCCESS").stat().st_mtime_ns for b in batches} == stamps
    assert (source / "catalog.json").read_bytes() == catalog_bytes
