"""The Tokenize stage: documents -> sentencepiece ids -> token shards in the trainer's format.

The graph, and why it is deterministic whatever Beam's bundling:

1. ``Encode`` turns each document into its ids (compact bytes of the shard dtype); it is the only
   CPU-heavy step and runs wherever the document is, before any shuffle, so the shuffle carries
   tokens (2 bytes each) rather than text (~4 bytes per token).
2. ``Key`` assigns a document to one of ``N`` shard groups by a stable hash of its id. ``N`` is
   ``num_shards`` or, when that is 0, the corpus' total tokens over ``target_shard_tokens`` (a Beam
   sum of the encoded lengths fed back as a side input), so it too depends only on the input and
   needs no second pass over the text.
3. ``GroupByKey``, then ``WriteShards`` sorts each group by document id and writes it with
   :class:`trainer.shards.ShardWriter` under the name prefix ``<source>-<group>``, plus a small
   ``_parts/<source>-<group>.json`` listing the shards it wrote. A retried bundle rewrites the
   same files with the same bytes.
4. After the run, the driver's :func:`finalize_shards` reads those part files and writes
   ``manifest.json`` once (trainer.shards.write_manifest) with the tokenizer's sha256, and copies
   the tokenizer beside it so a shard directory is self-describing.

A group is sorted in memory; with a derived ``N`` a group is about one shard
(``target_shard_tokens`` tokens), which bounds a worker's memory. A fixed ``num_shards`` on a
huge corpus makes groups larger, so leave it at 0 unless a runner needs a fixed fan-out.

Long documents. sentencepiece's encode grows faster than linearly with input length (WikiText's
60 test articles joined into one 3.9M-character text encode at a third of the characters per
second of the articles one by one), so a document longer
than ``max_piece_chars`` is encoded in pieces. A piece ends right after a newline, else right
before a space that follows a non-space, else (no whitespace at all) at the character limit. Our
tokenizers are trained on lines, so no vocabulary piece contains a newline, and with
sentencepiece's split-by-whitespace no piece starts mid-way into a run of spaces: the first two
kinds of cut therefore give exactly the ids of encoding the whole document (the tests check this
on WikiText). Only the hard cut can differ from a whole encode, in the merges of the one word it
splits; the text still round-trips exactly. Continuation pieces are encoded behind a "\\n" whose
ids are then removed, which stops sentencepiece adding its dummy-prefix space to every piece; if a
tokenizer does merge that newline with what follows, the document is encoded whole instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import sentencepiece as spm
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from filters.document import Document
from pipeline.stage import METRICS_NAMESPACE
from trainer.shards import Manifest, ShardInfo, ShardWriter, read_manifest, token_dtype, write_manifest

STAGE = "Tokenize"
PARTS_DIR = "_parts"
TOKENIZER_COPY = "tokenizer.model"
_CONTINUATION = "\n"


class TokenizeError(ValueError):
    """The stage cannot run as configured; the message names the file or key."""


@dataclass(frozen=True, kw_only=True)
class TokenizeConfig:
    """Settings of the Tokenize stage (the ``tokenize`` section of a pipeline config)."""

    # The sentencepiece .model from `refinery train-tokenizer`; null turns the stage off.
    tokenizer: str | None = None
    # Write BOS before each document. EOS always follows each document (trainer/shards.py).
    bos: bool = False
    # Tokens per shard file before the writer starts the next one (uint16: 2 bytes per token).
    target_shard_tokens: int = 50_000_000
    # Shard groups (each writes one or more shard files); 0 = total tokens / target_shard_tokens.
    num_shards: int = 0
    # Documents longer than this are encoded in pieces (see the module docstring).
    max_piece_chars: int = 20_000

    def __post_init__(self) -> None:
        for key in ("target_shard_tokens", "max_piece_chars"):
            if getattr(self, key) <= 0:
                raise TokenizeError(f"tokenize.{key} must be positive, got {getattr(self, key)}")
        if self.num_shards < 0:
            raise TokenizeError(f"tokenize.num_shards must be >= 0 (0 = derived), got {self.num_shards}")

    @property
    def enabled(self) -> bool:
        return self.tokenizer is not None


@dataclass(frozen=True)
class TokenizerInfo:
    """What the shards record about the tokenizer, read once on the driver."""

    path: str
    sha256: str
    vocab_size: int
    eos_id: int
    bos_id: int


def tokenizer_info(path: str) -> TokenizerInfo:
    """Load the model once to check it and learn its ids; errors name the file."""
    try:
        with FileSystems.open(path) as handle:
            data = handle.read()
    except Exception as exc:  # noqa: BLE001 - Beam's FileSystems wraps a missing file in its own error types
        raise TokenizeError(f"{path}: cannot read the tokenizer model: {exc}") from None
    try:
        processor = spm.SentencePieceProcessor(model_proto=data)
    except (RuntimeError, TypeError) as exc:
        raise TokenizeError(f"{path}: not a sentencepiece model: {exc}") from None
    if processor.eos_id() < 0:
        raise TokenizeError(f"{path}: the tokenizer has no EOS piece; train it with `refinery train-tokenizer`")
    return TokenizerInfo(path, hashlib.sha256(data).hexdigest(), processor.vocab_size(),
                         processor.eos_id(), processor.bos_id())


def split_for_encoding(text: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars`` whose concatenation is ``text`` (cut rules: module docstring)."""
    pieces = []
    start = 0
    while len(text) - start > max_chars:
        end = start + max_chars
        cut = text.rfind("\n", start, end) + 1
        if cut <= start:
            cut = text.rfind(" ", start + 1, end)
            while cut > start and text[cut - 1] == " ":
                cut -= 1
            if cut <= start:
                cut = end
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def encode_document(processor: spm.SentencePieceProcessor, text: str, max_piece_chars: int) -> np.ndarray:
    """The document's ids as int32, encoded in pieces when long; equal to ``processor.encode(text)``
    except at hard cuts (see the module docstring).

    sentencepiece hands the ids over as one numpy buffer (``return_type="numpy"``) instead of a
    Python int per token, which makes this cheaper than the plain list-returning ``encode``. The
    pieces of one document are encoded on this thread only: a worker owns one core per DoFn thread,
    and sentencepiece's own pool would oversubscribe it.
    """
    pieces = split_for_encoding(text, max_piece_chars)
    if len(pieces) == 1:
        return processor.encode(text, return_type="numpy")
    prefix = processor.encode(_CONTINUATION, return_type="numpy")
    parts = [processor.encode(pieces[0], return_type="numpy")]
    continued = processor.encode([_CONTINUATION + piece for piece in pieces[1:]], return_type="numpy", num_threads=1)
    for encoded in continued:
        if not np.array_equal(encoded[: len(prefix)], prefix):
            return processor.encode(text, return_type="numpy")  # this vocabulary merges across a newline: no safe seam
        parts.append(encoded[len(prefix):])
    return np.concatenate(parts)


