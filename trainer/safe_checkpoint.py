"""Read DCP checkpoints without running code from them.

``torch.distributed.checkpoint`` reads a checkpoint's ``.metadata`` with plain ``pickle.load`` and
its non-tensor entries with ``torch.load(weights_only=False)``, so a crafted checkpoint runs whatever
it names the moment ``eval``, ``generate``, ``export-hf`` or ``pretrain --resume`` opens it.
:func:`load` is ``dcp.load`` with both doors shut:

* ``.metadata`` goes through an unpickler that builds only :data:`METADATA_GLOBALS`, the classes DCP
  metadata is made of (below), and refuses any other global, naming the file and the global;
* byte entries (our JSON strings, the optimizer's ``param_groups``) go through
  ``torch.load(weights_only=True)``, the same as DCP already does for tensors.

``.metadata`` is read once before DCP starts, so a missing or corrupt one is one line naming the
file, instead of the two logged tracebacks DCP prints while it falls back to per-rank metadata.

Where :data:`METADATA_GLOBALS` comes from: every ``find_class`` call made while unpickling the
``.metadata`` of real checkpoints written by ``trainer.train`` under torch 2.13 (one process, and two
FSDP2 ranks under torchrun). They are DCP's own dataclasses, ``torch.Size``, the enum DCP uses to
encode a memory format, torch's layout lookup, and ``pathlib.PosixPath`` (``StorageMeta.checkpoint_id``).
Any ``torch.dtype`` is allowed too (a bf16 run stores ``torch.bfloat16``): dtypes are inert constants.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.filesystem import FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

_METADATA_NAME = ".metadata"  # torch.distributed.checkpoint.filesystem._metadata_fn
NO_GROUP_WARNING = "torch.distributed is disabled, unavailable or uninitialized"

METADATA_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("torch.distributed.checkpoint.metadata", "Metadata"),
    ("torch.distributed.checkpoint.metadata", "MetadataIndex"),
    ("torch.distributed.checkpoint.metadata", "StorageMeta"),
    ("torch.distributed.checkpoint.metadata", "TensorStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "BytesStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "TensorProperties"),
    ("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.serialization", "_get_layout"),
    ("torch", "Size"),
    ("pathlib", "PosixPath"),
})  # fmt: skip
"""``(module, name)`` pairs a ``.metadata`` may name, besides ``torch.<dtype>``: see the module docstring."""
_DTYPE_NAMES = frozenset(name for name, value in vars(torch).items() if isinstance(value, torch.dtype))


class CheckpointReadError(ValueError):
    """A DCP file that cannot be read (missing, corrupt); the message names the file."""


class UnsafeCheckpointError(CheckpointReadError):
    """A DCP file that would build something other than checkpoint data; names the file and the global."""


class _MetadataUnpickler(pickle.Unpickler):
    """Builds :data:`METADATA_GLOBALS` and dtypes; any other global is refused before it is looked up."""

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in METADATA_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and name in _DTYPE_NAMES:
            return getattr(torch, name)
        raise UnsafeCheckpointError(f"{self.path}: refused to unpickle {module}.{name} (not DCP metadata)")


def read_metadata_file(path: Path) -> Metadata:
    """The ``Metadata`` pickled at ``path``, built by :class:`_MetadataUnpickler` only."""
    try:
        with open(path, "rb") as handle:
            metadata = _MetadataUnpickler(handle, path).load()
    except CheckpointReadError:
        raise
    except OSError as exc:
        raise CheckpointReadError(f"{path}: cannot read DCP metadata: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - EOFError, UnpicklingError, ValueError...: all mean corrupt
        raise CheckpointReadError(f"{path}: cannot read DCP metadata: {exc}") from None
    if not isinstance(metadata, Metadata):
        raise CheckpointReadError(f"{path}: holds a {type(metadata).__name__}, not DCP Metadata")
    return metadata


class SafeFileSystemReader(FileSystemReader):
    """``FileSystemReader`` whose ``read_metadata`` unpickles through :func:`read_metadata_file`.

    Tensors are already read with ``torch.load(weights_only=True)`` by ``FileSystemReader.read_data``;
    byte entries go to the planner, so pair this reader with :class:`WeightsOnlyLoadPlanner`.
    """

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        # DCP passes rank= when it falls back to per-rank metadata (``__<rank>.metadata``).
        rank = kwargs.get("rank")
        name = _METADATA_NAME if rank is None else f"__{rank}{_METADATA_NAME}"
        metadata = read_metadata_file(Path(self.path) / name)
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class WeightsOnlyLoadPlanner(DefaultLoadPlanner):
    """``DefaultLoadPlanner`` that reads byte entries with ``torch.load(weights_only=True)``.

    DCP's own ``load_bytes`` passes ``weights_only=False``; this one refuses a non-allowlisted global
    with :class:`UnsafeCheckpointError` naming the ``.distcp`` file and the global.
    """

    def __init__(self, checkpoint: Path) -> None:
        super().__init__()
        self.checkpoint = checkpoint

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        try:
            obj = torch.load(value, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            value.seek(0)
            refused = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(value))
            what = refused or str(exc).strip().splitlines()[0]
            where = self.checkpoint / self.metadata.storage_data[read_item.storage_index].relative_path
            fqn = read_item.dest_index.fqn
            raise UnsafeCheckpointError(f"{where}: refused to unpickle {what} (entry {fqn!r})") from None
        # As DefaultLoadPlanner.load_bytes, with the object already loaded.
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)
        else:
            self.state_dict[read_item.dest_index.fqn] = obj


def load(state: dict[str, Any], checkpoint: Path) -> None:
    """``dcp.load(state, checkpoint_id=checkpoint)`` through the safe reader and planner (collective).

    Raises :class:`CheckpointReadError` (or :class:`UnsafeCheckpointError`) for our own refusals, taken
    out of DCP's ``CheckpointException`` wrapper; other DCP failures propagate as DCP raises them.
    """
    checkpoint = Path(checkpoint)
    reader = SafeFileSystemReader(checkpoint)
    reader.read_metadata()  # refuse before DCP, whose fallback would log tracebacks first
    try:
        with warnings.catch_warnings():  # DCP warns when there is no process group; one process is fine
            warnings.filterwarnings("ignore", message=NO_GROUP_WARNING)
            dcp.load(state, storage_reader=reader, planner=WeightsOnlyLoadPlanner(checkpoint))
    except CheckpointException as exc:  # a BaseException holding each rank's failure
        for failure, _trace in exc.failures.values():
            if isinstance(failure, CheckpointReadError):
                raise failure from None
        raise
