"""Issue 17, item 8: a mistake is one line naming the file or flag at fault, with the right exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline import cli
from pipeline.config import DEFAULT_CONFIG
from pipeline.verify import main as verify_main
from tests.conftest import WARC_DIR
from trainer.shards import ShardWriter, write_manifest


def refinery_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    missing, out = tmp_path / "missing.warc.gz", tmp_path / "out"
    code = cli.main(["run", "--input", str(missing), "--output", str(out), *args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("source: web\nread:\n  max_error_fraction: [0.1\n")
    code, err = refinery_run(tmp_path, capsys, "--config", str(config))
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"refinery run: error: {config}:4:1: YAML syntax error in config: "
                             "expected ',' or ']'")
    assert "(while parsing a flow sequence at 3:23)" in err[0]


@pytest.mark.parametrize(("override", "problem"), [
    ("extract.timeout_seconds=abc", "expected a number, got 'abc'"),
    ("foo.bar=1", "unknown key 'foo'"),
    ("stages=[url_blocklist, no_such_stage]", "unknown stage 'no_such_stage'"),
    ("read.max_error_fraction=2", "read.max_error_fraction must be within [0, 1]"),
])
def test_a_bad_set_names_the_flag_not_the_default_config(
        override: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = refinery_run(tmp_path, capsys, "--set", "extract.engine=resiliparse", "--set", override)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"refinery run: error: --set {override}: {problem}"), err[0]
    assert str(DEFAULT_CONFIG) not in err[0]


def test_the_file_or_the_flag_is_named_whichever_is_wrong(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("read:\n  max_eror_fraction: 0.1\n")
    code, err = refinery_run(tmp_path, capsys, "--config", str(config), "--set", "read.split_bytes=0")
    assert code == 2
    assert err == [f"refinery run: error: {config}: unknown key 'read.max_eror_fraction' "
                   "(known here: max_error_fraction, max_payload_bytes, split_bytes)"]
    config.write_text("read:\n  max_error_fraction: 0.1\n")
    code, err = refinery_run(tmp_path, capsys, "--config", str(config), "--set", "read.split_bytes=-1")
    assert code == 2
    assert err == ["refinery run: error: --set read.split_bytes=-1: read.split_bytes must not be negative"]


def test_verify_says_the_token_count_differs_not_the_bytes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = tmp_path / "shards"
    meta = {"source": "web", "vocab_size": 1000, "eos_id": 0, "bos_id": None, "tokenizer_sha256": "0" * 64}
    with ShardWriter(shards, target_shard_tokens=10_000, name_prefix="web", **meta) as writer:
        for doc in np.random.default_rng(0).integers(1, 1000, size=(20, 50)):
            writer.add(doc)
    write_manifest(shards, writer.close(), **meta)
    manifest = json.loads((shards / "manifest.json").read_text())
    shard = manifest["shards"][0]
    tokens, size = shard["tokens"], shard["bytes"]
    assert size == 2 * tokens  # uint16
    shard["tokens"] -= 1  # an edited count, kept consistent with the total so that only the shard is wrong
    manifest["tokens"] -= 1
    (shards / "manifest.json").write_text(json.dumps(manifest))

    assert verify_main([str(shards), "--no-checksums"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"FAIL {shards / shard['bin']}: manifest says {tokens - 1} tokens, "
                   f"but its {size} bytes hold {tokens} uint16 tokens"]


def test_a_file_of_random_bytes_is_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "random.warc.gz"
    junk.write_bytes(os.urandom(50_000))
    good = WARC_DIR / "whirlwind_CC-MAIN-2024-22.warc.gz"
    out = tmp_path / "out"
    code = cli.main(["run", "--input", str(junk), str(good), "--output", str(out), "--set", "stages=[]"])
    err = capsys.readouterr().err
    # One of two files broken is over read.max_error_fraction (0.05): outputs written, the run failed.
    assert code == 1
    assert "1 of 2 input files could not be read" in err and str(junk) in err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["totals"]["failed_files"] == 1
    entry = stats["files"][str(junk)]
    assert entry["errors"] == [
        {"offset": 0, "message": f"{junk} at offset 0: no WARC record in its 50000 bytes"}
    ]
    # The bytes are still accounted for, as one corrupt record.
    assert entry["records"] == 1 and entry["dropped"] == {"read.corrupt_record": 1}
    assert stats["accounting_ok"] is True
    assert "errors" not in stats["files"][str(good)]
