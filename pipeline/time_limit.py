"""Run a function in a child process so a runaway call can be killed after a wall-time limit.

trafilatura (lxml underneath) can spin for minutes on a pathological page, and a Python thread
cannot be interrupted while it sits in C code; ``signal.alarm`` only works in the main thread,
which a Beam worker does not give us. A long-lived child process, restarted only after a timeout,
costs one pickle of the page per call, small next to the extraction itself.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)


class CallTimeout(Exception):
    """The call did not finish within the limit; the child was killed."""


class ChildError(Exception):
    """The function raised in the child; the message carries its type and text."""


def _serve(conn: Connection, target: str, bound: tuple[Any, ...]) -> None:
    module_name, _, attr = target.partition(":")
    fn = getattr(importlib.import_module(module_name), attr)
    while True:
        try:
            raw, args = conn.recv()
            if raw:
                args = (conn.recv_bytes(), *args)
        except EOFError:
            return
        try:
            conn.send((True, fn(*args, *bound)))
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent, never fatal
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class TimeLimitedFunction:
    """Calls ``module:function`` in a child process; ``call`` raises CallTimeout past the limit.

    The child is started lazily and restarted after a timeout or a crash, so one bad page costs
    one restart, never the worker. Two things keep a call cheap next to a 2 ms extraction: ``bound``
    arguments (the options) go to the child once, when it starts, and are appended to every call;
    a ``bytes`` first argument (the page) crosses the pipe as raw bytes, never pickled (measured
    on the shared pages, averaging 150 kB: 220-300 us a round trip pickled, 120-150 us raw).
    """

    def __init__(self, target: str, timeout_seconds: float, bound: tuple[Any, ...] = ()) -> None:
        self._target = target
        self._timeout = timeout_seconds
        self._bound = bound
        self._ctx = mp.get_context("spawn")  # fork is unsafe in a process that runs gRPC threads
        self._proc: Any = None
        self._conn: Connection | None = None

    def call(self, *args: Any) -> Any:
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None
        try:
            raw = bool(args) and isinstance(args[0], bytes)
            self._conn.send((raw, args[1:] if raw else args))
            if raw:
                self._conn.send_bytes(args[0])
            if not self._conn.poll(self._timeout):
                self._kill()
                raise CallTimeout(f"no answer within {self._timeout:g} s")
            ok, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            self._kill()
            raise ChildError(f"extraction process died: {type(exc).__name__}") from None
        if not ok:
            raise ChildError(value)
        return value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc = self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child, self._target, self._bound), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
