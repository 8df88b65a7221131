"""train_tokenizer on real text: WikiText-2 articles as Parquet documents and Gutenberg books as JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from filters.document import ARROW_SCHEMA, Document
from pipeline.tokenizer_training import (
    TokenizerTrainingError,
    is_holdout,
    iter_texts,
    main,
    sentences,
    train_tokenizer,
)
from tests.trainer.conftest import book_chunks, wiki_articles


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run-like directory (documents/*.parquet) plus a JSONL file of book chunks."""
    root = tmp_path_factory.mktemp("docs")
    rows = [Document(id=f"w{i}", text=t, source="wikipedia").to_row() for i, t in enumerate(wiki_articles())]
    (root / "run" / "documents").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    pq.write_table(table.slice(0, 30), root / "run" / "documents" / "part-0.parquet")
    pq.write_table(table.slice(30), root / "run" / "documents" / "part-1.parquet")
    with open(root / "books.jsonl", "w", encoding="utf-8") as out:
        for text in book_chunks():
            out.write(json.dumps({"id": "b", "text": text}) + "\n")
    return root


def test_llama_style_bpe_with_digits_split_and_byte_fallback(tmp_path: Path, corpus: Path) -> None:
    report = train_tokenizer([str(corpus / "run"), str(corpus / "books.jsonl")], tmp_path / "tok",
                             vocab_size=1500, holdout_fraction=0.1, seed=3)
    assert Path(report.model).is_file() and Path(report.vocab).is_file()
    sp = spm.SentencePieceProcessor(model_file=report.model)
    assert sp.vocab_size() == report.vocab_size == 1500
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    # split_digits: every digit is its own piece; byte_fallback: an unseen character becomes bytes.
    digits = [p for p in sp.encode("in 1944", out_type=str) if any(c.isdigit() for c in p)]
    assert digits == ["1", "9", "4", "4"]
    assert sp.encode("\U0001f9ec", out_type=str)[-4:] == ["<0xF0>", "<0x9F>", "<0xA7>", "<0xAC>"]
    # identity normalization, no whitespace collapsing: text round-trips byte for byte.
    text = "Ｆｕｌｌ width  and  double  spaces\n\tkept"
    assert sp.decode(sp.encode(text)) == text
    # Held-out documents measure compression; English BPE at 1.5k pieces is ~3 bytes per token.
    total = len(wiki_articles()) + len(book_chunks())
    assert report.holdout_documents >= 5 and report.train_documents + report.holdout_documents == total
    assert 2.0 < report.bytes_per_token < 5.0
    summary = json.loads((tmp_path / "tok.json").read_text())
    assert summary["settings"]["split_digits"] is True and summary["bytes_per_token"] == report.bytes_per_token


def test_holdout_split_is_deterministic_and_near_the_fraction() -> None:
    picks = [is_holdout(i, seed=7, fraction=0.1) for i in range(5000)]
    assert picks == [is_holdout(i, seed=7, fraction=0.1) for i in range(5000)]
    assert 400 < sum(picks) < 600
    assert not any(is_holdout(i, seed=7, fraction=0.0) for i in range(100))


def test_long_lines_are_cut_and_blank_lines_dropped() -> None:
    line = "word " * 2000
    parts = list(sentences(f"{line}\n\n   \nshort"))
    assert parts[-1] == "short"
    assert all(len(p) <= 4096 for p in parts) and "".join(parts[:-1]) == line
    assert len(parts) == 4


def test_vocabulary_larger_than_the_data_supports_says_lower_it(tmp_path: Path, capsys) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"text": t}) + "\n" for t in wiki_articles()[:2]), encoding="utf-8")
    with pytest.raises(TokenizerTrainingError, match=r"lower --vocab-size to at most \d+"):
        train_tokenizer([str(small)], tmp_path / "tok", vocab_size=32000, holdout_fraction=0.0)
    assert main(["--input", str(small), "--output", str(tmp_path / "t"), "--vocab-size", "100000"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("refinery train-tokenizer: error:")]
    assert len(errors) == 1 and "lower --vocab-size" in errors[0] and "Traceback" not in err


def test_bad_inputs_name_the_file(tmp_path: Path, capsys) -> None:
    assert main(["--input", str(tmp_path / "nope.parquet"), "--output", str(tmp_path / "t")]) == 2
    assert "nope.parquet" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"body": "no text key"}\n', encoding="utf-8")
    with pytest.raises(TokenizerTrainingError, match="broken.jsonl:2"):
        list(iter_texts([str(broken)]))
    assert main(["--input", str(broken), "--output", str(tmp_path / "t")]) == 2
    assert "broken.jsonl:2" in capsys.readouterr().err
