"""Shard files, manifests and mixture.json, on shards built from real text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.conftest import VOCAB_SIZE, Corpus, write_source
from trainer.mixture import MixtureError, TokenizerRef, load_mixture, source_from_manifest, write_mixture
from trainer.shards import (
    ShardError,
    ShardReader,
    ShardWriter,
    read_manifest,
    token_dtype,
    verify,
    write_manifest,
)


def test_round_trip_documents_offsets_and_counts(corpus: Corpus) -> None:
    manifest = read_manifest(corpus.root / "shards" / "wiki")
    docs = corpus.documents["wiki"]
    assert len(manifest.shards) > 1, "60k-token target should roll over on ~400k tokens"
    assert manifest.documents == len(docs)
    assert manifest.tokens == sum(len(d) + 1 for d in docs)  # + EOS, no BOS configured
    assert manifest.dtype == "uint16"
    read_back = []
    for info in manifest.shards:
        reader = ShardReader(manifest, info)
        assert reader.offsets[0] == 0 and reader.offsets[-1] == info.tokens
        read_back += [reader.document(i) for i in range(info.documents)]
    for original, stored in zip(docs, read_back, strict=True):
        assert stored[-1] == 1  # EOS id of the fixture tokenizer
        assert stored[:-1].tolist() == original


def test_bos_is_written_when_configured_and_dtype_widens_past_65536(corpus: Corpus, tmp_path: Path) -> None:
    docs = corpus.documents["books"][:5]
    write_source(tmp_path, "b", docs, tokenizer_sha256="x", eos_id=1, bos_id=2)
    manifest = read_manifest(tmp_path)
    doc0 = ShardReader(manifest, manifest.shards[0]).document(0)
    assert doc0[0] == 2 and doc0[-1] == 1 and doc0[1:-1].tolist() == docs[0]
    assert token_dtype(65536) == np.dtype("<u2") and token_dtype(65537) == np.dtype("<u4")


def test_same_input_gives_byte_identical_shards(corpus: Corpus, tmp_path: Path) -> None:
    docs = corpus.documents["books"]
    for run in ("a", "b"):
        write_source(tmp_path / run, "books", docs, tokenizer_sha256=corpus.tokenizer_sha256, eos_id=1)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_verify_catches_a_flipped_byte_and_names_the_file(corpus: Corpus, tmp_path: Path) -> None:
    shard_dir = tmp_path / "wiki"
    shutil.copytree(corpus.root / "shards" / "wiki", shard_dir)
    assert verify(shard_dir) == []
    target = shard_dir / read_manifest(shard_dir).shards[1].bin
    data = bytearray(target.read_bytes())
    data[1001] ^= 0x01
    target.write_bytes(bytes(data))
    problems = verify(shard_dir)
    assert [p.path for p in problems] == [target]
    assert "sha256" in problems[0].message
    assert verify(shard_dir, checksums=False) == []  # sizes and offsets are still fine


def test_verify_reports_truncation_and_bad_offsets(corpus: Corpus, tmp_path: Path) -> None:
    shard_dir = tmp_path / "wiki"
    shutil.copytree(corpus.root / "shards" / "wiki", shard_dir)
    infos = read_manifest(shard_dir).shards
    bin0 = shard_dir / infos[0].bin
    bin0.write_bytes(bin0.read_bytes()[:-2])
    idx1 = shard_dir / infos[1].idx
    offsets = np.fromfile(idx1, dtype="<u8")
    offsets[3], offsets[4] = offsets[4], offsets[3]
    offsets.tofile(idx1)
    problems = {p.path: p.message for p in verify(shard_dir, checksums=False)}
    assert "bytes on disk" in problems[bin0]
    assert "strictly increasing" in problems[idx1]


def test_manifest_naming_a_missing_file_or_malformed_is_a_clear_error(corpus: Corpus, tmp_path: Path) -> None:
    shard_dir = tmp_path / "wiki"
    shutil.copytree(corpus.root / "shards" / "wiki", shard_dir)
    missing = read_manifest(shard_dir).shards[2].bin
    (shard_dir / missing).unlink()
    with pytest.raises(ShardError, match=missing):
        read_manifest(shard_dir)
    assert missing in str(verify(shard_dir)[0])
    manifest = shard_dir / "manifest.json"
    raw = json.loads(manifest.read_text())
    del raw["shards"][0]["sha256"]
    manifest.write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=r"manifest.json: missing key 'shards\[0\].sha256'"):
        read_manifest(shard_dir)
    manifest.write_text("{not json")
    with pytest.raises(ShardError, match="manifest.json: cannot read"):
        read_manifest(shard_dir)


def test_crash_mid_shard_leaves_no_complete_looking_file(corpus: Corpus, tmp_path: Path) -> None:
    writer = ShardWriter(
        tmp_path, source="s", vocab_size=VOCAB_SIZE, eos_id=1, bos_id=None,
        tokenizer_sha256="x", target_shard_tokens=10**9, name_prefix="s",
    )
    with pytest.raises(RuntimeError, match="worker died"), writer:
        writer.add(corpus.documents["wiki"][0])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s-00000.bin.tmp", "s-00000.idx.tmp"]
        raise RuntimeError("worker died")
    assert list(tmp_path.iterdir()) == []


def test_parallel_writers_share_one_manifest(corpus: Corpus, tmp_path: Path) -> None:
    docs = corpus.documents["books"]
    infos = []
    for worker, part in (("w1", docs[1::2]), ("w0", docs[::2])):  # finish out of order
        with ShardWriter(
            tmp_path, source="books", vocab_size=VOCAB_SIZE, eos_id=1, bos_id=None,
            tokenizer_sha256="x", target_shard_tokens=50_000, name_prefix=worker,
        ) as writer:
            for doc in part:
                writer.add(doc)
        infos += writer.close()
    header = dict(source="books", vocab_size=VOCAB_SIZE, eos_id=1, bos_id=None, tokenizer_sha256="x")
    write_manifest(tmp_path, infos, **header)
    manifest = read_manifest(tmp_path)
    assert [s.bin for s in manifest.shards] == sorted(s.bin for s in infos)
    assert manifest.documents == len(docs)
    assert verify(tmp_path) == []
    with pytest.raises(ShardError, match="listed twice"):
        write_manifest(tmp_path, infos + infos[:1], **header)


def test_writer_rejects_ids_outside_the_vocabulary(tmp_path: Path) -> None:
    writer = ShardWriter(
        tmp_path, source="s", vocab_size=100, eos_id=1, bos_id=None,
        tokenizer_sha256="x", target_shard_tokens=1000, name_prefix="s",
    )
    with pytest.raises(ValueError, match="token id 100 is outside"):
        writer.add([5, 100])


def test_mixture_loads_and_resolves_relative_manifests(corpus: Corpus) -> None:
    mixture = load_mixture(corpus.mixture)
    assert [s.name for s in mixture.sources] == ["wiki", "books"]
    assert mixture.sources[0].manifest == corpus.root / "shards" / "wiki" / "manifest.json"
    raw = json.loads(corpus.mixture.read_text())
    assert raw["sources"][0]["manifest"] == "shards/wiki/manifest.json"
    assert mixture.tokenizer_path == corpus.tokenizer


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["sources"][1].update(weight=0.31), r"'sources\[\*\]\.weight' sums to"),
        (lambda m: m["sources"][1].update(weight=-0.3), r"sources\[1\] \(books\)\.weight must be a non-neg"),
        (
            lambda m: m["sources"][0].update(manifest="nowhere/manifest.json"),
            r"sources\[0\] \(wiki\)\.manifest: .*not found",
        ),
        (lambda m: m["tokenizer"].update(sha256="0" * 64), r"tokenized with tokenizer"),
        (lambda m: m["tokenizer"].update(vocab_size=4000), r"vocab_size 2000, tokenizer.vocab_size is 4000"),
        (lambda m: m["sources"][0].update(tokens=5), r"re-run `refinery mix`"),
        (lambda m: m.pop("token_budget"), r"missing key 'token_budget'"),
    ],
)
def test_mixture_errors_name_the_file_and_key(corpus: Corpus, tmp_path: Path, edit, message: str) -> None:
    raw = json.loads(corpus.mixture.read_text())
    for source in raw["sources"]:
        source["manifest"] = str(corpus.root / source["manifest"])
    edit(raw)
    path = tmp_path / "mixture.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(MixtureError, match=f"{path}: .*{message}"):
        load_mixture(path)


def test_write_mixture_refuses_an_invalid_mixture(corpus: Corpus, tmp_path: Path) -> None:
    wiki = source_from_manifest("wiki", corpus.root / "shards" / "wiki", weight=0.5, token_budget=10)
    tok = TokenizerRef(path=str(corpus.tokenizer), sha256=corpus.tokenizer_sha256, vocab_size=VOCAB_SIZE)
    with pytest.raises(MixtureError, match="sums to 0.5"):
        write_mixture(tmp_path / "mixture.json", [wiki], token_budget=10, tokenizer=tok)
