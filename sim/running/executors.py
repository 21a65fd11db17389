"""Where simulation tasks run: in this process, in local worker processes, or on a Dask cluster.

A task is a plain function call on picklable arguments whose result depends only on those
arguments (the scenario, the topology, the seed and the replication), so every executor gives
identical results; only the order in which results arrive differs. Executors yield each result as
soon as it is ready, so callers can write it to disk at once and lose nothing if interrupted.
A task that raises does not stop the others: its exception is yielded in place of a result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from sim.scenario.errors import ScenarioError

EXECUTORS = ("serial", "processes", "dask")
"""Names of the executors :func:`make_executor` makes."""

Outcome = tuple[Any, Any, BaseException | None]
"""(task, result, error): ``result`` is None when ``error`` is set."""


class Executor:
    """Runs ``fn(task)`` for every task and yields outcomes as they finish."""

    name = "executor"

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (a no-op for executors that hold none)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs tasks one after another in this process: simplest to debug and profile."""

    name = "serial"

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Outcome]:
        for task in tasks:
            try:
                result = fn(task)
            except Exception as exc:
                yield task, None, exc
            else:
                yield task, result, None


class ProcessExecutor(Executor):
    """Runs tasks in local worker processes (default: one per core)."""

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Outcome]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        pending: dict[Future[Any], Any] = {}
        queue = iter(tasks)
        # Keep a bounded number of tasks in flight so that huge sweeps do not pickle everything
        # up front and an interruption leaves little unfinished work behind.
        limit = 2 * self.workers
        for task in queue:
            pending[self._pool.submit(fn, task)] = task
            if len(pending) >= limit:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                error = future.exception()
                yield task, (None if error else future.result()), error
                nxt = next(queue, None)
                if nxt is not None:
                    pending[self._pool.submit(fn, nxt)] = nxt

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Runs tasks on a Dask distributed cluster: an existing scheduler (``address``), or a
    LocalCluster started for the purpose (``address="local"``)."""

    name = "dask"

    def __init__(self, address: str = "local", workers: int | None = None) -> None:
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True
            )
            self.client = Client(self._cluster)
        else:
            self.client = Client(address)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Outcome]:
        from dask.distributed import as_completed

        tasks = list(tasks)
        futures = {self.client.submit(fn, task, pure=False): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            if future.status == "error":
                yield task, None, future.exception()
            else:
                yield task, future.result(), None

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def check_executor(kind: str | Executor | None, workers: int | None) -> None:
    """Raise :class:`ScenarioError` (source ``--executor`` or ``--workers``) for an executor name or
    a worker count that cannot be used; do it before any work starts."""
    if kind is not None and not isinstance(kind, Executor) and kind not in EXECUTORS:
        raise ScenarioError("--executor", [f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})"])
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ScenarioError("--workers", [f"must be a whole number from 1 to {MAX_WORKERS}, not {workers}"])


MAX_WORKERS = 1024
"""Most worker processes an executor starts."""


def make_executor(kind: str = "processes", workers: int | None = None, dask: str | None = None) -> Executor:
    """The executor called ``kind`` (serial, processes, dask); ``dask`` is a scheduler address or
    ``local`` and implies the Dask executor. A scheduler that cannot be reached raises
    :class:`ScenarioError` (source ``--dask``)."""
    check_executor(kind, workers)
    if dask is not None:
        try:
            return DaskExecutor(dask, workers)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ScenarioError(
                "--dask", [f"cannot start or reach the Dask scheduler {dask!r}: {reason}"]
            ) from None
    if kind == "serial" or workers == 1:
        return SerialExecutor()
    if kind == "processes":
        return ProcessExecutor(workers)
    if kind == "dask":
        return DaskExecutor("local", workers)
    raise ValueError(f"unknown executor {kind!r} (known: serial, processes, dask)")
