"""`refinery run` end to end on every real archive in ../shared/data/warc, through the CLI."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.document import ARROW_SCHEMA
from tests.conftest import WARC_DIR

pytestmark = pytest.mark.integration

ALL_WARCS = str(WARC_DIR / "*")


def refinery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=600)


def documents(out: Path) -> list[tuple[str, str]]:
    table = pq.read_table(out / "documents")
    return sorted(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))


def test_every_record_of_every_file_is_accounted_for(full_run: Path) -> None:
    stats = json.loads((full_run / "stats.json").read_text())
    assert stats["accounting_ok"] is True
    assert stats["totals"]["files"] == 19 and stats["totals"]["failed_files"] == 0
    files = {Path(name).name: entry for name, entry in stats["files"].items()}
    for name, entry in files.items():
        assert entry["records"] == entry["kept"] + sum(entry["dropped"].values()), name
    assert files["copycat_commoncrawl-2008_1213893279526_0.arc"]["records"] == 146
    assert files["copycat_clueweb09-sample.warc.gz"]["records"] == 24
    assert files["pywb_iana.warc.gz"]["dropped"]["read.revisit"] == 123
    assert files["whirlwind_CC-MAIN-2024-22.warc.wet.gz"]["dropped"] == {"read.not_response": 2}
    # Wayback records carry no HTTP headers; their HTML must still be found and extracted.
    wayback = files["copycat_wayback-topic-02.warc.gz"]
    not_extracted = sum(n for r, n in wayback["dropped"].items() if r.startswith(("read.", "extract.")))
    assert wayback["records"] - not_extracted >= 120


def test_funnel_names_stages_and_reasons(full_run: Path) -> None:
    stats = json.loads((full_run / "stats.json").read_text())
    stages = [s["stage"] for s in stats["funnel"]]
    assert stages == ["ReadWarc", "Extract", "UrlBlocklist", "LanguageId", "BannedWords", "GopherRepetition",
                      "LineDedup", "GopherQuality", "C4", "FineWeb", "ExactDedup", "MinHashDedup"]
    read = stats["funnel"][0]
    assert read["in"] == stats["totals"]["records"]
    assert {"read.not_response", "read.revisit", "read.not_html", "read.http_status"} <= set(read["reasons"])
    assert stats["funnel"][-1]["out"] == stats["totals"]["kept"]
    for stage in stats["funnel"]:
        assert stage["out"] == stage["in"] - sum(stage["reasons"].values())
    reasons = {r for stage in stats["funnel"] for r in stage["reasons"]}
    # Real crawls trip the language, repetition and quality rules, and hold exact duplicates
    # (the Mona Lisa page is captured twice).
    assert {"langid.wrong_language", "exact_dedup.duplicate"} <= reasons
    assert any(r.startswith("gopher_repetition.") for r in reasons)
    assert any(r.startswith("gopher_quality.") for r in reasons)


def test_documents_parquet_has_the_schema_and_real_text(full_run: Path) -> None:
    table = pq.read_table(full_run / "documents")
    assert table.schema.remove_metadata().equals(ARROW_SCHEMA)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) > 100
    rows = table.to_pylist()
    assert all(r["text"].strip() and r["warc_file"] and r["source"] == "commoncrawl" for r in rows)
    assert all(r["lang"] == "en" and r["lang_score"] >= 0.5 for r in rows)
    mona = [r for r in rows if r["url"].endswith("/wiki/Mona_Lisa")]
    assert len(mona) == 1 and "Leonardo" in mona[0]["text"]
    assert (full_run / "_SUCCESS").exists()
    rejects = pq.read_table(full_run / "rejects").to_pylist()
    assert {"Extract", "LanguageId", "GopherRepetition", "ExactDedup"} <= {r["stage"] for r in rejects}
    assert all(re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", r["reason"]) for r in rejects)


def test_complete_output_is_skipped_not_overwritten(full_run: Path) -> None:
    before = (full_run / "_SUCCESS").read_text()
    result = refinery("run", "--input", ALL_WARCS, "--output", str(full_run))
    assert result.returncode == 0, result.stderr
    assert "already complete" in result.stdout
    assert (full_run / "_SUCCESS").read_text() == before


def test_killed_run_reruns_to_the_same_documents(full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--input", ALL_WARCS, "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "_RUN.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)  # mid-extraction: the full run takes far longer than this
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists(), "the run finished before it could be killed; kill sooner"
    result = refinery("run", "--input", ALL_WARCS, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert documents(out) == documents(full_run)


def test_too_many_broken_files_fail_the_run_and_name_them(tmp_path: Path) -> None:
    data = (WARC_DIR / "resiliparse_CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "broken.warc.gz").write_bytes(data[: len(data) // 2])
    (inputs / "good.warc.gz").write_bytes(data)
    out = tmp_path / "out"
    result = refinery("run", "--input", str(inputs / "*.warc.gz"), "--output", str(out))
    assert result.returncode == 1
    assert "broken.warc.gz" in result.stderr and "max_error_fraction" in result.stderr
    assert not (out / "_SUCCESS").exists()
    stats = json.loads((out / "stats.json").read_text())
    broken = stats["files"][str(inputs / "broken.warc.gz")]
    assert broken["errors"] and broken["accounted"]
    # Within the budget the same input passes, and the records before the break went on to extraction.
    again = refinery("run", "--input", str(inputs / "*.warc.gz"), "--output", str(out),
                     "--set", "read.max_error_fraction=0.5")
    assert again.returncode == 0, again.stderr
    broken = json.loads((out / "stats.json").read_text())["files"][str(inputs / "broken.warc.gz")]
    assert broken["accounted"] and broken["records"] > sum(n for r, n in broken["dropped"].items() if r.startswith("read."))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--input", "/nonexistent/*.warc.gz", "--output", "OUT"], "no input file matches"),
        (["run", "--input", ALL_WARCS, "--output", "OUT", "--set", "extract.no_such_key=1"],
         "unknown key 'extract.no_such_key'"),
        (["run", "--input", ALL_WARCS, "--output", "OUT", "--set", "extract.engine=lynx"],
         "--set extract.engine=lynx: 'lynx' is not one of"),
        (["run", "--input", ALL_WARCS, "--output", "OUT", "--config", "/nonexistent.yaml"], "config file not found"),
        (["run", "--input", ALL_WARCS, "--output", "OUT", "--runner", "NoSuchRunner"], "NoSuchRunner"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = refinery(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = refinery("run", "--input", str(WARC_DIR / "whirlwind_CC-MAIN-2024-22.warc.gz"), "--output", str(tmp_path))
    assert result.returncode == 2 and "not written by refinery" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
