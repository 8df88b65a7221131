"""`refinery estimate`: the projection arithmetic on fixed figures, the CPU meter, the user errors,
and one real estimate over a manifest of shared WARCs (then `refinery report` on one of its runs)."""

from __future__ import annotations

import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cpu_time import ProcessTreeCpu, runs_locally
from pipeline.estimate import (
    SHUFFLE_BYTES_PER_DOCUMENT,
    EstimateError,
    SampleFigures,
    Spread,
    dump_bytes,
    project,
    project_all,
    projection_row,
    rate_row,
    sample_evenly,
    table,
)
from tests.conftest import SHARED_DATA

GB = 1e9


def figures(name: str, gb: float, cpu: float, records: int, documents: int, *, engine: str = "trafilatura",
            tokens: int | None = None, shuffle_bytes: int | None = None) -> SampleFigures:
    return SampleFigures(file=name, engine=engine, runner="DirectRunner", input_bytes=int(gb * GB),
                         cpu_seconds=cpu, wall_seconds=cpu * 1.1, records=records, documents=documents,
                         text_bytes=int(gb * 20e6), output_bytes=int(gb * 50e6), tokens=tokens,
                         shuffle_documents=int(documents * 1.2), shuffle_bytes=shuffle_bytes)


# -- the projection ---------------------------------------------------------------------------------


def test_sample_is_spread_over_the_list_and_deterministic() -> None:
    files = [f"f{i:02d}" for i in range(10)]
    assert sample_evenly(files, 3) == ["f01", "f05", "f08"]
    assert sample_evenly(files, 1) == ["f05"]
    assert sample_evenly(files, 10) == files and sample_evenly(files, 50) == files
    with pytest.raises(EstimateError):
        sample_evenly(files, 0)


def test_dump_size_is_file_count_times_mean_sample_size() -> None:
    assert dump_bytes([1_000, 2_000, 3_000], 90_000) == 90_000 * 2_000


def test_projection_scales_pooled_rates_and_spreads_per_file() -> None:
    # A: 1 GB at 1000 CPU-s/GB; B: 3 GB at 1333.3 CPU-s/GB. The dump: 100 GB.
    a = figures("a", 1, 1000, records=30_000, documents=5_000)
    b = figures("b", 3, 4000, records=90_000, documents=15_000)
    p = project([a, b], 100 * GB, price_per_core_hour=0.1, bytes_per_token=4.0)
    # Pooled: 5000 CPU-s for 4 GB, times 25.
    assert p.core_hours.value == pytest.approx(5000 * 25 / 3600)
    assert p.core_hours.low == pytest.approx(1000 * 100 / 3600)
    assert p.core_hours.high == pytest.approx(4000 / 3 * 100 / 3600)
    assert p.cost == Spread(pytest.approx(p.core_hours.value * 0.1), pytest.approx(p.core_hours.low * 0.1),
                            pytest.approx(p.core_hours.high * 0.1))
    assert p.documents == pytest.approx(20_000 * 25)
    assert p.tokens == pytest.approx(80e6 / 4.0 * 25) and not p.tokens_measured
    assert p.output_bytes == pytest.approx(200e6 * 25)
    assert p.shuffle_bytes == pytest.approx(24_000 * SHUFFLE_BYTES_PER_DOCUMENT * 25) and not p.shuffle_measured
    assert p.cpu_seconds_per_gb.value == pytest.approx(statistics.median([1000, 4000 / 3]))
    assert (p.cpu_seconds_per_gb.low, p.cpu_seconds_per_gb.high) == (pytest.approx(1000), pytest.approx(4000 / 3))
    assert p.records_per_core_second.value == pytest.approx((30 + 22.5) / 2)
    assert p.sample_files == 2 and p.sample_bytes == 4 * GB and p.sample_cpu_seconds == 5000


def test_measured_tokens_and_shuffle_are_used_when_the_run_has_them() -> None:
    a = figures("a", 1, 1000, records=10, documents=5, tokens=7_000, shuffle_bytes=3_000)
    p = project([a], 10 * GB)
    assert p.tokens == pytest.approx(70_000) and p.tokens_measured
    assert p.shuffle_bytes == pytest.approx(30_000) and p.shuffle_measured
    assert not projection_row(p)[5].endswith("*") and not projection_row(p)[7].endswith("*")


def test_one_projection_per_engine_and_a_table_with_its_assumptions() -> None:
    samples = [figures("a", 1, 1000, 10, 5), figures("b", 1, 3000, 10, 5),
               figures("a", 1, 100, 10, 4, engine="resiliparse"), figures("b", 1, 200, 10, 4, engine="resiliparse")]
    projections = project_all(samples, 1000 * GB, price_per_core_hour=0.05)
    assert [p.engine for p in projections] == ["trafilatura", "resiliparse"]
    assert projections[0].core_hours.value == pytest.approx(2000 * 1000 / 3600)
    assert projections[1].documents == pytest.approx(4 * 1000)
    row = projection_row(projections[0])
    assert row[:3] == ["trafilatura", "DirectRunner", "556 (278-833)"]
    assert row[3] == "27.8 (13.9-41.7)"  # USD at 0.05 per core-hour
    assert rate_row(projections[1])[4] == "150 (100-200)"
    result = {"dump": {"total_files": 1000, "mean_file_bytes": GB, "total_bytes": 1000 * GB, "sample_files": 2},
              "price_per_core_hour": 0.05, "bytes_per_token": 4.2, "caveats": []}
    text = table(result, projections)
    assert "1,000 files x 1 GB" in text and "= 1 TB" in text
    assert "0.05 USD per core-hour" in text
    assert "4.2 bytes per token (assumed" in text and "3.6 kB per document entering dedup" in text


