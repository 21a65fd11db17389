"""Start-up time of the command line: ``sim --help`` and ``sim validate`` as whole processes.

What is measured: the wall time, from the parent's point of view, of a fresh ``sim`` process
that prints its help, and of one that validates ``scenarios/checkout.yaml``: interpreter start,
imports and the work itself. Each command runs ``--repeats`` times (default 5) after one warm-up
run; the median is reported against the target of 0.4 s. Start-up is what a user feels on every
command, and what the import structure decides: the command line imports the numerical stack
(pandas, scipy, matplotlib, SimPy, Dask) only in the commands that simulate or plot.

Run it with::

    python benchmarks/startup.py [--repeats 5] [--sim PATH]

``--sim`` is the ``sim`` executable to time (default: the one on PATH, else ``python -m sim``).
On a shared machine repeat the measurement and quote the median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.4
"""Seconds: the most a median start-up may take."""


def timed(command: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` runs of ``command`` (after one run that is not counted)."""
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sim", default=None, help="the sim executable (default: on PATH)")
    args = parser.parse_args()
    found = args.sim or shutil.which("sim")
    base = [found] if found else [sys.executable, "-m", "sim"]
    commands = {
        "sim --help": [*base, "--help"],
        "sim validate scenarios/checkout.yaml": [*base, "validate", "scenarios/checkout.yaml"],
    }
    print(f"{' '.join(base)}: median of {args.repeats} runs after one warm-up; target {TARGET} s")
    failed = False
    for label, command in commands.items():
        times = timed(command, args.repeats)
        median = statistics.median(times)
        verdict = "meets" if median <= TARGET else "misses"
        failed |= median > TARGET
        print(f"  {label:<40} median {median:.3f} s  (range {min(times):.3f}–{max(times):.3f})  {verdict}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
