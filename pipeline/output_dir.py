"""The life of a run's output directory: claim, refuse, resume, or replace, and say which.

A finished run ends with ``_SUCCESS``, written last; nothing else makes a directory look
complete. A directory with our ``_RUN.json`` but no ``_SUCCESS`` is an interrupted run: its
outputs are cleared and the run starts again, which with deterministic ids gives exactly the
documents an uninterrupted run would. A non-empty directory that is not ours is never touched,
and neither is ``/``, an empty path, or the git repository the command runs in.
Paths go through Beam's FileSystems, so the same logic works on gs:// and s3://.

One writer per output. Before it clears or writes anything, a run claims the directory with a
``_CLAIM`` file naming it (host, pid, start time, run id); it checks the claim is still its own
before writing ``_SUCCESS`` and removes it at the end, whether the run succeeded or failed. A
second run finds the claim and stops, naming the holder. What each filesystem guarantees:

- Local disks (and NFS, whose exclusive create is atomic since v3): the claim is made with
  ``O_CREAT | O_EXCL``, so of two runs that race exactly one holds it.
- gs:// and s3://: Beam's FileSystems has no conditional create, so the claim is a check, a write
  and a read-back. Two runs that start within the same second or so can both pass; the check
  before ``_SUCCESS`` then stops the one whose claim was overwritten, but the outputs may mix.
  One orchestrator per output (as the DAG has: one task per batch) is what keeps them apart there.

A claim is stale only when it is provably gone: on this host, with no live process of its pid.
A stale claim is taken over (logged as a warning). Takeover is serialised by an exclusive guard
file named after the stale claim's run id, so at most one run replaces a given stale claim, and
it re-reads the claim under the guard before the atomic ``os.replace``. A claim from another host
is never presumed dead: the error names the file to delete once that run is known to be gone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.inputs import local_path

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
RUN_INFO = "_RUN.json"
STATS = "stats.json"
CLAIM = "_CLAIM"


class OutputDirError(ValueError):
    """The output directory cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Claim:
    """Who holds an output directory; the JSON content of ``_CLAIM``."""

    host: str
    pid: int
    started: str
    run_id: str

    @classmethod
    def new(cls) -> Claim:
        return cls(socket.gethostname(), os.getpid(), _now(), uuid.uuid4().hex)

    def alive(self) -> bool:
        """False only when provably gone: on this host, with no process of that pid.

        A recycled pid makes a dead run look alive, which refuses rather than clobbers.
        """
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
        return True

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}, run id {self.run_id}"