def shard_group(doc_id: str, groups: int) -> int:
    """Stable across processes and runs (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % groups


def derived_groups(total_tokens: int, config: TokenizeConfig) -> int:
    return max(1, math.ceil(total_tokens / config.target_shard_tokens))


def name_prefix(source: str, group: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', source) or 'source'}-{group:05d}"


class _Encode(beam.DoFn):
    """Document -> (id, ids as shard-dtype bytes). The model loads in setup, once per worker."""

    def __init__(self, tokenizer: str, max_piece_chars: int) -> None:
        self._tokenizer = tokenizer
        self._max_piece_chars = max_piece_chars

    def setup(self) -> None:
        with FileSystems.open(self._tokenizer) as handle:
            self._processor = spm.SentencePieceProcessor(model_proto=handle.read())
        self._dtype = token_dtype(self._processor.vocab_size())
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.in")
        self._tokens = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.tokens")
        self._split = Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.split_documents")

    def process(self, doc: Document) -> Iterator[tuple[str, bytes]]:
        self._in.inc()
        if len(doc.text) > self._max_piece_chars:
            self._split.inc()
        ids = encode_document(self._processor, doc.text, self._max_piece_chars)
        self._tokens.inc(len(ids))
        yield doc.id, ids.astype(self._dtype).tobytes()


class _WriteGroup(beam.DoFn):
    """One shard group -> shard files + its part JSON; yields the part summary."""

    def __init__(self, out_dir: str, source: str, info: TokenizerInfo, config: TokenizeConfig) -> None:
        self._out_dir = out_dir
        self._source = source
        self._info = info
        self._config = config

    def process(self, element: tuple[int, Iterable[tuple[str, bytes]]]) -> Iterator[dict[str, Any]]:
        group, members = element
        dtype = token_dtype(self._info.vocab_size)
        prefix = name_prefix(self._source, group)
        documents = sorted(members)  # by id, then by tokens: a total order, whatever the bundling
        with ShardWriter(
            self._out_dir, source=self._source, vocab_size=self._info.vocab_size, eos_id=self._info.eos_id,
            bos_id=self._info.bos_id if self._config.bos else None, tokenizer_sha256=self._info.sha256,
            target_shard_tokens=self._config.target_shard_tokens, name_prefix=prefix,
        ) as writer:
            for _doc_id, tokens in documents:
                writer.add(np.frombuffer(tokens, dtype=dtype))
        infos = writer.close()
        if writer.empty_skipped:
            Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.empty_documents").inc(writer.empty_skipped)
        part = {"group": group, "documents_in": len(documents), "empty_skipped": writer.empty_skipped,
                "shards": [asdict(i) for i in infos]}
        parts = Path(self._out_dir) / PARTS_DIR
        parts.mkdir(parents=True, exist_ok=True)
        tmp = parts / f"{prefix}.json.tmp"
        tmp.write_text(json.dumps(part, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, parts / f"{prefix}.json")
        yield part


class Tokenize(beam.PTransform):
    """Documents -> shards under ``out_dir`` (a local or mounted path: ShardWriter writes with os).

    Returns the PCollection of part summaries; call :func:`finalize_shards` after the pipeline has
    run to write the manifest.
    """

    def __init__(self, config: TokenizeConfig, out_dir: str, source: str) -> None:
        super().__init__(label=STAGE)
        if config.tokenizer is None:
            raise TokenizeError("tokenize.tokenizer is not set; the Tokenize stage needs a sentencepiece model")
        self._config = config
        self._out_dir = out_dir
        self._source = source
        self._info = tokenizer_info(config.tokenizer)
        if config.bos and self._info.bos_id < 0:
            raise TokenizeError(f"tokenize.bos is true but {config.tokenizer} has no BOS piece")

    def expand(self, docs):
        encoded = docs | "Encode" >> beam.ParDo(_Encode(self._config.tokenizer, self._config.max_piece_chars))
        if self._config.num_shards:
            groups = docs.pipeline | "Groups" >> beam.Create([self._config.num_shards])
        else:
            itemsize = token_dtype(self._info.vocab_size).itemsize
            groups = (
                encoded
                | "Tokens" >> beam.Map(lambda kv: len(kv[1]) // itemsize)
                | "TotalTokens" >> beam.CombineGlobally(sum)
                | "Groups" >> beam.Map(derived_groups, self._config)
            )
        return (
            encoded
            | "Key" >> beam.Map(lambda kv, n: (shard_group(kv[0], n), kv), n=beam.pvalue.AsSingleton(groups))
            | "Group" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteGroup(self._out_dir, self._source, self._info, self._config))
        )


@dataclass(frozen=True)
class ShardSummary:
    """What the driver learns from the finished stage: the manifest and the documents it skipped."""

    manifest: Manifest
    documents_in: int
    empty_skipped: int


def finalize_shards(out_dir: str | Path, config: TokenizeConfig, source: str) -> ShardSummary:
    """Write ``manifest.json`` from the workers' part files; run once on the driver after the run."""
    if config.tokenizer is None:
        raise TokenizeError("tokenize.tokenizer is not set; nothing to finalize")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = tokenizer_info(config.tokenizer)
    infos: list[ShardInfo] = []
    documents_in = empty = 0
    for part_path in sorted((out / PARTS_DIR).glob("*.json")):
        try:
            part = json.loads(part_path.read_text(encoding="utf-8"))
            infos.extend(ShardInfo(**s) for s in part["shards"])
            documents_in += int(part["documents_in"])
            empty += int(part["empty_skipped"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenizeError(f"{part_path}: unreadable shard part file: {exc}") from None
    write_manifest(out, infos, source=source, vocab_size=info.vocab_size, eos_id=info.eos_id,
                   bos_id=info.bos_id if config.bos else None, tokenizer_sha256=info.sha256)
    with FileSystems.open(config.tokenizer) as src, open(out / TOKENIZER_COPY, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return ShardSummary(read_manifest(out), documents_in, empty)
