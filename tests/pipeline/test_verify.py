"""refinery verify on real shards: a flipped byte and a missing file are each named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.mix import mix
from pipeline.verify import main, verify
from tests.trainer.conftest import train_tokenizer, wiki_articles, write_source


@pytest.fixture()
def shard_dir(tmp_path: Path) -> Path:
    texts = wiki_articles()[:20]
    tok = tmp_path / "tokenizer.model"
    sp = train_tokenizer(texts, tok)
    out = tmp_path / "run" / "shards"
    write_source(out, "wikipedia", sp.encode(texts), tokenizer_sha256=hashlib.sha256(tok.read_bytes()).hexdigest(),
                 eos_id=sp.eos_id(), target_shard_tokens=20_000)
    (out / "tokenizer.model").write_bytes(tok.read_bytes())
    return out


def test_sound_shards_pass(shard_dir: Path, capsys) -> None:
    assert verify(shard_dir) == []
    assert main([str(shard_dir.parent)]) == 0  # a run dir: finds shards/manifest.json
    assert "ok: 1 manifest(s)" in capsys.readouterr().out


def test_a_flipped_byte_is_caught_and_named(shard_dir: Path, capsys) -> None:
    target = sorted(shard_dir.glob("*.bin"))[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    problems = verify(shard_dir)
    assert [p.path for p in problems] == [target] and "sha256" in problems[0].message
    assert main([str(shard_dir)]) == 1
    assert f"FAIL {target}" in capsys.readouterr().out


def test_a_manifest_naming_a_missing_file_is_caught(shard_dir: Path, capsys) -> None:
    manifest = json.loads((shard_dir / "manifest.json").read_text())
    missing = manifest["shards"][0]["bin"]
    (shard_dir / missing).unlink()
    assert main([str(shard_dir)]) == 1
    out = capsys.readouterr().out
    assert "manifest.json" in out and missing in out and "does not exist" in out


def test_mixture_dirs_check_the_manifests_they_name(shard_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("token_budget: 100000\nweights: {wikipedia: 1.0}\n")
    mix(recipe, {"wikipedia": shard_dir}, tmp_path / "mixture")
    assert verify(tmp_path / "mixture") == []
    idx = sorted(shard_dir.glob("*.idx"))[0]
    idx.write_bytes(idx.read_bytes()[:-8])
    assert [p.path for p in verify(tmp_path / "mixture")] == [idx]


def test_nothing_to_verify_is_a_failure_and_a_missing_path_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 1
    assert "no manifest.json" in capsys.readouterr().out
    assert main([str(tmp_path / "absent")]) == 2
    assert "absent" in capsys.readouterr().err