class OutputDir:
    def __init__(self, root: str) -> None:
        self.root = checked_root(root)
        self._claim: Claim | None = None

    def path(self, *parts: str) -> str:
        return FileSystems.join(self.root, *parts)

    @property
    def local(self) -> bool:
        return "://" not in self.root

    @property
    def complete(self) -> bool:
        return FileSystems.exists(self.path(SUCCESS))

    def run_info(self) -> dict[str, Any]:
        """What ``prepare`` recorded, or {} when there is no ``_RUN.json``."""
        if not FileSystems.exists(self.path(RUN_INFO)):
            return {}
        with FileSystems.open(self.path(RUN_INFO)) as handle:
            return json.loads(handle.read().decode("utf-8"))

    @contextmanager
    def claimed(self) -> Iterator[Claim]:
        """Hold this directory's claim for the block; raise OutputDirError naming a live holder."""
        self._refuse_foreign()
        mine = Claim.new()
        if self.local:
            self._claim_local(mine)
        else:
            self._claim_remote(mine)
        self._claim = mine
        try:
            yield mine
        finally:
            self._claim = None
            self._release(mine)

    def prepare(self, run_info: dict[str, Any], overwrite: bool = False) -> None:
        """Make the directory ready for a fresh run; raise if that would clobber something."""
        if self.complete and not overwrite:
            raise OutputDirError(f"{self.root} holds a complete run; pass --overwrite to replace it")
        self._refuse_foreign()
        existing = [p for p in self._children() if not _is_claim(p)]
        if existing:
            why = "replacing the complete run (--overwrite)" if self.complete else "clearing an interrupted run"
            log.info("%s: %s", self.root, why)
            # _SUCCESS goes first, so a crash while clearing never leaves a "complete" partial dir.
            if self.complete:
                FileSystems.delete([self.path(SUCCESS)])
            self._delete([p for p in existing if not p.endswith(SUCCESS)])
        claim = {"claim": asdict(self._claim)} if self._claim else {}
        self.write_json(RUN_INFO, {**run_info, **claim, "started": _now()})

    def finish(self, stats: dict[str, Any]) -> None:
        self.write_json(STATS, stats)
        if self._claim:
            self._check_still_mine(self._claim)
        self.write_text(SUCCESS, _now() + "\n")

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def write_text(self, name: str, text: str) -> None:
        with FileSystems.create(self.path(name)) as handle:
            handle.write(text.encode("utf-8"))

    def read_json_lines(self, pattern: str) -> Iterator[dict[str, Any]]:
        """Rows of the JSON-lines files under this directory that match ``pattern``."""
        for result in FileSystems.match([self.path(pattern)]):
            for meta in sorted(result.metadata_list, key=lambda m: m.path):
                with FileSystems.open(meta.path) as handle:
                    for line in handle.read().decode("utf-8").splitlines():
                        if line.strip():
                            yield json.loads(line)

    # -- the claim -------------------------------------------------------------------------------

    def _claim_local(self, mine: Claim) -> None:
        os.makedirs(self.root, exist_ok=True)
        path = self.path(CLAIM)
        for _ in range(20):  # a holder may release, or a claim be half written, while we look
            try:
                _create_exclusive(path, mine)
                return
            except FileExistsError:
                holder = self._read_claim()
            if holder is None:
                time.sleep(0.05)
                continue
            if holder.alive():
                raise self._busy(holder)
            guard = f"{path}.takeover-{holder.run_id}"
            try:
                _create_exclusive(guard, mine)
            except FileExistsError:
                raise OutputDirError(f"{self.root}: another run is taking over the stale claim of "
                                     f"{holder.describe()}; if none is, delete {guard}") from None
            if self._read_claim() == holder:
                log.warning("%s: taking over the stale claim of a run that is gone (%s)",
                            self.root, holder.describe())
                os.replace(guard, path)
                return
            os.remove(guard)  # someone else took it over first; look again
        raise OutputDirError(f"{self.root}: {path} stays unreadable; if no run is writing here, delete it")

    def _claim_remote(self, mine: Claim) -> None:
        holder = self._read_claim()
        if holder is not None and holder.alive():
            raise self._busy(holder)
        if holder is not None:
            log.warning("%s: taking over the stale claim of a run that is gone (%s)",
                        self.root, holder.describe())
        self.write_json(CLAIM, asdict(mine))
        now = self._read_claim()
        if now != mine:
            if now is None:
                raise OutputDirError(f"{self.root}: could not claim {self.path(CLAIM)}")
            raise self._busy(now)

    def _check_still_mine(self, mine: Claim) -> None:
        holder = self._read_claim()
        if holder != mine:
            now = holder.describe() if holder else "no claim"
            raise OutputDirError(f"{self.root}: this run's claim was taken ({now}); not writing {SUCCESS}, "
                                 "as another run may have written here too")

    def _release(self, mine: Claim) -> None:
        try:
            if self._read_claim() == mine:
                FileSystems.delete([self.path(CLAIM)])
        except Exception as exc:  # noqa: BLE001 - the run's own outcome matters more; say what is left
            log.warning("%s: could not remove %s (%s); delete it by hand", self.root, self.path(CLAIM), exc)

    def _read_claim(self) -> Claim | None:
        """The current holder; None when there is no claim or it is not (yet) readable."""
        try:
            with FileSystems.open(self.path(CLAIM)) as handle:
                return Claim(**json.loads(handle.read().decode("utf-8")))
        except Exception:  # noqa: BLE001 - missing, half written or foreign: callers treat all as "none yet"
            return None

    def _busy(self, holder: Claim) -> OutputDirError:
        return OutputDirError(
            f"{self.root} is being written by another run ({holder.describe()}); wait for it to finish, "
            f"or if that run is gone, delete {self.path(CLAIM)}"
        )

    # -- listing and clearing ---------------------------------------------------------------------

    def _refuse_foreign(self) -> None:
        contents = [p for p in self._children() if not _is_claim(p)]
        if contents and not FileSystems.exists(self.path(RUN_INFO)):
            raise OutputDirError(
                f"{self.root} is not empty and was not written by refinery; choose another --output")

    def _children(self) -> Iterator[str]:
        """Everything directly in the directory; locally that includes subdirectories (Beam's
        match lists files only), so that clearing a run clears its documents/ too."""
        if self.local:
            if os.path.isdir(self.root):
                yield from (os.path.join(self.root, name) for name in sorted(os.listdir(self.root)))
            return
        if not FileSystems.exists(self.root):
            return
        for result in FileSystems.match([self.path("*")]):
            for meta in result.metadata_list:
                yield meta.path

    def _delete(self, paths: list[str]) -> None:
        if not self.local:
            FileSystems.delete(paths)
            return
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def checked_root(root: str) -> str:
    """``root`` without a trailing slash or ``file://``; refuses paths no run should clear.

    ``/`` used to strip to an empty path and so write into the current directory.
    """
    if not root.strip():
        raise OutputDirError("--output is empty; name a directory for this run's outputs")
    path = local_path(root)
    stripped = path.rstrip("/")
    if not stripped or ("://" in path and not path.split("://", 1)[1].strip("/")):  # "/", "file:///", "gs://"
        raise OutputDirError(
            f"--output {root!r} is the root of a filesystem or bucket; name a directory under it")
    if "://" in stripped:
        return stripped
    real = os.path.realpath(stripped)
    if real == os.path.realpath(os.sep):
        raise OutputDirError(f"--output {root!r} is the filesystem root; name a directory under it")
    if real == _git_root(os.getcwd()):
        raise OutputDirError(f"--output {root!r} is the root of the git repository you are in; "
                             "name a directory for this run's outputs")
    return stripped


def _git_root(start: str) -> str | None:
    """The nearest directory at or above ``start`` holding ``.git`` (a folder, or a file in worktrees)."""
    here = os.path.realpath(start)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _create_exclusive(path: str, claim: Claim) -> None:
    """Create ``path`` holding ``claim``, or raise FileExistsError: the atomic step of the protocol."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        os.write(fd, json.dumps(asdict(claim)).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_claim(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(CLAIM)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
