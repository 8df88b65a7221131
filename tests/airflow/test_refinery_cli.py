"""The DAGs' helpers that need no Airflow: subcommand check, crawl index, run ids, torchrun line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airflow_dags import refinery_cli as cli

REFINERY = str(Path(sys.executable).with_name("refinery"))


def test_a_subcommand_the_executable_lacks_is_named() -> None:
    assert cli.missing_subcommands(REFINERY, ["run", "catalog", "mix", "report", "pretrain", "eval"]) == []
    assert cli.missing_subcommands(REFINERY, ["mix", "no-such-step"]) == ["no-such-step"]


def test_the_crawl_index_gives_dump_ids_oldest_first_and_bad_ones_fail() -> None:
    index = [{"id": "CC-MAIN-2024-26"}, {"id": "CC-MAIN-2024-22"}, {"id": "CC-MAIN-2012"}, {"name": "x"}]
    assert cli.crawl_ids(index, "collinfo.json") == ["CC-MAIN-2024-22", "CC-MAIN-2024-26"]
    for bad in ({"id": "CC-MAIN-2024-22"}, [], [{"id": "CC-MAIN-2012"}]):
        with pytest.raises(ValueError, match="collinfo.json"):
            cli.crawl_ids(bad, "collinfo.json")


def test_run_ids_follow_the_request_and_local_files_count_by_content(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("a: 1\n")
    first = cli.run_id({"inputs": ["x"], "config": cli.fingerprint(str(config))})
    assert first == cli.run_id({"config": cli.fingerprint(str(config)), "inputs": ["x"]})
    config.write_text("a: 2\n")  # edited in place: another request, another run
    assert first != cli.run_id({"inputs": ["x"], "config": cli.fingerprint(str(config))})
    assert cli.fingerprint("gs://b/c.yaml") == "gs://b/c.yaml"


def test_torchrun_runs_refinery_on_every_node_and_gpu() -> None:
    assert cli.torchrun("/v/bin/refinery", 1, 2, "", "m1") == [
        "/v/bin/torchrun", "--nnodes", "1", "--nproc_per_node", "2", "--standalone", "--no-python"]
    many = cli.torchrun("/v/bin/refinery", 4, 8, "head:29500", "m1")
    assert many[-7:] == ["--rdzv_backend", "c10d", "--rdzv_endpoint", "head:29500", "--rdzv_id", "m1", "--no-python"]
