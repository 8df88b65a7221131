"""One writer per output, and no output reused or written where it should not be (issue 17, items 3-6).

The runs go through ``refinery run`` in this process (one Beam import for the module) on the
smallest shared WARC file. A live first run is stood in for by a claim file naming this test
process, which is alive for as long as the test runs.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apache_beam.io.localfilesystem import LocalFileSystem

from pipeline.cli import EXIT_BUSY, main
from pipeline import output_dir
from pipeline.output_dir import ClaimBusy, OutputDir, OutputDirError
from tests.conftest import WARC_DIR

SMALL = str(WARC_DIR / "whirlwind_CC-MAIN-2024-22.warc.gz")
OTHER = str(WARC_DIR / "copycat_clueweb12-sample.warc.gz")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to show that nothing was touched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def stamp(seconds_ago: float = 0) -> str:
    """A claim's time (UTC, whole seconds) as its holder would have written it ``seconds_ago``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def write_claim(out: Path, pid: int, run_id: str, host: str | None = None, **times: str) -> dict:
    """A claim as a run with ``pid`` leaves it (on this host unless ``host``): ``_CLAIM``, JSON naming
    the holder. Started just now unless ``times`` say otherwise (``started``, ``heartbeat``)."""
    holder = {"host": host or socket.gethostname(), "pid": pid, "started": stamp(), "run_id": run_id, **times}
    (out / "_CLAIM").write_text(json.dumps(holder))
    return holder


def interrupted_output(out: Path) -> None:
    """What a first run leaves while it is still going: our _RUN.json and a partial document file."""
    (out / "documents").mkdir(parents=True)
    (out / "documents" / "part-00000.parquet").write_bytes(b"half written")
    (out / "_RUN.json").write_text(json.dumps({"inputs": [SMALL], "config": {}}))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run over SMALL with the default config; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert main(["run", "--input", SMALL, "--output", str(out)]) == 0
    return out


def test_second_run_while_a_live_claim_exists_exits_busy_naming_the_holder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    interrupted_output(out)
    holder = write_claim(out, os.getpid(), "first-run")
    before = tree(out)
    assert main(["run", "--input", SMALL, "--output", str(out)]) == EXIT_BUSY
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and holder["host"] in err and holder["started"] in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert tree(out) == before


