"""``refinery train-tokenizer``: a sentencepiece BPE with LLaMA's settings, trained on our documents.

What the LLaMA paper states (Touvron et al. 2023, section 2.1 "Tokenizer"): the data is tokenized
with byte-pair encoding (Sennrich et al. 2015) using the SentencePiece implementation (Kudo and
Richardson 2018); all numbers are split into individual digits; unknown UTF-8 characters fall back
to bytes. The rest of :data:`LLAMA_SETTINGS` (a 32,000-piece vocabulary, identity normalization,
character coverage 0.99995, no whitespace collapsing, whitespace-only pieces) is not in that
section; it is what Meta's released ``tokenizer.model`` records in its trainer spec, and the
32k vocabulary is stated in the Llama 2 paper (Touvron et al. 2023b, section 2.2).

Documents are streamed: Parquet in pyarrow batches of the ``text`` column, JSONL line by line, so
memory is bounded by sentencepiece's own sample (``input_sentence_size`` sentences, drawn by
reservoir sampling and shuffled) and never by the corpus. A deterministic ``holdout_fraction`` of
the documents is kept out of training and measures compression (UTF-8 bytes per token) afterwards.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sentencepiece as spm
from tqdm import tqdm

# Touvron et al. 2023, 2.1 states BPE, split digits and byte fallback; the remaining values are
# those of the released LLaMA tokenizer.model's trainer_spec (see the module docstring).
LLAMA_SETTINGS: dict[str, Any] = {
    "model_type": "bpe",
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "identity",
    "character_coverage": 0.99995,
    "add_dummy_prefix": True,
    "remove_extra_whitespaces": False,
    "allow_whitespace_only_pieces": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
}
# Lines are cut at spaces to at most this many characters; 4 UTF-8 bytes each stays below
# sentencepiece's max_sentence_length, which it would otherwise enforce by dropping the line.
MAX_SENTENCE_CHARS = 4096
MAX_SENTENCE_BYTES = 4 * MAX_SENTENCE_CHARS


class TokenizerTrainingError(ValueError):
    """The tokenizer cannot be trained as asked; the message says what to change."""


@dataclass(frozen=True)
class TokenizerReport:
    """What came out of a training run, also written beside the model as ``<prefix>.json``."""

    model: str
    vocab: str
    sha256: str
    vocab_size: int
    train_documents: int
    train_sentences: int
    holdout_documents: int
    holdout_bytes: int
    holdout_tokens: int

    @property
    def bytes_per_token(self) -> float | None:
        return self.holdout_bytes / self.holdout_tokens if self.holdout_tokens else None


DOCUMENT_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".txt")
_BATCH_ROWS = 1024


def document_files(inputs: Sequence[str]) -> list[Path]:
    """Files behind ``inputs``: a run dir means its documents/, a directory its document files."""
    files: list[Path] = []
    for spec in inputs:
        matches = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
        if not matches:
            raise FileNotFoundError(f"{spec}: no file matches")
        for match in map(Path, matches):
            if match.is_dir():
                root = match / "documents" if (match / "documents").is_dir() else match
                found = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(DOCUMENT_SUFFIXES))
                if not found:
                    raise FileNotFoundError(f"{match}: no {', '.join(DOCUMENT_SUFFIXES)} files inside")
                files.extend(found)
            elif match.is_file():
                files.append(match)
            else:
                raise FileNotFoundError(f"{match}: no such file or directory")
    return files


def iter_texts(inputs: Sequence[str]) -> Iterator[str]:
    """Every document's text, streamed: Parquet by row batches, JSONL by line, other files (named
    explicitly, or ``.txt`` inside a directory) as plain text with blank-line separated documents."""
    for path in document_files(inputs):
        name = path.name
        if name.endswith(".parquet"):
            parquet = pq.ParquetFile(path)
            if "text" not in parquet.schema_arrow.names:
                raise TokenizerTrainingError(f"{path}: no 'text' column (columns: {parquet.schema_arrow.names})")
            for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=["text"]):
                yield from (t for t in batch.column(0).to_pylist() if t)
        elif name.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise TokenizerTrainingError(f"{path}:{line_no}: not JSON: {exc}") from None
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        raise TokenizerTrainingError(f"{path}:{line_no}: no string 'text' key in the record")
                    if record["text"]:
                        yield record["text"]
        else:
            yield from _paragraphs(path)


def _paragraphs(path: Path, max_chars: int = 1_000_000) -> Iterator[str]:
    """Plain text: blank-line separated documents, read line by line; a file without blank lines
    is cut every ``max_chars`` so it is never held whole."""
    block: list[str] = []
    size = 0
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.strip():
                block.append(line.rstrip("\r\n"))
                size += len(line)
            if block and (not line.strip() or size >= max_chars):
                yield "\n".join(block)
                block, size = [], 0
    if block:
        yield "\n".join(block)


def is_holdout(index: int, seed: int, fraction: float) -> bool:
    """A document's split depends only on its position and the seed, so both passes agree."""
    if fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def sentences(text: str) -> Iterator[str]:
    """A document's non-blank lines, long ones cut at spaces: the units sentencepiece trains on.

    Training on lines means no piece ever contains a newline, which the tokenize stage relies on
    when it encodes long documents in paragraph-sized pieces (see pipeline/tokenize.py).
    """
    for line in text.splitlines():
        while len(line) > MAX_SENTENCE_CHARS:
            cut = line.rfind(" ", 1, MAX_SENTENCE_CHARS)
            cut = cut if cut > 0 else MAX_SENTENCE_CHARS
            head, line = line[:cut], line[cut:]
            if head.strip():
                yield head
        if line.strip():
            yield line


