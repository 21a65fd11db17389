"""Running a list of tasks on an executor and getting their records back in task order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.model.records import TopologyRun
from sim.running.executors import Executor, make_executor
from sim.running.simulate import Task, simulate


def run_tasks(
    tasks: Sequence[Task],
    executor: str | Executor | None = None,
    workers: int | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> list[TopologyRun]:
    """Every task's records, in the order of ``tasks``.

    ``executor`` is ``serial``, ``processes``, ``dask`` or an :class:`Executor` (default: serial
    for a single replication, else processes). In this process, ``progress(label, fraction)``
    follows each task's simulated clock; on other executors it counts finished tasks. The first
    task that raises stops the batch with its exception.
    """
    if not tasks:
        return []
    if executor is None:
        executor = "serial" if tasks[0].scenario.replications == 1 else "processes"
    if executor == "serial" and not isinstance(executor, Executor):
        runs = []
        for task in tasks:
            step = (lambda f, n=task.label: progress(n, f)) if progress is not None else None
            runs.append(simulate(task, step))
        return runs
    owned = not isinstance(executor, Executor)
    pool = executor if isinstance(executor, Executor) else make_executor(executor, workers)
    results: dict[int, TopologyRun] = {}
    index = {id(t): i for i, t in enumerate(tasks)}
    try:
        for done, (task, run, error) in enumerate(pool.map(simulate, tasks), start=1):
            if error is not None:
                raise error
            results[index[id(task)]] = run
            if progress is not None:
                progress("replications", done / len(tasks))
    finally:
        if owned:
            pool.close()
    return [results[i] for i in range(len(tasks))]
