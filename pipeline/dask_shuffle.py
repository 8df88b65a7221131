"""What the Dask runner holds between tasks, and the shuffles (GroupByKey, Reshuffle) through files.

A worker's memory must not grow with the corpus. Two things made it grow:

* **Partitions held as Python objects.** dask sizes a list of a million small objects by guesswork,
  spills it slowly, and once it is freed the pymalloc arenas stay pinned by the few objects that
  outlive it (we measured ~505 arenas of 1 MiB with 140-225 MB in use on a 40k-document dedup). So
  every partition a task hands on is a :class:`Block`: its elements pickled into one buffer, which
  dask sizes exactly and spills whole, and whose freeing returns one large allocation.
* **A shuffle made of tasks.** dask's task shuffle (and a staged version of it over Blocks, which
  we tried first) keeps every piece of every partition in worker memory until the last reader has
  run, and needs n log n tasks: at 160k documents the graph had 332k tasks, the scheduler 1.7 GB,
  and a worker paused at 80% of its limit holding only task state, with no data left to spill.

:func:`group_by_key` shuffles as Spark does, through files: a write task per input partition
puts its elements, split by key hash into one piece per output partition, in one file and returns
the pieces' offsets; a barrier task gathers the offsets; a read task per output partition reads
its piece of every file and groups it. That is 2n + 1 tasks, a worker holds one partition's
worth at a time, and the data waits on disk, not in memory. The files live under the pipeline's
``--temp_location`` (any Beam filesystem: a local disk shared by a LocalCluster's workers, or
``gs://`` for a cluster) and are deleted with the run, so a task that dask re-runs after losing
a worker still finds them.

A Reshuffle (:func:`redistribute`) is the same shuffle with elements dealt round-robin instead of
by key, and read back without grouping.

Keys are hashed and grouped by their deterministic Beam encoding, as Beam's runners do: two keys
are one group exactly when their encoded bytes are equal, in every worker process.
"""

from __future__ import annotations

import pickle
import typing as t
import zlib
from collections.abc import Iterable, Iterator

import dask.bag as db
import numpy as np
from apache_beam import coders
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask.sizeof import sizeof

_KEY_CODER = coders.FastPrimitivesCoder().as_deterministic_coder("GroupByKey on Dask")
_RAW = CompressionTypes.UNCOMPRESSED


class Block:
    """A partition's elements pickled into one buffer; iterating unpickles them all at once."""

    __slots__ = ("payload", "count")

    def __init__(self, items: Iterable[t.Any]) -> None:
        items = items if isinstance(items, list) else list(items)
        self.payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        self.count = len(items)

    def __iter__(self) -> Iterator[t.Any]:
        return iter(pickle.loads(self.payload))

    def __len__(self) -> int:
        return self.count


@sizeof.register(Block)
def _sizeof_block(block: Block) -> int:
    return 100 + len(block.payload)


def _by_key_hash(items: Iterable[tuple[t.Any, t.Any]], n_out: int) -> Iterator[tuple[int, t.Any]]:
    """GroupByKey's routing: every element of a key goes to the piece its encoded key hashes to."""
    for element in items:
        yield zlib.crc32(_KEY_CODER.encode(element[0])) % n_out, element


def _round_robin(items: Iterable[t.Any], n_out: int, first: int) -> Iterator[tuple[int, t.Any]]:
    """Reshuffle's routing: consecutive elements to consecutive pieces, starting at ``first``, so
    that input partitions of one element each (a file's byte ranges) do not all land in piece 0."""
    for i, element in enumerate(items):
        yield (first + i) % n_out, element


def _write_pieces(routed: Iterable[tuple[int, t.Any]], path: str, n_out: int) -> np.ndarray:
    """Write one partition's ``(piece, element)`` pairs as ``n_out`` pickled pieces, back to back in
    one file; returns the ``n_out + 1`` offsets that bound them (an empty piece takes no bytes)."""
    pieces: list[list[t.Any]] = [[] for _ in range(n_out)]
    for piece, element in routed:
        pieces[piece].append(element)
    offsets = np.zeros(n_out + 1, dtype=np.int64)
    with FileSystems.create(path, compression_type=_RAW) as f:
        for i, piece in enumerate(pieces):
            data = pickle.dumps(piece, protocol=pickle.HIGHEST_PROTOCOL) if piece else b""
            f.write(data)
            offsets[i + 1] = offsets[i] + len(data)
    return offsets


