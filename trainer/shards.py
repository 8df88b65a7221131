"""Token shards: the hand-off between the curation pipeline and the trainer.

On-disk format (version 1), one directory per source:

``<name>.bin``
    Every token of the shard's documents, concatenated, as a flat little-endian array with no
    header: ``uint16`` when ``vocab_size <= 65536``, else ``uint32``. Each document is stored as
    ``[BOS] tokens... EOS``: the writer adds the separators, callers pass bare tokenizer ids
    (``sp.encode(text)``). EOS follows every document so a window that crosses a boundary shows
    the model where one text ends; BOS is written only when the manifest's ``bos_id`` is not null.
``<name>.idx``
    Document start offsets in tokens as little-endian ``uint64``, ``documents + 1`` entries: the
    first is 0 and the last equals the shard's token count, so document ``i`` is
    ``tokens[idx[i]:idx[i + 1]]`` (separators included).
``manifest.json``
    ``{"format": "refinery-shards", "version": 1, "source", "dtype", "vocab_size", "eos_id",
    "bos_id", "tokenizer_sha256", "tokens", "documents", "shards": [{"bin", "idx", "tokens",
    "documents", "sha256", "idx_sha256", "bytes"}]}``; file names are relative to the manifest.

Both files are read with ``np.memmap`` so a reader touches only the pages it needs. Documents never
span shards. The writer produces ``*.tmp`` files and renames them only once complete, and the
manifest is written last (by one driver, after parallel workers each return their
:class:`ShardInfo` list), so a crash never leaves a shard that a manifest vouches for half-written.
Nothing time- or host-dependent is written: the same documents give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT = "refinery-shards"
VERSION = 1
MANIFEST_NAME = "manifest.json"
_OFFSET_DTYPE = np.dtype("<u8")
_FLUSH_TOKENS = 1 << 20  # buffer ~1M tokens before a write; keeps memory flat for huge shards


class ShardError(ValueError):
    """A shard directory or manifest that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One finished shard as the manifest lists it (file names relative to the manifest)."""

    bin: str
    idx: str
    tokens: int
    documents: int
    sha256: str
    idx_sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect found by :func:`verify`, with the file it concerns."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed ``manifest.json``; ``dir`` is where its shard files live."""

    dir: Path
    source: str
    dtype: str
    vocab_size: int
    eos_id: int
    bos_id: int | None
    tokenizer_sha256: str
    tokens: int
    documents: int
    shards: tuple[ShardInfo, ...]

    @property
    def path(self) -> Path:
        return self.dir / MANIFEST_NAME

    @property
    def disk_bytes(self) -> int:
        return sum(s.bytes + 8 * (s.documents + 1) for s in self.shards)


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest dtype that holds every id: halving the bytes halves the page-cache footprint."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


