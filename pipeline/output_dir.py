"""The life of a run's output directory: claim, refuse, resume, or replace, and say which.

A finished run ends with ``_SUCCESS``, written last; nothing else makes a directory look
complete. A directory with our ``_RUN.json`` but no ``_SUCCESS`` is an interrupted run: its
outputs are cleared and the run starts again, which with deterministic ids gives exactly the
documents an uninterrupted run would. A non-empty directory that is not ours is never touched,
and neither is ``/``, an empty path, or the git repository the command runs in.
Paths go through Beam's FileSystems, so the same logic works on gs:// and s3://.

One writer per output. Before it clears or writes anything, a run claims the directory with a
``_CLAIM`` file naming it (host, pid, start time, run id, heartbeat); it checks the claim is still its own
before writing ``_SUCCESS`` and removes it at the end, whether the run succeeded or failed. A
second run finds the claim and stops, naming the holder. What each filesystem guarantees:

- Local disks (and NFS, whose exclusive create is atomic since v3): the claim is made with
  ``O_CREAT | O_EXCL``, so of two runs that race exactly one holds it.
- gs:// and s3://: Beam's FileSystems has no conditional create, so the claim is a check, a write
  and a read-back. Two runs that start within the same second or so can both pass; the check
  before ``_SUCCESS`` then stops the one whose claim was overwritten, but the outputs may mix.
  One orchestrator per output (as the DAG has: one task per batch) is what keeps them apart there.

While a run holds its claim, a daemon thread rewrites it every ``HEARTBEAT_SECONDS`` with a fresh
``heartbeat`` (locally via a temp file and ``os.replace``, so no reader sees half a claim), for as
long as the claim is still its own. A claim is stale when, on this host, no process of its pid is
alive, or, from any host, when its last heartbeat (``started`` in claims without one) is over
``STALE_AFTER_SECONDS`` old: a worker killed outright (OOM) leaves a claim its retry elsewhere
takes over by itself. A stale claim is taken over (logged as a warning), serialised by an exclusive
guard file named after its run id: at most one run replaces a given stale claim, and it re-reads
the claim under the guard (a new heartbeat calls the takeover off) before the atomic ``os.replace``.

Heartbeats are wall-clock UTC times judged by another host's clock, which assumes hosts agree
within a minute or so (NTP). Ten minutes, twenty missed heartbeats, leaves room for that skew, a
slow object-store write or a stalled worker, and still frees a killed run's output within minutes.
A run frozen for longer (a suspended VM) may wake to find its claim taken: its heartbeat stops and
its check before ``_SUCCESS`` refuses to finish, but files it wrote meanwhile may mix with the
new holder's.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.inputs import local_path

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
RUN_INFO = "_RUN.json"
STATS = "stats.json"
CLAIM = "_CLAIM"

# Read when used, so tests may monkeypatch them. Why these values: see the module docstring.
HEARTBEAT_SECONDS = 30.0  # how often a run refreshes its claim
STALE_AFTER_SECONDS = 600.0  # a claim silent this long is stale from any host
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC, whole seconds: ``started`` and ``heartbeat``


class OutputDirError(ValueError):
    """The output directory cannot be used as asked; the message says why and what to do."""


class ClaimBusy(OutputDirError):
    """Another run holds the output and may still be alive: trying again later can succeed."""

    def __init__(self, message: str, holder: Claim) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Claim:
    """Who holds an output directory; the JSON content of ``_CLAIM``."""

    host: str
    pid: int
    started: str
    run_id: str
    heartbeat: str | None = None  # last refresh by the holder; claims from before heartbeats lack it

    @classmethod
    def new(cls) -> Claim:
        now = _now()
        return cls(socket.gethostname(), os.getpid(), now, uuid.uuid4().hex, heartbeat=now)

    @property
    def last_seen(self) -> str:
        return self.heartbeat or self.started

    def stale(self) -> str | None:
        """Why the holder is presumed gone, or None while it may be alive.

        Its pid is checked only on this host; a recycled pid makes a dead run look alive, which
        the heartbeat rule then catches. An unreadable time is never stale: refuse, not clobber.
        """
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return "its process is gone"
        age = _age(self.last_seen)
        if age is not None and age > STALE_AFTER_SECONDS:
            return f"no heartbeat for over {_span(STALE_AFTER_SECONDS)}"
        return None

    def describe(self) -> str:
        return (f"host {self.host}, pid {self.pid}, started {self.started}, "
                f"last heartbeat {self.heartbeat or 'none'}, run id {self.run_id}")


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
        stop = threading.Event()
        beating = threading.Thread(target=self._heartbeat, args=(mine, stop), daemon=True,
                                   name=f"claim-heartbeat-{mine.run_id}")
        beating.start()
        try:
            yield mine
        finally:
            stop.set()
            beating.join(timeout=60)  # before the release, so that no late beat writes the claim back
            if beating.is_alive():
                log.warning("%s: the claim's heartbeat is still writing; releasing the claim anyway", self.root)
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
            why = holder.stale()
            if why is None:
                raise self._busy(holder)
            guard = f"{path}.takeover-{holder.run_id}"
            try:
                _create_exclusive(guard, mine)
            except FileExistsError:
                raise OutputDirError(f"{self.root}: another run is taking over the stale claim of "
                                     f"{holder.describe()}; if none is, delete {guard}") from None
            if self._read_claim() == holder:
                log.warning("%s: taking over the stale claim of a run presumed gone, as %s (%s)",
                            self.root, why, holder.describe())
                os.replace(guard, path)
                return
            os.remove(guard)  # someone else took it over first, or it beat again; look again
        raise OutputDirError(f"{self.root}: {path} stays unreadable; if no run is writing here, delete it")

    def _claim_remote(self, mine: Claim) -> None:
        holder = self._read_claim()
        why = holder.stale() if holder is not None else None
        if holder is not None and why is None:
            raise self._busy(holder)
        if holder is not None:
            log.warning("%s: taking over the stale claim of a run presumed gone, as %s (%s)",
                        self.root, why, holder.describe())
        self.write_json(CLAIM, asdict(mine))
        now = self._read_claim()
        if now != mine:
            if now is None:
                raise OutputDirError(f"{self.root}: could not claim {self.path(CLAIM)}")
            raise self._busy(now)

    def _heartbeat(self, mine: Claim, stop: threading.Event) -> None:
        """Beat every HEARTBEAT_SECONDS until ``stop``, or until the claim is no longer ours."""
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                if not self._beat(mine):
                    return
            except Exception as exc:  # noqa: BLE001 - a missed beat is not fatal; twenty in a row are
                log.warning("%s: could not refresh the heartbeat of %s (%s); trying again in %s",
                            self.root, self.path(CLAIM), exc, _span(HEARTBEAT_SECONDS))

    def _beat(self, mine: Claim) -> bool:
        """Rewrite our claim with a fresh heartbeat; False once the claim is another run's."""
        path, temp, beat = self.path(CLAIM), self._beat_temp(mine), replace(mine, heartbeat=_now())
        if self.local:  # written before the check, so that the replace follows it at once
            _write_synced(temp, beat, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
        holder = self._read_claim()
        if holder is None or holder.run_id != mine.run_id:
            if self.local:
                os.remove(temp)
            if holder is None:  # deleted by hand, or not readable just now: never written back
                log.warning("%s: cannot read this run's claim %s; its heartbeat waits for it", self.root, path)
                return True
            log.error("%s: this run's claim was taken over (%s); it will not write %s",
                      self.root, holder.describe(), SUCCESS)
            return False
        if self.local:
            os.replace(temp, path)
        else:  # an object is replaced whole: readers see the old claim or the new one
            self.write_json(CLAIM, asdict(beat))
        return True

    def _beat_temp(self, mine: Claim) -> str:
        return f"{self.path(CLAIM)}.heartbeat-{mine.run_id}"

    def _check_still_mine(self, mine: Claim) -> None:
        holder = self._read_claim()
        if holder is None or holder.run_id != mine.run_id:
            now = holder.describe() if holder else "no claim"
            raise OutputDirError(f"{self.root}: this run's claim was taken ({now}); not writing {SUCCESS}, "
                                 "as another run may have written here too")

    def _release(self, mine: Claim) -> None:
        try:
            if self.local and os.path.exists(self._beat_temp(mine)):
                os.remove(self._beat_temp(mine))  # left by a beat that failed between write and replace
            holder = self._read_claim()
            if holder is not None and holder.run_id == mine.run_id:
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

    def _busy(self, holder: Claim) -> ClaimBusy:
        after = _later(holder.last_seen, STALE_AFTER_SECONDS)
        return ClaimBusy(
            f"{self.root} is being written by another run ({holder.describe()}); wait for it to finish. "
            f"If that run is gone, its claim is taken over automatically once silent for {_span(STALE_AFTER_SECONDS)}"
            f"{f' (from {after})' if after else ''}, or delete {self.path(CLAIM)} to take over now",
            holder,
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
    _write_synced(path, claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)


def _write_synced(path: str, claim: Claim, flags: int) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, json.dumps(asdict(claim)).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_claim(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(CLAIM)


def _now() -> str:
    return time.strftime(TIME_FORMAT, time.gmtime())


def _epoch(stamp: str) -> float | None:
    """A TIME_FORMAT stamp in seconds since the epoch; None when it is not one."""
    try:
        return calendar.timegm(time.strptime(stamp, TIME_FORMAT))
    except (TypeError, ValueError):
        return None


def _age(stamp: str) -> float | None:
    """Seconds since ``stamp`` by this host's clock; None when it is not a time."""
    then = _epoch(stamp)
    return None if then is None else time.time() - then


def _later(stamp: str, seconds: float) -> str | None:
    then = _epoch(stamp)
    return None if then is None else time.strftime(TIME_FORMAT, time.gmtime(then + seconds))


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"