def test_a_projection_needs_samples() -> None:
    with pytest.raises(EstimateError):
        project([], GB)


# -- measuring ----------------------------------------------------------------------------------------


def test_cpu_meter_counts_a_child_that_is_still_alive() -> None:
    """The extraction child may outlive the pipeline; its CPU must be counted all the same."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\ntime.sleep(30)"
    with ProcessTreeCpu() as cpu:
        child = subprocess.Popen([sys.executable, "-c", burn])
        try:
            deadline = time.monotonic() + 20
            while cpu.read() < 0.4 and time.monotonic() < deadline:
                time.sleep(0.1)
            seen = cpu.read()
        finally:
            child.kill()
            child.wait()
    assert seen >= 0.4
    assert cpu.seconds >= 0.4


def test_only_runners_on_this_machine_are_measured() -> None:
    assert runs_locally("DirectRunner", []) and runs_locally(None, [])
    assert runs_locally("pipeline.dask_runner.DaskRunner", ["--dask_npartitions=4"])
    assert not runs_locally("pipeline.dask_runner.DaskRunner", ["--dask_client_address=tcp://h:8786"])
    assert not runs_locally("DataflowRunner", [])


@pytest.mark.parametrize("args, message", [
    (["--engines", "lynx"], "extract.engine"),
    (["--runner", "DataflowRunner"], "estimate measures CPU on this machine"),
    (["--sample", "0"], "--sample must be at least 1"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               args: list[str], message: str) -> None:
    warc = str(SHARED_DATA / "warc" / "dolma_wget_sample-0000.warc.gz")
    assert main(["estimate", "--input", warc, "--output", str(tmp_path / "w"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("refinery estimate: error:") and message in err and "\n" not in err


def test_a_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--input", str(tmp_path / "nothing*.warc.gz"), "--output", str(tmp_path / "w")]) == 2
    assert "no input file matches" in capsys.readouterr().err


# -- a real estimate ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_estimate_on_a_manifest_of_shared_warcs(tmp_path: Path) -> None:
    """Manifest entries are relative, as in CommonCrawl's warc.paths.gz; --base-url is the local
    data directory (a plain path: Beam cannot open ``file://`` URLs)."""
    entries = ["warc/dolma_wget_sample-0000.warc.gz", "warc/dolma_wget_sample-0001.warc.gz",
               "warc/ukwa_wikipedia-mona-lisa.warc.gz"]
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress(("\n".join(entries) + "\n").encode()))
    work = tmp_path / "estimate"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "estimate", "--input", str(manifest), "--base-url", str(SHARED_DATA),
         "--output", str(work), "--sample", "2", "--total-files", "90000", "--price-per-core-hour", "0.04"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "projection for the whole dump" in out and "measured rates (per sample file)" in out
    assert "0.04 USD per core-hour" in out and "90,000 files" in out
    assert any(line.startswith("trafilatura  DirectRunner") for line in out.splitlines())

    result = json.loads((work / "estimate.json").read_text())
    sizes = [(SHARED_DATA / e).stat().st_size for e in (entries[0], entries[2])]  # the 1st and 3rd of 3
    assert result["dump"] == {"total_files": 90_000, "listed_files": 3, "sample_files": 2,
                              "mean_file_bytes": pytest.approx(statistics.fmean(sizes)),
                              "total_bytes": pytest.approx(90_000 * statistics.fmean(sizes))}
    [p] = result["projections"]
    assert p["engine"] == "trafilatura" and p["runner"] == "DirectRunner"
    samples = p["samples"]
    assert [Path(s["file"]).name for s in samples] == ["dolma_wget_sample-0000.warc.gz",
                                                       "ukwa_wikipedia-mona-lisa.warc.gz"]
    assert all(s["cpu_seconds"] > 0.5 and s["records"] > 0 for s in samples)
    assert [s["records"] for s in samples] == [48, 82]
    scale = result["dump"]["total_bytes"] / sum(sizes)
    assert p["documents"] == pytest.approx(sum(s["documents"] for s in samples) * scale)
    assert p["core_hours"]["value"] == pytest.approx(sum(s["cpu_seconds"] for s in samples) * scale / 3600)
    assert p["core_hours"]["low"] <= p["core_hours"]["value"] <= p["core_hours"]["high"]
    assert p["cost"]["value"] == pytest.approx(p["core_hours"]["value"] * 0.04)
    assert p["tokens"] > p["documents"] > 0 and p["output_bytes"] > 0

    # Each sample run is a complete run whose stats.json has the figures the report's Cost table uses.
    run_dir = work / "trafilatura" / "00-dolma_wget_sample-0000.warc.gz"
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["run"]["input_bytes"] == sizes[0] and stats["run"]["cpu_seconds"] == samples[0]["cpu_seconds"]
    from pipeline.report import report

    page = report([run_dir], tmp_path / "report")
    cost = json.loads(page.with_name("report.json").read_text())["runs"][0]["cost"]
    assert cost["columns"][:3] == ["engine", "runner", "core-hours (low-high)"]
    assert cost["row"][:2] == ["trafilatura", "DirectRunner"]
    assert cost["figures"]["documents"] == stats["totals"]["kept"]
    html = page.read_text()
    assert 'id="cost-table-0"' in html and "0.05 USD per core-hour" in html
