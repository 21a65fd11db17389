"""Whole-process cost of ``sim run --no-plots`` against a bare SimPy script: wall time and memory.

What is measured
----------------
The chain of ``chain_vs_simpy.py`` (4 M/M/1 services in sequence, every overhead zero), one
topology, at two sizes (about ``--workflows`` workflows each). For each size, two commands run
in fresh processes, one at a time:

- ours: ``sim run <scenario> --no-plots --out <temporary folder> --quiet`` on the chain written
  as a scenario file with only that topology: interpreter start, imports, validation, the
  simulation, the analysis and the run folder, everything a user waits for;
- bare: ``bare_chain.py``, a minimal SimPy script of the same network (a process per customer,
  a ``Resource`` per station, the ``simpy-resource`` model of ``chain_vs_simpy.py``) that keeps
  a list of latencies and prints their mean.

Wall time is measured from the parent with ``time.perf_counter``; peak memory is the child's
maximum resident set size, read from ``os.wait4`` (what ``/usr/bin/time -f %M`` reports).

How to run it
-------------
::

    python benchmarks/whole_process.py                                  # 100,000 and 400,000 workflows
    python benchmarks/whole_process.py --workflows 1000000 --workflows 4000000 --repeats 1
    python benchmarks/whole_process.py --topology choreography

How to read it
--------------
One row per (size, command): workflows, median wall seconds over ``--repeats``, peak RSS in MB.
Below it:

- the wall-time ratio ours / bare at each size (target: at most 1.2);
- bytes per workflow above a fixed base: the growth of our peak between the two sizes divided by
  the growth in workflows (target: at most 200), and the peak it implies for 10 million
  workflows (target: at most 2.5 GiB). Run with ``--workflows 10000000`` to measure that size
  directly (about 10 minutes for both commands, and about 2 GB for ours).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chain_vs_simpy import chain_scenario, model_build

TIME_TARGET = 1.2
"""Our whole process may take at most this many times the bare script's wall time."""
BYTES_TARGET = 200
"""Bytes per workflow above a fixed base."""
BIG = 10_000_000
BIG_TARGET = 2.5 * 2**30
"""Peak RSS allowed for a run of BIG workflows."""


def measure(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and peak RSS in bytes."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        assert child.stderr is not None
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stderr.read().decode()}")
    return wall, usage.ru_maxrss * 1024.0  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workflows", type=int, action="append", help="a size (twice; default 100,000 and 400,000)"
    )
    parser.add_argument(
        "--topology", default="orchestration", choices=["orchestration", "choreography", "hybrid"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = sorted(args.workflows or [100_000, 400_000])
    if len(sizes) != 2:
        parser.error("give --workflows twice (two sizes), or not at all")

    with tempfile.TemporaryDirectory(prefix="sim-whole-process-") as tmp:
        bare = Path(__file__).resolve().parent / "bare_chain.py"
        rows = []
        for n in sizes:
            data = chain_scenario(n, args.seed)
            data["topologies"] = {args.topology: data["topologies"][args.topology]}
            scenario = Path(tmp) / f"chain-{n}.yaml"
            scenario.write_text(yaml.safe_dump(data), encoding="utf-8")
            for name, command in (
                (
                    "ours",
                    [sys.executable, "-c", "from sim.cli.app import main; main()", "run", str(scenario)],
                ),
                ("bare", [sys.executable, str(bare), str(n), str(args.seed)]),
            ):
                walls, peaks = [], []
                for r in range(args.repeats):
                    extra = (
                        ["--no-plots", "--quiet", "--out", str(Path(tmp) / f"run-{n}-{r}")]
                        if name == "ours"
                        else []
                    )
                    wall, peak = measure(command + extra)
                    walls.append(wall)
                    peaks.append(peak)
                    print(f"  {name} {n:,}: {wall:.2f} s, {peak / 1e6:.0f} MB", file=sys.stderr)
                rows.append((n, name, statistics.median(walls), max(peaks)))

    print(model_build())
    print(f"{'workflows':>11}  {'command':7} {'wall s':>8} {'peak MB':>8}")
    for n, name, wall, peak in rows:
        print(f"{n:>11,}  {name:7} {wall:8.2f} {peak / 1e6:8.0f}")
    table = {(n, name): (wall, peak) for n, name, wall, peak in rows}
    print()
    for n in sizes:
        ratio = table[(n, "ours")][0] / table[(n, "bare")][0]
        verdict = "meets" if ratio <= TIME_TARGET else "MISSES"
        print(f"{n:,} workflows: ours / bare wall time {ratio:.2f}×  {verdict} the {TIME_TARGET:g}× target")
    (n1, n2), (p1, p2) = sizes, (table[(sizes[0], "ours")][1], table[(sizes[1], "ours")][1])
    slope = (p2 - p1) / (n2 - n1)
    big = p1 + slope * (BIG - n1)
    print(
        f"memory: {slope:.0f} bytes a workflow above a base of {(p1 - slope * n1) / 1e6:.0f} MB  "
        f"{'meets' if slope <= BYTES_TARGET else 'MISSES'} the {BYTES_TARGET}-byte target"
    )
    print(
        f"implied peak for {BIG:,} workflows: {big / 2**30:.1f} GiB  "
        f"{'meets' if big <= BIG_TARGET else 'MISSES'} the {BIG_TARGET / 2**30:g} GiB target"
    )


if __name__ == "__main__":
    main()
