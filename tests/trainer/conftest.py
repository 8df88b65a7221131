"""Real shards from real text, built once per test session.

Two sources so the mixture has something to mix: ``wiki`` is the WikiText-2 test split cut into its
articles, ``books`` two Project Gutenberg books cut into runs of paragraphs. A sentencepiece BPE of
2,000 ids is trained on both (well under a second), and every document is encoded with it.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from trainer.mixture import TokenizerRef, source_from_manifest, write_mixture
from trainer.shards import ShardInfo, ShardWriter, write_manifest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
WIKITEXT = DATA / "quality" / "positive" / "wikipedia" / "wikitext-2-raw-v1_wiki.test.raw"
BOOKS = [
    DATA / "quality" / "positive" / "gutenberg" / "sentencepiece_botchan_en.txt",
    DATA / "quality" / "positive" / "gutenberg" / "pg972_The-Devils-Dictionary.txt",
]
VOCAB_SIZE = 2000
WEIGHTS = {"wiki": 0.7, "books": 0.3}


@dataclass(frozen=True)
class Corpus:
    """Everything a trainer test needs: the mixture file and what it was built from."""

    root: Path
    mixture: Path
    tokenizer: Path
    tokenizer_sha256: str
    documents: dict[str, list[list[int]]]


def wiki_articles() -> list[str]:
    """WikiText articles start with a ' = Title = ' line; section headings have more '='."""
    text = WIKITEXT.read_text(encoding="utf-8")
    parts = re.split(r"\n(?= = [^=].* = \n)", text)
    return [p.strip() for p in parts if len(p.strip()) > 200]


def book_chunks(paragraphs_per_doc: int = 20) -> list[str]:
    docs = []
    for path in BOOKS:
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        start = text.find("*** START")
        end = text.find("*** END")
        if start != -1 and end != -1:
            text = text[text.index("\n", start) : end]
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        for i in range(0, len(paragraphs), paragraphs_per_doc):
            docs.append("\n\n".join(paragraphs[i : i + paragraphs_per_doc]))
    return docs


def train_tokenizer(texts: list[str], out: Path) -> spm.SentencePieceProcessor:
    lines = [line for t in texts for line in t.splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=VOCAB_SIZE,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        eos_id=1,
        bos_id=2,
        pad_id=-1,
        input_sentence_size=40000,
        shuffle_input_sentence=False,
        max_sentence_length=20000,
        num_threads=1,
        minloglevel=2,
    )
    out.write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_file=str(out))


def write_source(
    out_dir: Path,
    name: str,
    docs: list[list[int]],
    *,
    tokenizer_sha256: str,
    eos_id: int,
    target_shard_tokens: int = 60_000,
    bos_id: int | None = None,
) -> list[ShardInfo]:
    with ShardWriter(
        out_dir,
        source=name,
        vocab_size=VOCAB_SIZE,
        eos_id=eos_id,
        bos_id=bos_id,
        tokenizer_sha256=tokenizer_sha256,
        target_shard_tokens=target_shard_tokens,
        name_prefix=name,
    ) as writer:
        for doc in docs:
            writer.add(doc)
    infos = writer.close()
    write_manifest(
        out_dir,
        infos,
        source=name,
        vocab_size=VOCAB_SIZE,
        eos_id=eos_id,
        bos_id=bos_id,
        tokenizer_sha256=tokenizer_sha256,
    )
    return infos


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test machines have 2 cores shared with other jobs; two intra-op threads fighting for them
    made a tiny-model step ~5x slower than one thread, so trainer tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    texts = {"wiki": wiki_articles(), "books": book_chunks()}
    tok_path = root / "tokenizer.model"
    sp = train_tokenizer(texts["wiki"] + texts["books"], tok_path)
    tok_sha = hashlib.sha256(tok_path.read_bytes()).hexdigest()
    documents = {name: sp.encode(docs) for name, docs in texts.items()}
    budget = 1_000_000
    sources = []
    for name, docs in documents.items():
        write_source(root / "shards" / name, name, docs, tokenizer_sha256=tok_sha, eos_id=sp.eos_id())
        sources.append(
            source_from_manifest(name, root / "shards" / name, weight=WEIGHTS[name], token_budget=budget)
        )
    mixture = write_mixture(
        root / "mixture.json",
        sources,
        token_budget=budget,
        tokenizer=TokenizerRef(path="tokenizer.model", sha256=tok_sha, vocab_size=sp.vocab_size()),
    )
    return Corpus(
        root=root, mixture=mixture, tokenizer=tok_path, tokenizer_sha256=tok_sha, documents=documents
    )
