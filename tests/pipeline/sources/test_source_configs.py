"""Every configs/sources/*.yaml loads strictly and builds its registered reader."""

from __future__ import annotations

import pytest

from filters.config import ConfigError
from pipeline.config import load_config
from pipeline.readers import build_reader, registered_readers
from pipeline.sources import SOURCE_READERS
from tests.pipeline.sources.harness import REPO

CONFIGS = sorted((REPO / "configs" / "sources").glob("*.yaml"))


def test_every_source_has_a_config():
    assert {p.stem for p in CONFIGS} == set(SOURCE_READERS)
    assert set(SOURCE_READERS) <= set(registered_readers())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_builds_its_reader(path):
    cfg = load_config(path)
    assert cfg.input.format == path.stem
    reader, stages = build_reader(cfg, where=str(path))
    assert stages == SOURCE_READERS[path.stem].stages
    assert reader is not None


def test_unknown_reader_options_fail_with_the_key_named():
    cfg = load_config(REPO / "configs" / "sources" / "wikipedia.yaml", {"input.options.lang": "en"})
    with pytest.raises(ConfigError, match="input.options.*lang"):
        build_reader(cfg)


def test_recipes_follow_llama():
    stages = {p.stem: load_config(p).stages for p in CONFIGS}
    assert stages["github"] == ("exact_dedup",)
    assert stages["gutenberg"] == ("minhash_dedup",) and load_config(REPO / "configs/sources/gutenberg.yaml").dedup.threshold == 0.9
    assert "c4" in stages["c4"]
