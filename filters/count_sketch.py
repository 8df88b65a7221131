"""A fixed-size upper bound of how often each key occurs: a count-min sketch (Cormode and
Muthukrishnan 2005), summed over a corpus so that keys seen too rarely to matter skip a shuffle.

Line dedup needs lines in more than ``max_documents`` pages; near-dedup needs LSH buckets with two
or more members. Both used to group every key with its documents, and most keys of the web occur
once: a runner that groups in memory (the DirectRunner) held one entry per distinct key of the
run, so a worker's memory grew with the input. Summed into this table first, a key whose bound
is below the limit cannot reach it and needs no exact count.

The bound is never low (each row counts the key plus whatever else falls in its cell, and the
minimum over rows is taken), so filtering with it loses nothing; it is loose only when the table
is crowded, which costs shuffle, never correctness. Keys must already be uniform 64-bit hashes
(line hashes and LSH bucket ids are BLAKE2b), so one multiply-shift per row spreads them
(Dietzfelbinger et al. 1997).
"""

from __future__ import annotations

import numpy as np

# Odd 64-bit multipliers, one per row.
_ROW_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_ROWS = len(_ROW_MULTIPLIERS)
SATURATED = 255
# Cells added between two foldings of the pending ones into the table.
_FOLD_EVERY = 1 << 16
# A sparse table turns dense once its non-zero cells pass this share of all cells: from there on,
# 1 byte per cell is cheaper than 9 bytes (index and count) per non-zero cell.
_DENSE_SHARE = 1 / 16


def check_cells(cells: int, key: str = "sketch cells") -> int:
    """``cells`` if it is a usable table width (a power of two >= 2: multiply-shift needs it), else
    a ValueError naming ``key``, the config key that set it."""
    if cells < 2 or cells & (cells - 1):
        raise ValueError(f"{key} must be a power of two >= 2, got {cells}")
    return cells


class CountSketch:
    """Per key, at least the number of times it was added; counters saturate at 255.

    Up to ``2 x cells`` one-byte counters, but held sparse (sorted non-zero cells and their counts)
    until a sixteenth of them are non-zero: a small run's sketch, and each bundle's partial sketch
    (a runner may decode all of them at once to merge them), cost what their keys cost, not the
    table. Pickled, only non-zero cells are kept.
    """

    def __init__(self, cells: int) -> None:
        self.cells = check_cells(cells)
        self._shift = np.uint64(65 - cells.bit_length())  # 64 - log2(cells)
        self._dense: np.ndarray | None = None  # _ROWS * cells counts, once dense
        self._at = np.empty(0, dtype=np.int64)  # sparse: sorted flat cell indices...
        self._count = np.empty(0, dtype=np.uint8)  # ...and their counts
        self._pending: list[np.ndarray] = []  # flat cells added since the last fold
        self._pending_size = 0

    def _flat_cells(self, keys: np.ndarray) -> np.ndarray:
        """(rows, len(keys)) flat indices: row r's cell of each key, offset by r * cells."""
        h = np.asarray(keys, dtype=np.int64).view(np.uint64)
        with np.errstate(over="ignore"):
            cells = [((h * np.uint64(m)) >> self._shift).astype(np.int64) + r * self.cells
                     for r, m in enumerate(_ROW_MULTIPLIERS)]
        return np.stack(cells) if cells[0].size else np.empty((_ROWS, 0), dtype=np.int64)

    def add(self, keys: np.ndarray) -> None:
        """Count each of ``keys`` once (a key listed twice counts twice)."""
        flat = self._flat_cells(keys).ravel()
        self._pending.append(flat)
        self._pending_size += flat.size
        if self._pending_size >= _FOLD_EVERY:
            self._fold_pending()

    def merge(self, other: CountSketch) -> None:
        if other.cells != self.cells:
            raise ValueError(f"cannot merge sketches of {self.cells} and {other.cells} cells")
        self._fold_pending()
        self._fold(*other._nonzero())

    def upper_bounds(self, keys: np.ndarray) -> np.ndarray:
        """Per key, at least the number of times it was added (the minimum over the rows)."""
        self._fold_pending()
        flat = self._flat_cells(keys)
        if self._dense is not None:
            counts = self._dense[flat]
        else:
            pos = np.minimum(np.searchsorted(self._at, flat), max(self._at.size - 1, 0))
            found = (self._at[pos] == flat) if self._at.size else np.zeros(flat.shape, dtype=bool)
            counts = np.where(found, self._count[pos] if self._count.size else 0, 0)
        return counts.min(axis=0).astype(np.uint8)

    def _fold_pending(self) -> None:
        if self._pending:
            at, times = np.unique(np.concatenate(self._pending), return_counts=True)
            self._pending, self._pending_size = [], 0
            self._fold(at, times)

    def _fold(self, at: np.ndarray, times: np.ndarray) -> None:
        """Add ``times`` at the (unique) flat cells ``at``."""
        if self._dense is None and self._at.size + at.size > _DENSE_SHARE * _ROWS * self.cells:
            self._dense = np.zeros(_ROWS * self.cells, dtype=np.uint8)
            self._dense[self._at] = self._count
            self._at, self._count = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8)
        if self._dense is not None:
            self._dense[at] = np.minimum(self._dense[at].astype(np.int64) + times, SATURATED)
            return
        cells, where = np.unique(np.concatenate([self._at, at]), return_inverse=True)
        sums = np.zeros(cells.size, dtype=np.int64)
        np.add.at(sums, where, np.concatenate([self._count.astype(np.int64), np.asarray(times, dtype=np.int64)]))
        self._at, self._count = cells, np.minimum(sums, SATURATED).astype(np.uint8)

    def _nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        self._fold_pending()
        if self._dense is None:
            return self._at, self._count
        at = np.flatnonzero(self._dense)
        return at, self._dense[at]

    def __getstate__(self) -> dict[str, object]:
        at, count = self._nonzero()
        return {"cells": self.cells, "at": at, "count": count}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(int(state["cells"]))  # type: ignore[misc, arg-type]
        self._fold(state["at"], state["count"])  # type: ignore[arg-type]
