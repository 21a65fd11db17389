"""What the plots add to a run: ``sim run`` with and without ``--no-plots``, as whole processes.

What is measured: the wall time of ``sim run scenarios/checkout.yaml --out DIR`` (which writes
the standard plots of the run folder as PNG) and of the same command with ``--no-plots``, each
``--repeats`` times (default 5) after one warm-up run of each, alternately so that a change in
the machine's load touches both; the difference of the medians is what writing the plots costs
a user: importing and setting up matplotlib, drawing and laying out each figure, and encoding
the PNG files. The target is at most 1 s.

Run it with::

    python benchmarks/plots.py [--repeats 5] [--scenario scenarios/checkout.yaml] [--sim PATH]

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


def timed(command: list[str]) -> float:
    """Wall seconds of one run of ``command`` into a fresh output folder."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([*command, "--out", str(Path(tmp) / "run")], check=True, capture_output=True, cwd=ROOT)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scenario", default="scenarios/checkout.yaml")
    parser.add_argument("--sim", default=None, help="the sim executable (default: on PATH)")
    args = parser.parse_args()
    found = args.sim or shutil.which("sim")
    base = [found] if found else [sys.executable, "-m", "sim"]
    with_plots = [*base, "run", args.scenario, "--quiet"]
    without = [*with_plots, "--no-plots"]
    timed(with_plots)
    timed(without)
    plotted, bare = [], []
    for _ in range(args.repeats):
        plotted.append(timed(with_plots))
        bare.append(timed(without))
    a, b = statistics.median(plotted), statistics.median(bare)
    print(f"{' '.join(with_plots)}: median {a:.2f} s (range {min(plotted):.2f}-{max(plotted):.2f})")
    print(f"  ... --no-plots: median {b:.2f} s (range {min(bare):.2f}-{max(bare):.2f})")
    verdict = "meets" if a - b <= TARGET else "misses"
    print(f"the plots add {a - b:.2f} s: {verdict} the target of at most {TARGET:g} s")
    sys.exit(0 if a - b <= TARGET else 1)


if __name__ == "__main__":
    main()
