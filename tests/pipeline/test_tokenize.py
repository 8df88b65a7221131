"""The Tokenize stage under TestPipeline on real text (WikiText-2 articles, a Japanese novel).

The tokenizer is trained by our own train_tokenizer on the same articles, so the stage is tested
with exactly the kind of model the pipeline will use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import sentencepiece as spm
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from filters.document import Document
from pipeline.tokenize import (
    TOKENIZER_COPY,
    Tokenize,
    TokenizeConfig,
    TokenizeError,
    encode_document,
    finalize_shards,
    split_for_encoding,
)
from pipeline.tokenizer_training import train_tokenizer
from tests.trainer.conftest import DATA, wiki_articles
from trainer.shards import ShardReader, read_manifest, verify

JAPANESE = DATA / "quality" / "positive" / "gutenberg" / "sentencepiece_wagahaiwa_nekodearu_ja.txt"


@pytest.fixture(scope="module")
def articles() -> list[str]:
    return wiki_articles()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory, articles: list[str]) -> Path:
    root = tmp_path_factory.mktemp("tok")
    corpus = root / "wiki.jsonl"
    corpus.write_text("".join(json.dumps({"text": a}) + "\n" for a in articles), encoding="utf-8")
    report = train_tokenizer([str(corpus)], root / "wiki", vocab_size=2000, holdout_fraction=0.0)
    return Path(report.model)


@pytest.fixture(scope="module")
def processor(tokenizer: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tokenizer))


def docs_of(articles: list[str]) -> list[Document]:
    return [Document(id=f"wiki-{i:03d}", text=t, source="wikipedia") for i, t in enumerate(articles)]


def test_split_pieces_concatenate_to_the_text_within_the_limit(articles: list[str]) -> None:
    text = articles[0]
    for limit in (50, 300, 5000):
        pieces = split_for_encoding(text, limit)
        assert "".join(pieces) == text
        assert all(0 < len(p) <= limit for p in pieces)
    # Newline cuts come right after a newline; space cuts before a space that ends a word.
    pieces = split_for_encoding(text, 300)
    seams = list(zip(pieces, pieces[1:]))
    assert any(a.endswith("\n") for a, _ in seams)
    assert all(a.endswith("\n") or (b.startswith(" ") and not a.endswith(" ")) for a, b in seams)
    flat = split_for_encoding(text.replace("\n", " "), 300)
    assert all(p.startswith(" ") and not p.startswith("  ") for p in flat[1:])
    assert split_for_encoding("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_piecewise_encoding_equals_whole_encoding_at_whitespace_cuts(
    articles: list[str], processor: spm.SentencePieceProcessor
) -> None:
    for text in articles[:20]:
        whole = processor.encode(text)
        assert encode_document(processor, text, 300).tolist() == whole
        flat = text.replace("\n", " ")
        assert encode_document(processor, flat, 300).tolist() == processor.encode(flat)


def test_hard_cuts_still_round_trip_exactly(processor: spm.SentencePieceProcessor) -> None:
    # Japanese prose has no spaces, and few newlines within 200 characters: hard cuts happen.
    text = JAPANESE.read_text(encoding="utf-8")[:20000].replace("\n", "")
    ids = encode_document(processor, text, 200)
    assert processor.decode(ids.tolist()) == text


def run_stage(docs: list[Document], out: Path, config: TokenizeConfig, reshuffle: bool = False):
    p = BeamTestPipeline(runner="DirectRunner")
    pcoll = p | beam.Create(docs)
    if reshuffle:
        pcoll = pcoll | beam.Reshuffle()
    _ = pcoll | Tokenize(config, str(out), "wikipedia")
    result = p.run()
    result.wait_until_finish()
    return result, finalize_shards(out, config, "wikipedia")


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_stage_writes_deterministic_verified_shards_that_round_trip(
    tmp_path: Path, tokenizer: Path, processor: spm.SentencePieceProcessor, articles: list[str]
) -> None:
    docs = docs_of(articles)
    config = TokenizeConfig(tokenizer=str(tokenizer), target_shard_tokens=40_000, max_piece_chars=2000)
    result, summary = run_stage(docs, tmp_path / "a", config)
    _, _ = run_stage(list(reversed(docs)), tmp_path / "b", config, reshuffle=True)

    # Same documents and config, different order and bundling: byte-identical outputs.
    first, second = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert first == second
    assert len([n for n in first if n.endswith(".bin")]) >= 3  # ~250k tokens at 40k per shard
    assert verify(tmp_path / "a") == []

    manifest = summary.manifest
    assert manifest.documents == len(docs) == summary.documents_in
    assert manifest.tokenizer_sha256 == read_manifest(tmp_path / "b").tokenizer_sha256
    assert (tmp_path / "a" / TOKENIZER_COPY).read_bytes() == tokenizer.read_bytes()
    assert manifest.dtype == "uint16" and manifest.bos_id is None
    # num_shards 0: one group per target_shard_tokens of encoded tokens (EOS excluded).
    groups = math.ceil((manifest.tokens - manifest.documents) / 40_000)
    assert {s.bin.rsplit("-", 1)[0] for s in manifest.shards} == {f"wikipedia-{g:05d}" for g in range(groups)}

    eos = processor.eos_id()
    decoded = []
    for info in manifest.shards:
        reader = ShardReader(manifest, info)
        for i in range(info.documents):
            tokens = reader.document(i)
            assert tokens[-1] == eos and eos not in tokens[:-1]
            decoded.append(processor.decode(tokens[:-1].tolist()))
    assert sorted(decoded) == sorted(articles)
    expected_tokens = sum(len(processor.encode(a)) + 1 for a in articles)
    assert manifest.tokens == expected_tokens

    counters = result.metrics().query(MetricsFilter().with_name("Tokenize.in"))["counters"]
    assert sum(c.committed for c in counters) == len(docs)


def test_bos_and_a_fixed_number_of_groups(tmp_path: Path, tokenizer: Path, articles: list[str]) -> None:
    config = TokenizeConfig(tokenizer=str(tokenizer), bos=True, num_shards=3)
    _, summary = run_stage(docs_of(articles[:12]), tmp_path, config)
    manifest = summary.manifest
    assert manifest.bos_id is not None
    assert sorted({s.bin.rsplit("-", 1)[0] for s in manifest.shards}) <= [
        "wikipedia-00000", "wikipedia-00001", "wikipedia-00002"]
    for info in manifest.shards:
        reader = ShardReader(manifest, info)
        starts = reader.offsets[:-1]
        assert np.all(reader.tokens[starts] == manifest.bos_id)
    assert verify(tmp_path) == []


def test_empty_documents_are_counted_not_written(tmp_path: Path, tokenizer: Path, articles: list[str]) -> None:
    docs = [Document(id="a", text=articles[0]), Document(id="b", text="")]
    _, summary = run_stage(docs, tmp_path, TokenizeConfig(tokenizer=str(tokenizer)))
    assert (summary.manifest.documents, summary.empty_skipped, summary.documents_in) == (1, 1, 2)


def test_bad_settings_name_the_key_or_file(tmp_path: Path) -> None:
    with pytest.raises(TokenizeError, match="tokenize.max_piece_chars"):
        TokenizeConfig(tokenizer="x.model", max_piece_chars=0)
    missing = tmp_path / "missing.model"
    with pytest.raises(TokenizeError, match=str(missing)):
        Tokenize(TokenizeConfig(tokenizer=str(missing)), str(tmp_path / "out"), "cc")
    not_a_model = tmp_path / "junk.model"
    not_a_model.write_bytes(b"not a model")
    with pytest.raises(TokenizeError, match="not a sentencepiece model"):
        Tokenize(TokenizeConfig(tokenizer=str(not_a_model)), str(tmp_path / "out"), "cc")
