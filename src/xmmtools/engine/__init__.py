"""The Dask engine (``--engine dask``): where a stage runs, not what it computes.

A stage's science is a pure function of one table chunk (docs/architecture.md, rule 1); the
local engine calls it chunk after chunk in this process, the Dask engine calls *the same
function* on each partition of the input on a Dask cluster:

* ``--scheduler ADDRESS``: a running scheduler (dask-jobqueue, dask-kubernetes, ``dask
  scheduler``); nothing is started or stopped.
* else a ``LocalCluster`` of ``--workers N`` workers (default 2) started for the command and
  closed after it.

Partitions are the input's own: the HEALPix pixels of a HATS catalogue (each worker reads its
pixel's Parquet file itself, the driver never holds the catalogue), or row chunks of a file.
Results come back in input order, so a row-wise stage writes byte for byte what the local
engine writes.  This package sits on the stage-I/O floor: it imports tables and schema, never a
stage.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from xmmtools.errors import DataError

#: partitions in flight per worker thread: enough to keep workers busy, few enough that the
#: driver's memory stays bounded
IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class Engine:
    """``--engine``, ``--scheduler``, ``--workers`` of a command."""

    name: str = "local"
    scheduler: str | None = None
    workers: int | None = None

    @property
    def dask(self) -> bool:
        return self.name == "dask"

    def describe(self) -> dict[str, Any]:
        """For the provenance: where the stage ran (the results do not depend on it)."""
        if not self.dask:
            return {"engine": "local"}
        return {"engine": "dask", "scheduler": self.scheduler or f"LocalCluster({self.workers or 2} workers)"}


def from_options(engine: str = "local", scheduler: str | None = None, workers: int | None = None) -> Engine:
    if engine != "dask" and (scheduler or workers):
        raise DataError("--scheduler and --workers need --engine dask")
    if scheduler and workers:
        raise DataError("give --scheduler ADDRESS (a running cluster) or --workers N (a local one), not both")
    return Engine(engine, scheduler, workers)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DataError("--engine dask needs Dask: pip install 'xmmtools[scale]' (dask, distributed, lsdb)") from None
    return distributed


@contextlib.contextmanager
def session(engine: Engine) -> Iterator[Any]:
    """A ``distributed.Client`` for the engine (None for the local engine); a LocalCluster
    started here is closed on exit, a remote scheduler is left running."""
    if not engine.dask:
        yield None
        return
    distributed = _distributed()
    import logging

    for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if engine.scheduler:
        try:
            client = distributed.Client(engine.scheduler, timeout="30s")
        except OSError as e:
            raise DataError(f"--scheduler {engine.scheduler}: cannot connect ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    # threads (processes=False): the stage functions release the GIL in numpy; no pickling of
    # models between processes, and nothing to clean up if the command is interrupted
    cluster = distributed.LocalCluster(
        n_workers=engine.workers or 2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def n_threads(client: Any) -> int:
    return max(1, sum(client.nthreads().values()))


def map_ordered(client: Any, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
    """``fn(item)`` for every item on the cluster, yielded in the items' order, with at most
    ``IN_FLIGHT_PER_WORKER`` tasks per worker thread outstanding (bounded driver memory)."""
    limit = IN_FLIGHT_PER_WORKER * n_threads(client)
    pending: deque[Any] = deque()
    try:
        for item in items:
            pending.append(client.submit(fn, item, pure=False))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