class ShardWriter:
    """Appends documents to size-capped shards; see the module docstring for the layout."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        source: str,
        vocab_size: int,
        eos_id: int,
        bos_id: int | None,
        tokenizer_sha256: str,
        target_shard_tokens: int,
        name_prefix: str,
    ) -> None:
        if target_shard_tokens <= 0:
            raise ValueError(f"target_shard_tokens must be positive, got {target_shard_tokens}")
        if not name_prefix or "/" in name_prefix or os.sep in name_prefix:
            raise ValueError(f"name_prefix must be a plain file-name prefix, got {name_prefix!r}")
        for name, value in (("eos_id", eos_id), ("bos_id", bos_id)):
            if value is not None and not 0 <= value < vocab_size:
                raise ValueError(f"{name} {value} is outside the vocabulary [0, {vocab_size})")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.source = source
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.bos_id = bos_id
        self.tokenizer_sha256 = tokenizer_sha256
        self.target_shard_tokens = target_shard_tokens
        self.name_prefix = name_prefix
        self.dtype = token_dtype(vocab_size)
        self.empty_skipped = 0
        """Documents with no tokens; they are not written (an EOS alone teaches nothing)."""
        self._infos: list[ShardInfo] = []
        self._open: _OpenShard | None = None
        self._closed = False

    def add(self, doc_tokens: Sequence[int] | np.ndarray) -> None:
        """Append one document of bare token ids; BOS (if configured) and EOS are added here."""
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        body = np.asarray(doc_tokens)
        if body.size == 0:
            self.empty_skipped += 1
            return
        if body.ndim != 1 or not np.issubdtype(body.dtype, np.integer):
            raise ValueError(
                f"a document must be a 1-D sequence of integer ids, got {body.dtype} {body.shape}"
            )
        low, high = int(body.min()), int(body.max())
        if low < 0 or high >= self.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.vocab_size})")
        parts = [body.astype(self.dtype, copy=False), np.array([self.eos_id], dtype=self.dtype)]
        if self.bos_id is not None:
            parts.insert(0, np.array([self.bos_id], dtype=self.dtype))
        if self._open is None:
            name = f"{self.name_prefix}-{len(self._infos):05d}"
            self._open = _OpenShard(self.out_dir, name, self.dtype)
        self._open.append(np.concatenate(parts))
        if self._open.tokens >= self.target_shard_tokens:
            self._infos.append(self._open.finish())
            self._open = None

    def close(self) -> list[ShardInfo]:
        """Finish the last shard and return every shard written, in order."""
        if not self._closed:
            if self._open is not None:
                self._infos.append(self._open.finish())
                self._open = None
            self._closed = True
        return list(self._infos)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        elif self._open is not None:
            self._open.abort()
            self._open = None


class _OpenShard:
    """A shard being written under ``.tmp`` names, hashed as it goes so closing needs no re-read."""

    def __init__(self, out_dir: Path, name: str, dtype: np.dtype) -> None:
        self.bin_path = out_dir / f"{name}.bin"
        self.idx_path = out_dir / f"{name}.idx"
        self.dtype = dtype
        self.tokens = 0
        self.documents = 0
        self._bin: BinaryIO = open(_tmp(self.bin_path), "wb")  # noqa: SIM115 - closed in finish/abort
        self._idx: BinaryIO = open(_tmp(self.idx_path), "wb")  # noqa: SIM115
        self._bin_hash = hashlib.sha256()
        self._idx_hash = hashlib.sha256()
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0
        self._ends: list[int] = [0]

    def append(self, doc: np.ndarray) -> None:
        self._pending.append(doc)
        self._pending_tokens += doc.size
        self.tokens += doc.size
        self.documents += 1
        self._ends.append(self.tokens)
        if self._pending_tokens >= _FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            data = np.concatenate(self._pending).tobytes()
            self._bin.write(data)
            self._bin_hash.update(data)
            self._pending, self._pending_tokens = [], 0
        if self._ends:
            data = np.asarray(self._ends, dtype=_OFFSET_DTYPE).tobytes()
            self._idx.write(data)
            self._idx_hash.update(data)
            self._ends = []

    def finish(self) -> ShardInfo:
        self._flush()
        for handle in (self._bin, self._idx):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        # idx first: a .bin under its final name therefore always has its index beside it.
        os.replace(_tmp(self.idx_path), self.idx_path)
        os.replace(_tmp(self.bin_path), self.bin_path)
        return ShardInfo(
            bin=self.bin_path.name,
            idx=self.idx_path.name,
            tokens=self.tokens,
            documents=self.documents,
            sha256=self._bin_hash.hexdigest(),
            idx_sha256=self._idx_hash.hexdigest(),
            bytes=self.tokens * self.dtype.itemsize,
        )

    def abort(self) -> None:
        for handle, path in ((self._bin, self.bin_path), (self._idx, self.idx_path)):
            handle.close()
            _tmp(path).unlink(missing_ok=True)


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_manifest(
    out_dir: str | Path,
    infos: Iterable[ShardInfo],
    *,
    source: str,
    vocab_size: int,
    eos_id: int,
    bos_id: int | None,
    tokenizer_sha256: str,
) -> Path:
    """Write ``manifest.json`` for shards produced by one or many writers; returns its path.

    Shards are listed sorted by file name, so the manifest does not depend on the order in which
    parallel workers finished. Every listed file must already exist under its final name.
    """
    out_dir = Path(out_dir)
    shards = sorted(infos, key=lambda s: s.bin)
    names = [s.bin for s in shards]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ShardError(
            f"{out_dir}: shard names listed twice ({', '.join(dupes)}); give each writer its own name_prefix"
        )
    for shard in shards:
        for name in (shard.bin, shard.idx):
            if not (out_dir / name).is_file():
                raise ShardError(f"{out_dir / name}: shard file missing; cannot list it in the manifest")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "dtype": token_dtype(vocab_size).name,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "bos_id": bos_id,
        "tokenizer_sha256": tokenizer_sha256,
        "tokens": sum(s.tokens for s in shards),
        "documents": sum(s.documents for s in shards),
        "shards": [asdict(s) for s in shards],
    }
    path = out_dir / MANIFEST_NAME
    tmp = _tmp(path)
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Parse and check a manifest (a ``manifest.json`` path or its directory) without hashing shards."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{path}: shard manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: cannot read shard manifest: {exc}") from None
    where = str(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ShardError(f"{where}: not a refinery shard manifest (format must be {FORMAT!r})")
    if raw.get("version") != VERSION:
        raise ShardError(f"{where}: version {raw.get('version')!r} is not supported (expected {VERSION})")
    vocab_size = _field(raw, "vocab_size", int, where)
    dtype = _field(raw, "dtype", str, where)
    if vocab_size <= 0 or dtype != token_dtype(vocab_size).name:
        raise ShardError(f"{where}: dtype {dtype!r} does not fit vocab_size {vocab_size}")
    eos_id = _field(raw, "eos_id", int, where)
    bos_id = raw.get("bos_id")
    if bos_id is not None and (isinstance(bos_id, bool) or not isinstance(bos_id, int)):
        raise ShardError(f"{where}: key 'bos_id' must be an integer or null, got {bos_id!r}")
    shard_list = raw.get("shards")
    if not isinstance(shard_list, list):
        raise ShardError(f"{where}: key 'shards' must be a list")
    shards = []
    for i, entry in enumerate(shard_list):
        key = f"shards[{i}]"
        if not isinstance(entry, dict):
            raise ShardError(f"{where}: {key} must be a mapping")
        info = ShardInfo(
            bin=_field(entry, "bin", str, where, key),
            idx=_field(entry, "idx", str, where, key),
            tokens=_field(entry, "tokens", int, where, key),
            documents=_field(entry, "documents", int, where, key),
            sha256=_field(entry, "sha256", str, where, key),
            idx_sha256=_field(entry, "idx_sha256", str, where, key),
            bytes=_field(entry, "bytes", int, where, key),
        )
        for name in (info.bin, info.idx):
            if Path(name).name != name:
                raise ShardError(f"{where}: {key} names {name!r}; shard files must sit beside the manifest")
            if not (path.parent / name).is_file():
                raise ShardError(f"{where}: {key} names {name}, which does not exist in {path.parent}")
        shards.append(info)
    manifest = Manifest(
        dir=path.parent,
        source=_field(raw, "source", str, where),
        dtype=dtype,
        vocab_size=vocab_size,
        eos_id=eos_id,
        bos_id=bos_id,
        tokenizer_sha256=_field(raw, "tokenizer_sha256", str, where),
        tokens=_field(raw, "tokens", int, where),
        documents=_field(raw, "documents", int, where),
        shards=tuple(shards),
    )
    if manifest.tokens != sum(s.tokens for s in shards):
        raise ShardError(f"{where}: 'tokens' ({manifest.tokens}) is not the sum over its shards")
    if manifest.documents != sum(s.documents for s in shards):
        raise ShardError(f"{where}: 'documents' ({manifest.documents}) is not the sum over its shards")
    return manifest


def _field(raw: dict[str, Any], name: str, kind: type, where: str, prefix: str = "") -> Any:
    key = f"{prefix}.{name}" if prefix else name
    if name not in raw:
        raise ShardError(f"{where}: missing key '{key}'")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ShardError(f"{where}: key '{key}' must be {kind.__name__}, got {value!r}")
    return value


class ShardReader:
    """Memory-mapped tokens and offsets of one shard; nothing is read until it is indexed."""

    def __init__(self, manifest: Manifest, info: ShardInfo) -> None:
        self.info = info
        dtype = np.dtype(manifest.dtype).newbyteorder("<")
        self.tokens = _memmap(manifest.dir / info.bin, dtype, info.tokens)
        self.offsets = _memmap(manifest.dir / info.idx, _OFFSET_DTYPE, info.documents + 1)

    def document(self, i: int) -> np.ndarray:
        """Tokens of document ``i`` including its BOS/EOS separators."""
        return np.asarray(self.tokens[int(self.offsets[i]) : int(self.offsets[i + 1])])


def _memmap(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    size = path.stat().st_size
    if size != count * dtype.itemsize:
        raise ShardError(f"{path}: {size} bytes on disk, manifest implies {count * dtype.itemsize}")
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def verify(path: str | Path, *, checksums: bool = True) -> list[Problem]:
    """Every defect of a shard directory, each naming its file; empty when the shards are sound.

    ``checksums=False`` skips hashing (sizes and offsets are still checked), for corpora too large
    to re-read at every start.
    """
    try:
        manifest = read_manifest(path)
    except ShardError as exc:
        target = Path(path) / MANIFEST_NAME if Path(path).is_dir() else Path(path)
        return [Problem(target, str(exc).removeprefix(f"{target}: "))]
    problems: list[Problem] = []
    itemsize = np.dtype(manifest.dtype).itemsize
    for info in manifest.shards:
        bin_path, idx_path = manifest.dir / info.bin, manifest.dir / info.idx
        size = bin_path.stat().st_size
        if size != info.bytes:
            problems.append(Problem(bin_path, f"{size} bytes on disk, manifest says {info.bytes}"))
            continue
        if size != info.tokens * itemsize:
            message = (f"manifest says {info.tokens} tokens, but its {size} bytes hold "
                       f"{size / itemsize:.15g} {manifest.dtype} tokens")
            problems.append(Problem(bin_path, message))
            continue
        if idx_path.stat().st_size != 8 * (info.documents + 1):
            problems.append(Problem(idx_path, f"expected {info.documents + 1} offsets"))
            continue
        if checksums:
            for file, expected in ((bin_path, info.sha256), (idx_path, info.idx_sha256)):
                actual = _sha256_file(file)
                if actual != expected:
                    message = f"sha256 {actual} does not match the manifest's {expected}"
                    problems.append(Problem(file, message))
        offsets = np.fromfile(idx_path, dtype=_OFFSET_DTYPE)
        if offsets[0] != 0:
            problems.append(Problem(idx_path, f"first offset is {offsets[0]}, not 0"))
        if offsets[-1] != info.tokens:
            message = f"last offset is {offsets[-1]}, not the token count {info.tokens}"
            problems.append(Problem(idx_path, message))
        if np.any(np.diff(offsets.astype(np.int64)) <= 0):
            message = "offsets are not strictly increasing (empty or reordered document)"
            problems.append(Problem(idx_path, message))
    return problems


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