def test_a_stale_claim_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    interrupted_output(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_claim(out, dead.pid, "killed-run")
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--input", SMALL, "--output", str(out)]) == 0
    assert f"pid {dead.pid}" in caplog.text and "stale" in caplog.text
    assert (out / "_SUCCESS").exists() and not (out / "_CLAIM").exists()
    info = json.loads((out / "_RUN.json").read_text())
    assert info["claim"]["pid"] == os.getpid() and info["claim"]["run_id"] != "killed-run"


def test_a_silent_claim_from_another_host_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed outright (OOM) leaves its claim; the retry on another host takes it over
    once the claim's heartbeat is older than the stale limit."""
    out = tmp_path / "out"
    interrupted_output(out)
    silent = stamp(output_dir.STALE_AFTER_SECONDS + 60)
    write_claim(out, 4242, "oom-killed-run", host="worker-that-died",
                started=stamp(output_dir.STALE_AFTER_SECONDS + 3600), heartbeat=silent)
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--input", SMALL, "--output", str(out)]) == 0
    assert "stale" in caplog.text and "worker-that-died" in caplog.text and f"last heartbeat {silent}" in caplog.text
    assert (out / "_SUCCESS").exists() and not (out / "_CLAIM").exists()
    info = json.loads((out / "_RUN.json").read_text())
    assert info["claim"]["host"] == socket.gethostname() and info["claim"]["run_id"] != "oom-killed-run"


def test_a_claim_from_before_heartbeats_is_stale_by_its_start(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_claim(out, 4242, "old-run", host="elsewhere", started=stamp(output_dir.STALE_AFTER_SECONDS + 60))
    with OutputDir(str(out)).claimed() as mine:
        assert json.loads((out / "_CLAIM").read_text())["run_id"] == mine.run_id
    assert list(out.iterdir()) == []


def test_a_claim_from_another_host_with_a_fresh_heartbeat_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    interrupted_output(out)
    beat = stamp(60)
    holder = write_claim(out, 4242, "live-run", host="busy-worker", started=stamp(3 * 3600), heartbeat=beat)
    before = tree(out)
    assert main(["run", "--input", SMALL, "--output", str(out)]) == EXIT_BUSY
    err = capsys.readouterr().err
    assert "busy-worker" in err and f"last heartbeat {beat}" in err and holder["started"] in err
    assert "taken over automatically once silent for 10 minutes" in err and "_CLAIM" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert tree(out) == before
    with pytest.raises(ClaimBusy, match="host busy-worker, pid 4242,") as refused, OutputDir(str(out)).claimed():
        pass
    assert refused.value.holder.run_id == "live-run"


def _heartbeat_threads(run_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"claim-heartbeat-{run_id}" and t.is_alive()]


def test_the_heartbeat_advances_while_held_and_stops_on_release(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output_dir, "HEARTBEAT_SECONDS", 0.1)
    out = tmp_path / "out"
    with OutputDir(str(out)).claimed() as mine:
        assert _heartbeat_threads(mine.run_id)
        deadline = time.monotonic() + 5  # the stamp has whole seconds: it changes within about one
        while (now := json.loads((out / "_CLAIM").read_text()))["heartbeat"] == mine.heartbeat:
            assert time.monotonic() < deadline, "the heartbeat never advanced"
            time.sleep(0.05)
        assert now["heartbeat"] > mine.heartbeat
        assert {k: v for k, v in now.items() if k != "heartbeat"} == {
            "host": mine.host, "pid": mine.pid, "started": mine.started, "run_id": mine.run_id}
    assert not (out / "_CLAIM").exists() and list(out.iterdir()) == []  # no temp file left either
    assert not _heartbeat_threads(mine.run_id)


def test_the_heartbeat_never_rewrites_a_claim_taken_by_another_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output_dir, "HEARTBEAT_SECONDS", 0.05)
    out = tmp_path / "out"
    with OutputDir(str(out)).claimed() as mine:
        intruder = write_claim(out, 4242, "intruder", host="elsewhere", heartbeat=stamp())
        deadline = time.monotonic() + 5
        while _heartbeat_threads(mine.run_id):
            assert time.monotonic() < deadline, "the heartbeat kept going on a claim that is not ours"
            time.sleep(0.05)
        assert json.loads((out / "_CLAIM").read_text()) == intruder
    assert json.loads((out / "_CLAIM").read_text()) == intruder
    assert sorted(p.name for p in out.iterdir()) == ["_CLAIM"]


def _claim_and_hold(out: str, start: multiprocessing.synchronize.Barrier, won: multiprocessing.Queue) -> None:
    start.wait()
    try:
        with OutputDir(out).claimed():
            time.sleep(1.0)
            won.put(os.getpid())
    except OutputDirError:
        pass


def test_runs_racing_for_a_stale_claim_leave_exactly_one_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_claim(out, dead.pid, "killed-run")
    fork = multiprocessing.get_context("fork")
    start, won = fork.Barrier(6), fork.Queue()
    racers = [fork.Process(target=_claim_and_hold, args=(str(out), start, won)) for _ in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)
    winners = [won.get(timeout=1) for _ in range(won.qsize())]
    assert len(winners) == 1
    assert sorted(p.name for p in out.iterdir()) == []  # the winner released; no guard file is left


def test_a_run_whose_claim_was_taken_writes_no_success(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "out"))
    with pytest.raises(OutputDirError, match="claim was taken .*pid 1,"), out.claimed():
        out.prepare({})
        write_claim(tmp_path / "out", 1, "intruder")
        out.finish({})
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    assert (tmp_path / "out" / "_CLAIM").exists()  # the other run's claim is not ours to remove


class FakeStore(LocalFileSystem):
    """An object store stand-in for the claim's gs:// / s3:// path: ``fakestore://b/x`` is ROOT/b/x,
    reached only through Beam's FileSystems (which finds a FileSystem subclass by its scheme)."""

    ROOT = ""
    PREFIX = "fakestore://"

    @classmethod
    def scheme(cls) -> str:
        return "fakestore"

    def _local(self, path: str) -> str:
        return os.path.join(self.ROOT, path.removeprefix(self.PREFIX))

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *paths])

    def exists(self, path: str) -> bool:
        return super().exists(self._local(path))

    def create(self, path: str, *args, **kwargs):
        return super().create(self._local(path), *args, **kwargs)

    def open(self, path: str, *args, **kwargs):
        return super().open(self._local(path), *args, **kwargs)

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            os.remove(self._local(path))

    def match(self, patterns: list[str], limits=None):
        results = super().match([self._local(p) for p in patterns], limits)
        for result in results:
            for meta in result.metadata_list:
                meta.path = self.PREFIX + os.path.relpath(meta.path, self.ROOT)
        return results


