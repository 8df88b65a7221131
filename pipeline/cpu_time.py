"""CPU seconds a run costs on this machine: this process plus every process it started.

``resource.getrusage`` alone misses work: RUSAGE_CHILDREN only counts children that were waited
for, and the extraction child (pipeline.time_limit) or a DirectRunner worker can still be alive
when the pipeline returns. So the meter also reads the live descendants' CPU with psutil, and
subtracts what the processes that existed before the run had already used.

Only runners whose work happens in this process tree can be measured this way: the DirectRunner,
and Dask when it starts its own LocalCluster. A remote runner's CPU is on other machines.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from types import TracebackType

# A process is identified by (pid, start time): a pid can be reused within one run.
_ProcessKey = tuple[int, float]

LOCAL_RUNNERS = ("DirectRunner", "pipeline.dask_runner.DaskRunner")


def runs_locally(runner: str | None, beam_args: Sequence[str]) -> bool:
    """True when every worker of the run is a descendant of this process, so its CPU is measurable."""
    if (runner or "DirectRunner") not in LOCAL_RUNNERS:
        return False
    # A Dask runner given a scheduler address runs on that cluster's workers, not ours.
    return not any(arg.startswith("--dask_client_address") for arg in beam_args)


def _rusage_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _descendants_cpu() -> dict[_ProcessKey, float]:
    """CPU seconds so far of every live (or not yet reaped) descendant, with its own reaped children."""
    import psutil  # imported here: only runs that are measured need it

    found: dict[_ProcessKey, float] = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            found[(child.pid, child.create_time())] = (
                times.user + times.system + times.children_user + times.children_system
            )
        except psutil.Error:  # it ended between the listing and the read; the reaper counted it
            continue
    return found


class ProcessTreeCpu:
    """``with ProcessTreeCpu() as cpu: ...`` then ``cpu.seconds``: user+system CPU of the block."""

    def __init__(self) -> None:
        self.seconds: float = 0.0
        self._self_start = self._children_start = 0.0
        self._live_start: dict[_ProcessKey, float] = {}

    def __enter__(self) -> ProcessTreeCpu:
        self._self_start = _rusage_seconds(resource.RUSAGE_SELF)
        self._children_start = _rusage_seconds(resource.RUSAGE_CHILDREN)
        self._live_start = _descendants_cpu()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.seconds = self.read()

    def read(self) -> float:
        """CPU seconds since the block started (also usable inside it)."""
        own = _rusage_seconds(resource.RUSAGE_SELF) - self._self_start
        reaped = _rusage_seconds(resource.RUSAGE_CHILDREN) - self._children_start
        live_now = _descendants_cpu()
        live = sum(cpu - self._live_start.get(key, 0.0) for key, cpu in live_now.items())
        # A process that was alive at the start and was reaped since is counted whole in
        # RUSAGE_CHILDREN, including what it used before the block: take that part back out.
        reaped_before = sum(cpu for key, cpu in self._live_start.items() if key not in live_now)
        return max(own + reaped + live - reaped_before, 0.0)
