"""Fixtures the pipeline tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real 2-worker dask LocalCluster (one per test module); yields the scheduler address.

    Workers are not daemonic: extraction runs in a child process per worker (pipeline.time_limit),
    and a daemonic process may not start children.
    """
    dask = pytest.importorskip("dask", reason="install the dask extra: pip install -e '.[dask]'")
    distributed = pytest.importorskip("dask.distributed")
    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address
