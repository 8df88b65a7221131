"""Shared test fixtures: where the real data lives, and one full pipeline run reused by many tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
WARC_DIR = SHARED_DATA / "warc"


def pytest_configure(config: pytest.Config) -> None:
    if not WARC_DIR.is_dir():
        raise pytest.UsageError(f"real test data not found at {SHARED_DATA}: check out ../shared beside the repo")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`refinery run` with the default web config over every shared WARC/ARC file, once per session."""
    from pipeline.cli import main

    out = tmp_path_factory.mktemp("run") / "out"
    assert main(["run", "--input", str(WARC_DIR / "*"), "--output", str(out)]) == 0
    return out
