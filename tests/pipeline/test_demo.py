"""`refinery demo` on a fresh directory ends with documents and stats, with no network."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main

pytestmark = pytest.mark.integration


def test_demo_runs_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "documents" in printed and "stats" in printed
    stats = json.loads((tmp_path / "curated" / "stats.json").read_text())
    assert stats["accounting_ok"]
    reasons = stats["funnel"][0]["reasons"]
    assert {"read.not_response", "read.not_html", "read.http_status", "read.revisit"} <= set(reasons)
    docs = pq.read_table(tmp_path / "curated" / "documents").to_pylist()
    assert len(docs) >= 60
    cafe = [d for d in docs if d["url"] == "https://cafe.example/"]
    assert cafe and "café" in cafe[0]["text"], "a latin-1 page must decode by its declared charset"
