"""ReadGitHub on a fixture repository (as a folder and as a tarball) and on JSONL rows."""

from __future__ import annotations

import tarfile

import pytest

from pipeline.sources.github import GitHubOptions, permitted_license, read_github
from tests.pipeline.sources.harness import FIXTURES, run_reader

REPO = FIXTURES / "github" / "tidepool"
ROWS = FIXTURES / "github" / "rows.jsonl"
TREE_SKIPS = {"github.not_code": 3, "github.binary": 1, "github.license_not_permissive": 1}


def test_folder_applies_license_rules_and_headers(tmp_path):
    output = run_reader(read_github(GitHubOptions()), [str(REPO)], tmp_path)
    output.check_accounting()
    assert sorted(output.by_id()) == ["github:tidepool:src/gauge.go", "github:tidepool:src/tides.py"]
    assert output.drop_reasons() == {"github:tidepool:src/bundle.min.js": "code_files.max_line_length",
                                     "github:tidepool:src/table.py": "code_files.alnum_fraction"}
    assert output.skipped() == TREE_SKIPS  # LICENSE, README.md, COPYING; logo.c; the GPL vendor/ file
    tides = output.by_id()["github:tidepool:src/tides.py"]
    assert tides.text.startswith('#!/usr/bin/env python3\n"""Predict')
    assert "Copyright" not in tides.text and "SPDX" not in tides.text
    assert tides.meta == {"repo": "tidepool", "path": "src/tides.py", "license": "MIT",
                          "programming_language": "python"}
    assert output.by_id()["github:tidepool:src/gauge.go"].text.startswith("package gauge")


def test_tarball_gives_the_same_documents_as_the_folder(tmp_path):
    tarball = tmp_path / "tidepool.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        # GitHub's archives wrap the tree in one folder; LICENSE comes last here, after the code.
        for path in sorted(REPO.rglob("*"), key=lambda p: p.name == "LICENSE"):
            if path.is_file():
                tar.add(path, arcname=f"tidepool-main/{path.relative_to(REPO)}")
    folder = run_reader(read_github(GitHubOptions()), [str(REPO)], tmp_path / "folder")
    packed = run_reader(read_github(GitHubOptions()), [str(tarball)], tmp_path / "tar")
    packed.check_accounting()
    assert {d.id: d.text for d in packed.kept} == {d.id: d.text for d in folder.kept}
    assert packed.skipped() == TREE_SKIPS


def test_declared_license_covers_a_tree_without_license_file(tmp_path):
    bare = tmp_path / "bare"
    (bare / "lib").mkdir(parents=True)
    (bare / "lib" / "knots.py").write_text("def knots(mps):\n    return mps * 1.943844\n")
    unlicensed = run_reader(read_github(GitHubOptions()), [str(bare)], tmp_path / "a")
    assert unlicensed.kept == [] and unlicensed.skipped() == {"github.no_license": 1}
    declared = run_reader(read_github(GitHubOptions(license="BSD-3-Clause", repo="sea/knots")), [str(bare)],
                          tmp_path / "b")
    assert [d.id for d in declared.kept] == ["github:sea/knots:lib/knots.py"]
    assert declared.kept[0].url == "https://github.com/sea/knots/blob/HEAD/lib/knots.py"


def test_jsonl_rows(tmp_path):
    output = run_reader(read_github(GitHubOptions()), [str(ROWS)], tmp_path)
    output.check_accounting()
    assert output.records() == 8
    kept = output.by_id()
    assert sorted(kept) == ["github:harbour/fog:bell.py", "github:harbour/lights:beam.rs",
                            "github:harbour/lights:lamp.rs"]
    assert kept["github:harbour/lights:lamp.rs"].text.startswith("/// Seconds a lighthouse")
    assert kept["github:harbour/lights:beam.rs"].meta["license"] == "MIT AND Apache-2.0"
    assert kept["github:harbour/fog:bell.py"].meta["license"] == "MIT"
    assert output.skipped() == {"github.license_not_permissive": 1, "github.not_code": 1,
                                "github.bad_record": 2, "github.no_license": 1}


@pytest.mark.parametrize(("value", "expected"), [
    ("MIT", "MIT"), ("mit", "MIT"), ("MIT OR GPL-3.0", "MIT"), ("GPL-3.0 OR Apache-2.0", "Apache-2.0"),
    ("MIT AND GPL-3.0", None), (["MIT", "BSD-3-Clause"], "MIT AND BSD-3-Clause"), (["MIT", "GPL-2.0"], None),
    ("", None), (None, None), ("Apache-2.0 WITH LLVM-exception", None),
])
def test_permitted_license(value, expected):
    allowed = GitHubOptions().licenses
    assert permitted_license(value, allowed) == expected