def test_object_store_claim_refuses_a_live_holder_and_is_released(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeStore, "ROOT", str(tmp_path))
    local = tmp_path / "bucket" / "out"
    local.mkdir(parents=True)
    write_claim(local, os.getpid(), "first-run")
    out = OutputDir("fakestore://bucket/out/")
    with pytest.raises(OutputDirError, match=f"pid {os.getpid()},"), out.claimed():
        pass
    assert json.loads((local / "_CLAIM").read_text())["run_id"] == "first-run"
    (local / "_CLAIM").unlink()
    with out.claimed() as mine:
        assert json.loads((local / "_CLAIM").read_text())["run_id"] == mine.run_id
    assert not (local / "_CLAIM").exists()


def test_finished_output_is_skipped_only_for_the_same_config(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    success = (out / "_SUCCESS").read_text()
    capsys.readouterr()

    assert main(["run", "--input", SMALL, "--output", str(out), "--set", "read.max_error_fraction=0.5"]) == 2
    err = capsys.readouterr().err
    assert "read.max_error_fraction" in err and "--overwrite" in err and "Traceback" not in err
    assert (out / "_SUCCESS").read_text() == success

    assert main(["run", "--input", SMALL, "--output", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (out / "_SUCCESS").read_text() == success

    assert main(["run", "--input", SMALL, "--output", str(out), "--set", "read.max_error_fraction=0.5",
                 "--overwrite"]) == 0
    info = json.loads((out / "_RUN.json").read_text())
    assert info["config"]["read"]["max_error_fraction"] == 0.5
    assert not (out / "_CLAIM").exists()


def test_overwrite_leaves_no_file_of_the_old_run(finished: Path, tmp_path: Path) -> None:
    """Clearing used to remove only top-level files, so an old run's part files outlived --overwrite."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    stray = out / "documents" / "part-00007-of-00008.parquet"
    stray.write_bytes((out / "documents").joinpath(next(iter(os.listdir(out / "documents")))).read_bytes())
    assert main(["run", "--input", SMALL, "--output", str(out), "--overwrite"]) == 0
    assert not stray.exists()


def test_finished_output_with_other_inputs_is_refused(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before = tree(out)
    assert main(["run", "--input", SMALL, OTHER, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "inputs" in err and "1 added" in err and Path(OTHER).name in err
    assert tree(out) == before


def test_finished_output_of_another_refinery_version_is_refused(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    info = json.loads((out / "_RUN.json").read_text())
    info.setdefault("fingerprint", {})["version"] = "0.0.1"
    (out / "_RUN.json").write_text(json.dumps(info))
    assert main(["run", "--input", SMALL, "--output", str(out)]) == 2
    assert "version 0.0.1" in capsys.readouterr().err


@pytest.mark.parametrize("output", ["/", "", "file:///"])
def test_root_or_empty_output_is_refused(output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # an empty output used to mean the current directory
    assert main(["run", "--input", SMALL, "--output", output]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    assert not Path("/_RUN.json").exists() and not Path("/_CLAIM").exists()


def test_git_root_of_the_working_directory_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")
    before = tree(repo)
    assert main(["run", "--input", SMALL, "--output", str(repo)]) == 2
    assert "git repository" in capsys.readouterr().err
    assert tree(repo) == before


def test_file_base_url_reads_relative_manifest_entries(tmp_path: Path) -> None:
    from pipeline.inputs import resolve_inputs

    manifest = tmp_path / "warc.paths"
    manifest.write_text(f"{Path(SMALL).name}\n{Path(OTHER).name}\n")
    base_url = WARC_DIR.as_uri() + "/"
    assert resolve_inputs([str(manifest)], base_url=base_url) == sorted([OTHER, SMALL])
    out = tmp_path / "out"
    assert main(["run", "--input", str(manifest), "--base-url", base_url, "--output", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert sorted(stats["files"]) == sorted([OTHER, SMALL]) and stats["accounting_ok"]


def test_real_concurrent_runs_keep_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two real runs into one output: the second is refused while the first runs, and the first finishes."""
    out, log_file = tmp_path / "out", tmp_path / "first.log"
    command = [sys.executable, "-m", "pipeline.cli", "run", "--input", SMALL, OTHER, "--output", str(out)]
    with log_file.open("w") as log:
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (out / "_CLAIM").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "_CLAIM").exists(), "the first run never claimed its output"
        assert main(["run", "--input", SMALL, "--output", str(out)]) == EXIT_BUSY
        assert f"pid {first.pid}" in capsys.readouterr().err
        assert first.wait(timeout=120) == 0, log_file.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (out / "_SUCCESS").exists() and not (out / "_CLAIM").exists()