def _write_by_key(items: Iterable[tuple[t.Any, t.Any]], path: str, n_out: int, partition: int) -> np.ndarray:
    return _write_pieces(_by_key_hash(items, n_out), path, n_out)


def _write_round_robin(items: Iterable[t.Any], path: str, n_out: int, partition: int) -> np.ndarray:
    return _write_pieces(_round_robin(items, n_out, first=partition), path, n_out)


def _index(*offsets: np.ndarray) -> np.ndarray:
    """The barrier: one small (inputs x outputs+1) array, so a read task depends on one key, not n."""
    return np.stack(offsets)


def _piece_file(directory: str, p: int) -> str:
    return FileSystems.join(directory, f"{p:06d}")


def _read_pieces(index: np.ndarray, directory: str, out: int) -> Iterator[list[t.Any]]:
    """Piece ``out`` of every input partition's file, one list at a time."""
    for p, (start, end) in enumerate(index[:, out : out + 2].tolist()):
        if end == start:
            continue
        with FileSystems.open(_piece_file(directory, p), compression_type=_RAW) as f:
            f.seek(start)
            yield pickle.loads(f.read(end - start))


def _read_group(index: np.ndarray, directory: str, out: int) -> Block:
    """Read piece ``out`` of every input's file and group its elements by encoded key."""
    groups: dict[bytes, tuple[t.Any, list[t.Any]]] = {}
    for piece in _read_pieces(index, directory, out):
        for key, value in piece:
            encoded = _KEY_CODER.encode(key)
            if encoded in groups:
                groups[encoded][1].append(value)
            else:
                groups[encoded] = (key, [value])
    return Block(groups.values())


def _read_concat(index: np.ndarray, directory: str, out: int) -> Block:
    """Read piece ``out`` of every input's file, as one partition."""
    return Block([element for piece in _read_pieces(index, directory, out) for element in piece])


def _shuffle(
    bag: db.Bag, directory: str, n_out: int, kind: str,
    write: t.Callable[[t.Any, str, int, int], np.ndarray], read: t.Callable[[np.ndarray, str, int], Block],
) -> db.Bag:
    """The file shuffle's graph: a ``write`` task per input partition (given its elements, its file,
    ``n_out`` and its own number), one barrier, and a ``read`` task per output partition."""
    n_in = bag.npartitions
    token = tokenize(bag.name, directory, n_out, kind)
    write_name, barrier, read_name = f"{kind}-write-{token}", f"{kind}-index-{token}", f"{kind}-read-{token}"
    here = FileSystems.join(directory, token)
    dsk: dict[t.Any, t.Any] = {
        (write_name, p): (write, (bag.name, p), _piece_file(here, p), n_out, p) for p in range(n_in)
    }
    dsk[barrier] = (_index, *[(write_name, p) for p in range(n_in)])
    dsk.update({(read_name, j): (read, barrier, here, j) for j in range(n_out)})
    graph = HighLevelGraph.from_collections(read_name, dsk, dependencies=[bag])
    return db.Bag(graph, read_name, n_out)


def group_by_key(bag: db.Bag, directory: str, n_out: int | None = None) -> db.Bag:
    """A bag of (key, value) -> a bag of Blocks of (key, [values]), one entry per distinct key, in
    ``n_out`` partitions (default: as many as the input); the pieces are written under ``directory``."""
    return _shuffle(bag, directory, n_out or bag.npartitions, "gbk", _write_by_key, _read_group)


def redistribute(bag: db.Bag, directory: str, n_out: int) -> db.Bag:
    """Beam's Reshuffle: the same elements, dealt round-robin from every input partition over
    ``n_out`` partitions, so that a few heavy elements (a file's byte ranges) in one partition
    become tasks that different workers can run. The pieces are written under ``directory``."""
    return _shuffle(bag, directory, n_out, "reshuffle", _write_round_robin, _read_concat)
