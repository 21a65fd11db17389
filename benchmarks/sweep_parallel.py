"""Parallel efficiency of sweeps: the same sweep run serially and on local worker processes.

What is measured: the wall time of ``run_sweep`` for a load sweep of the checkout scenario (16
points × 3 topologies × 1 replication by default), once with the serial executor and once with
the process executor, each into a fresh folder so that nothing is skipped. Parallel efficiency is

    efficiency = T_serial / (workers × T_parallel)

and the target is at least 0.9 on 2 cores. The script also checks that both executors produced
identical tables.

Run it with::

    python benchmarks/sweep_parallel.py [--points 16] [--duration 300] [--workers 2] [--repeats 1]

For peak memory, wrap it: ``/usr/bin/time -v python benchmarks/sweep_parallel.py``. The machines
this runs on are often shared: repeat the measurement (``--repeats``) and quote the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.api.sweep import run_sweep  # noqa: E402

SCENARIO = ROOT / "scenarios" / "checkout.yaml"


def timed_sweep(
    executor: str, out: Path, points: int, duration: float, workers: int
) -> tuple[float, pd.DataFrame]:
    rates = ",".join(f"{r:g}" for r in np.linspace(10, 45, points))
    started = time.perf_counter()
    result = run_sweep(
        SCENARIO,
        [f"load.checkout.rate={rates}"],
        out=out,
        duration=duration,
        executor=executor,
        workers=workers,
        plots=False,
    )
    wall = time.perf_counter() - started
    cols = ["point", "topology", "replication", "latency_mean", "latency_p99", "throughput"]
    return wall, result.tidy[cols].sort_values(cols[:3]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=16, help="grid points (default 16)")
    parser.add_argument(
        "--duration", type=float, default=300, help="seconds of arrivals per run (default 300)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes")
    parser.add_argument("--repeats", type=int, default=1, help="repeat each measurement (median is quoted)")
    args = parser.parse_args()

    serial_times, parallel_times = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t_serial, serial = timed_sweep("serial", Path(tmp) / "serial", args.points, args.duration, 1)
            t_par, parallel = timed_sweep(
                "processes", Path(tmp) / "par", args.points, args.duration, args.workers
            )
        pd.testing.assert_frame_equal(serial, parallel)
        serial_times.append(t_serial)
        parallel_times.append(t_par)

    t_s, t_p = statistics.median(serial_times), statistics.median(parallel_times)
    efficiency = t_s / (args.workers * t_p)
    runs = args.points * 3
    print(f"sweep: {args.points} points × 3 topologies = {runs} runs, {args.duration:g} s of arrivals each")
    print(f"serial:    {t_s:8.2f} s   (runs {', '.join(f'{t:.2f}' for t in serial_times)})")
    each = ", ".join(f"{t:.2f}" for t in parallel_times)
    print(f"processes: {t_p:8.2f} s   with {args.workers} workers (runs {each})")
    print(f"speed-up:  {t_s / t_p:8.2f}×")
    verdict = "meets" if efficiency >= 0.9 else "misses"
    print(f"parallel efficiency: {efficiency:.2f} (target ≥ 0.9) -> {verdict}")
    print("results identical on both executors: yes")


if __name__ == "__main__":
    main()