def train_tokenizer(
    inputs: Sequence[str],
    output_prefix: str | Path,
    *,
    vocab_size: int = 32000,
    input_sentence_size: int = 5_000_000,
    seed: int = 0,
    holdout_fraction: float = 0.01,
    max_holdout_documents: int = 2000,
    character_coverage: float = LLAMA_SETTINGS["character_coverage"],
    num_threads: int | None = None,
) -> TokenizerReport:
    """Train ``<output_prefix>.model``/``.vocab`` on the documents of ``inputs``.

    ``input_sentence_size`` caps the lines sentencepiece holds in memory (about 100 bytes each
    for web text, so 5M is ~0.5 GB); beyond it the lines are a uniform sample, shuffled.
    """
    if vocab_size <= 0:
        raise TokenizerTrainingError(f"--vocab-size must be positive, got {vocab_size}")
    if not 0 <= holdout_fraction < 1:
        raise TokenizerTrainingError(f"--holdout-fraction must be in [0, 1), got {holdout_fraction}")
    files = [str(f) for f in document_files(inputs)]  # fail on a bad path before training starts
    prefix = Path(output_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    counts = {"documents": 0, "sentences": 0}
    failures: list[Exception] = []

    def training_sentences() -> Iterator[str]:
        # sentencepiece turns an exception raised in here into an opaque RuntimeError, so it is
        # kept and re-raised as itself once training stops.
        try:
            for index, text in enumerate(tqdm(iter_texts(files), desc="tokenizer input", unit="doc")):
                if is_holdout(index, seed, holdout_fraction):
                    continue
                counts["documents"] += 1
                for sentence in sentences(text):
                    counts["sentences"] += 1
                    yield sentence
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside sentencepiece
            failures.append(exc)

    spm.set_random_generator_seed(seed)
    settings = {**LLAMA_SETTINGS, "character_coverage": character_coverage}
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=training_sentences(),
            model_prefix=str(prefix),
            vocab_size=vocab_size,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            max_sentence_length=MAX_SENTENCE_BYTES,
            num_threads=num_threads or os.cpu_count() or 1,
            minloglevel=2,
            **settings,
        )
    except RuntimeError as exc:
        if failures:
            raise failures[0] from None
        raise _explain(exc, vocab_size, counts["sentences"]) from None
    if failures:
        raise failures[0]
    model_path = prefix.with_name(prefix.name + ".model")
    processor = spm.SentencePieceProcessor(model_file=str(model_path))
    holdout_bytes, holdout_tokens, holdout_docs = _compression(
        processor, files, seed, holdout_fraction, max_holdout_documents
    )
    report = TokenizerReport(
        model=str(model_path),
        vocab=str(prefix.with_name(prefix.name + ".vocab")),
        sha256=hashlib.sha256(model_path.read_bytes()).hexdigest(),
        vocab_size=processor.vocab_size(),
        train_documents=counts["documents"],
        train_sentences=counts["sentences"],
        holdout_documents=holdout_docs,
        holdout_bytes=holdout_bytes,
        holdout_tokens=holdout_tokens,
    )
    summary = {**asdict(report), "bytes_per_token": report.bytes_per_token, "settings": settings,
               "input_sentence_size": input_sentence_size, "seed": seed, "holdout_fraction": holdout_fraction}
    prefix.with_name(prefix.name + ".json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return report


def _compression(
    processor: spm.SentencePieceProcessor, inputs: Sequence[str], seed: int, fraction: float, limit: int
) -> tuple[int, int, int]:
    """(bytes, tokens, documents) over the first ``limit`` held-out documents (a second pass)."""
    total_bytes = total_tokens = docs = 0
    if fraction <= 0 or limit <= 0:
        return 0, 0, 0
    for index, text in enumerate(iter_texts(inputs)):
        if not is_holdout(index, seed, fraction):
            continue
        total_bytes += len(text.encode("utf-8"))
        total_tokens += len(processor.encode(text))
        docs += 1
        if docs >= limit:
            break
    return total_bytes, total_tokens, docs


def _explain(exc: RuntimeError, vocab_size: int, sentences: int) -> TokenizerTrainingError:
    """sentencepiece's CHECK failures, rephrased as what to change on the command line."""
    message = str(exc)
    if "Vocabulary size too high" in message or "Vocabulary size is too high" in message:
        bound = message.rsplit("<=", 1)[-1].strip(" .") if "<=" in message else "a smaller value"
        return TokenizerTrainingError(
            f"--vocab-size {vocab_size} is larger than the training data supports "
            f"({sentences} lines); lower --vocab-size to at most {bound}, or add data"
        )
    if "smaller than required_chars" in message:
        needed = message.split("required_chars.", 1)[-1].split("vs", 1)[-1].split(".", 1)[0].strip()
        return TokenizerTrainingError(
            f"--vocab-size {vocab_size} cannot hold the {needed} characters and special pieces the data "
            "needs; raise --vocab-size or lower --character-coverage"
        )
    if sentences == 0:
        return TokenizerTrainingError("no training text: the inputs hold no non-blank lines")
    return TokenizerTrainingError(f"sentencepiece failed: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery train-tokenizer``: 0 trained, 2 bad input or settings (one line on stderr)."""
    parser = argparse.ArgumentParser(
        prog="refinery train-tokenizer",
        description="Train a sentencepiece BPE tokenizer with LLaMA's settings on documents.",
        allow_abbrev=False,
    )
    parser.add_argument("--input", nargs="+", required=True, metavar="DOCS",
                        help="documents: run dirs, Parquet/JSONL/txt files, directories or globs")
    parser.add_argument("--output", required=True, metavar="PREFIX",
                        help="writes PREFIX.model, PREFIX.vocab and PREFIX.json")
    parser.add_argument("--vocab-size", type=int, default=32000, help="pieces in the vocabulary (LLaMA: 32000)")
    parser.add_argument("--input-sentence-size", type=int, default=5_000_000,
                        help="lines sampled for training (bounds memory; default 5,000,000)")
    parser.add_argument("--character-coverage", type=float, default=LLAMA_SETTINGS["character_coverage"])
    parser.add_argument("--holdout-fraction", type=float, default=0.01,
                        help="documents kept out of training to measure compression (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        report = train_tokenizer(
            args.input, args.output, vocab_size=args.vocab_size, input_sentence_size=args.input_sentence_size,
            seed=args.seed, holdout_fraction=args.holdout_fraction, character_coverage=args.character_coverage,
        )
    except (TokenizerTrainingError, FileNotFoundError) as exc:
        print(f"refinery train-tokenizer: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {report.model} ({report.vocab_size} pieces, sha256 {report.sha256[:12]}) "
          f"from {report.train_documents} documents / {report.train_sentences} lines")
    if report.bytes_per_token is not None:
        print(f"held-out compression: {report.bytes_per_token:.2f} bytes/token "
              f"({report.holdout_documents} documents, {report.holdout_tokens} tokens)")
    else:
        print("held-out compression: not measured (no held-out documents; raise --holdout-fraction)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
