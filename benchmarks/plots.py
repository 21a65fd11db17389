"""What the plots add to a run: importing matplotlib and writing the standard plots of a run folder.

What is measured: in a fresh Python process per repeat (default 7, after one warm-up), the
scenario (default ``scenarios/checkout.yaml``) is run with ``sim.run``, untimed; then its run
folder is written twice with ``sim.write_run``, what ``sim run`` calls, first with
``plots=False`` and then with plots (PNG), each timed. The difference is what writing the plots
costs a user (importing and setting up matplotlib, drawing and laying out each figure, encoding
the PNG files) without the noise of the run itself, which takes several seconds and varies
between processes by more than the plots cost. The target is at most 1 s, the median over the
repeats.

``--whole`` also times the whole command, ``sim run SCENARIO --quiet`` against the same with
``--no-plots``, in pairs run back to back, and prints the median of the paired differences: the
same cost seen from outside, as a check, noisier by the run's own spread.

Run it with::

    python benchmarks/plots.py [--repeats 7] [--scenario scenarios/checkout.yaml] [--whole] [--sim PATH]

On a shared machine repeat the measurement and quote the median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.0
"""Seconds: the most the plots may add to a run."""

CHILD = """
import sys, tempfile, time
import sim
result = sim.run(sys.argv[1])
spent = []
with tempfile.TemporaryDirectory() as tmp:
    for plots in (False, True):
        started = time.perf_counter()
        sim.write_run(result, f"{tmp}/{plots}", plots=plots)
        spent.append(time.perf_counter() - started)
print(spent[1] - spent[0])
"""
"""The child process: run the scenario, then time its run folder without and with plots."""


def plot_step(scenario: str) -> float:
    """Seconds the plot step of a run of ``scenario`` takes, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, scenario], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return float(done.stdout.strip().splitlines()[-1])


def timed(command: list[str]) -> float:
    """Wall seconds of one run of ``command`` into a fresh output folder."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([*command, "--out", str(Path(tmp) / "run")], check=True, capture_output=True, cwd=ROOT)
        return time.perf_counter() - started


def whole(scenario: str, sim: str | None, repeats: int) -> None:
    """Print what the plots add to the whole command, as the median of paired differences."""
    found = sim or shutil.which("sim")
    base = [found] if found else [sys.executable, "-m", "sim"]
    with_plots = [*base, "run", scenario, "--quiet"]
    without = [*with_plots, "--no-plots"]
    timed(with_plots)
    timed(without)
    added = [timed(with_plots) - timed(without) for _ in range(repeats)]
    print(
        f"whole command: the plots add {statistics.median(added):.2f} s"
        f" (median of {repeats} pairs, range {min(added):.2f} to {max(added):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--scenario", default="scenarios/checkout.yaml")
    parser.add_argument("--whole", action="store_true", help="also time the whole command, with and without")
    parser.add_argument("--sim", default=None, help="the sim executable for --whole (default: on PATH)")
    args = parser.parse_args()
    plot_step(args.scenario)
    steps = [plot_step(args.scenario) for _ in range(args.repeats)]
    cost = statistics.median(steps)
    verdict = "meets" if cost <= TARGET else "misses"
    print(
        f"{args.scenario}: importing matplotlib and writing the plots takes {cost:.2f} s"
        f" (median of {args.repeats}, range {min(steps):.2f}-{max(steps):.2f}):"
        f" {verdict} the target of at most {TARGET:g} s"
    )
    if args.whole:
        whole(args.scenario, args.sim, args.repeats)
    sys.exit(0 if cost <= TARGET else 1)


if __name__ == "__main__":
    main()
