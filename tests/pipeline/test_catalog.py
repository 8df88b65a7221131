"""The sources catalog: runs under sources/<source>/<run-id>/, the latest published atomically,
a malformed catalog refused in one line, and the recipe's weighted sources all required."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import catalog
from pipeline.catalog import CatalogError, for_recipe, latest, latest_all, main, publish
from pipeline.mix import DEFAULT_RECIPE, load_recipe


def finished_run(root: Path, source: str, run_id: str, kept: int = 3) -> Path:
    path = catalog.run_dir(root, source, run_id)
    path.mkdir(parents=True)
    (path / "stats.json").write_text(json.dumps({"totals": {"kept": kept}}))
    (path / "_SUCCESS").write_text("")
    return path


def test_publish_points_latest_at_a_finished_run_and_keeps_the_history(tmp_path: Path) -> None:
    first = finished_run(tmp_path, "wikipedia", "r1")
    found, changed = publish(tmp_path, "wikipedia", "r1")
    assert changed and found.path == str(first) and found.documents == 3
    stamp = catalog.catalog_path(tmp_path, "wikipedia").stat().st_mtime_ns
    assert publish(tmp_path, "wikipedia", "r1")[1] is False  # already latest: the file is not rewritten
    assert catalog.catalog_path(tmp_path, "wikipedia").stat().st_mtime_ns == stamp
    finished_run(tmp_path, "wikipedia", "r2", kept=5)
    publish(tmp_path, "wikipedia", "r2")
    assert latest(tmp_path, "wikipedia").run_id == "r2"
    publish(tmp_path, "wikipedia", "r1")  # a rollback is publishing an older run again
    data = json.loads(catalog.catalog_path(tmp_path, "wikipedia").read_text())
    assert data["latest"] == "r1" and [r["run_id"] for r in data["runs"]] == ["r2", "r1"]
    assert not list(catalog.source_dir(tmp_path, "wikipedia").glob("*.tmp"))


def test_an_unfinished_run_or_a_bad_name_is_refused_and_the_catalog_is_unchanged(tmp_path: Path) -> None:
    finished_run(tmp_path, "c4", "r1")
    publish(tmp_path, "c4", "r1")
    before = catalog.catalog_path(tmp_path, "c4").read_bytes()
    unfinished = catalog.run_dir(tmp_path, "c4", "r2")
    unfinished.mkdir()
    with pytest.raises(CatalogError, match=r"r2: not a finished run \(no _SUCCESS\)"):
        publish(tmp_path, "c4", "r2")
    for source, run_id in [("../c4", "r1"), ("C4", "r1"), ("c4", "../r1"), ("a/b/c", "r1")]:
        with pytest.raises(CatalogError):
            publish(tmp_path, source, run_id)
    assert catalog.catalog_path(tmp_path, "c4").read_bytes() == before


@pytest.mark.parametrize("body", ["{not json", '{"format": "other"}', "[]",
                                  '{"format": "refinery-catalog/1", "source": "c4", "latest": "x", "runs": []}'])
def test_a_malformed_catalog_is_one_line_naming_the_file(tmp_path: Path, body: str, capsys) -> None:
    finished_run(tmp_path, "c4", "r1")
    path = catalog.catalog_path(tmp_path, "c4")
    path.write_text(body)
    with pytest.raises(CatalogError, match="malformed catalog") as info:
        latest(tmp_path, "c4")
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert main(["publish", "--root", str(tmp_path), "--source", "c4", "--run-id", "r1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "malformed catalog" in err
    assert path.read_text() == body  # publishing over a malformed catalog changes nothing


def test_the_recipe_needs_every_weighted_source_and_sub_sources_count_for_their_key(tmp_path: Path) -> None:
    weights = load_recipe(DEFAULT_RECIPE).weights
    for source in ["commoncrawl/CC-MAIN-2024-22", "c4", "github", "wikipedia", "arxiv", "stackexchange", "reddit"]:
        finished_run(tmp_path, source, "r1")
        publish(tmp_path, source, "r1")
    assert set(latest_all(tmp_path)) >= {"commoncrawl/CC-MAIN-2024-22", "reddit"}
    with pytest.raises(CatalogError, match=r"source 'books' has weight 0.045 in .*llama1.yaml"):
        for_recipe(tmp_path, weights, str(DEFAULT_RECIPE))
    chosen = for_recipe(tmp_path, {**weights, "books": 0.0}, "recipe")  # weight 0 needs nothing
    assert "reddit" not in chosen and "commoncrawl/CC-MAIN-2024-22" in chosen


def test_cli_latest_prints_json_and_names_a_missing_source(tmp_path: Path, capsys) -> None:
    path = finished_run(tmp_path, "github", "r7")
    assert main(["publish", "--root", str(tmp_path), "--source", "github", "--run-id", "r7"]) == 0
    capsys.readouterr()
    assert main(["latest", "--root", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["github"]["path"] == str(path)
    assert main(["latest", "--root", str(tmp_path), "--source", "books"]) == 2
    assert "source 'books': nothing published" in capsys.readouterr().err
    assert main(["latest", "--root", str(tmp_path), "--recipe", str(DEFAULT_RECIPE)]) == 2
    assert "source 'commoncrawl' has weight 0.67" in capsys.readouterr().err
