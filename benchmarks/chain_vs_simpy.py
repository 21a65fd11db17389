"""Speed of the simulator against bare SimPy on the same queueing network.

What is measured
----------------
One long chain: a workflow of 4 services in sequence, each a single server with exponential
service time (mean 0.1 s), fed by Poisson arrivals at 5/s (utilisation 0.5 at every station),
with zero network latency, a broker without capacity limit or latency and an orchestrator without
overhead or worker limit. With every overhead at zero, all three topologies describe the same
Jackson tandem of four M/M/1 queues, and so do two hand-written SimPy models:

- ``simpy-resource``: the classic idiom, one process per customer that requests a
  ``simpy.Resource`` at each station in turn and holds it for a ``timeout``;
- ``simpy-store``: one long-lived server process per station, fed by a ``simpy.Store``.

Both draw from ``random.Random(seed).expovariate`` and are written the way a SimPy user would
write them, without micro-optimisation. The arrival period is ``customers / 5`` seconds, so about
``--customers`` workflows arrive (the exact number differs between models, whose random streams
differ); every run lasts until the last workflow has finished.

The time measured is model build + run only, with ``time.perf_counter``: for our topologies it is
``TopologyRun.wall_seconds`` (building the world, drawing the arrivals, building the coordinator and
running), which leaves out validating the scenario and turning the raw records into a DataFrame;
for the bare models it is from creating the ``simpy.Environment`` to the end of ``env.run()``.
Each measurement runs in a fresh Python process (one at a time, so runs do not compete for
cores); the models are run in turn, ``--repeats`` times, and the median is reported.

How to run it
-------------
::

    python benchmarks/chain_vs_simpy.py                       # 100,000 workflows, 3 repeats
    python benchmarks/chain_vs_simpy.py --customers 20000 --repeats 5
    python benchmarks/chain_vs_simpy.py --model choreography --model simpy-store
    /usr/bin/time -v python benchmarks/chain_vs_simpy.py --model choreography --repeats 1

``/usr/bin/time -v`` reports the peak memory ("Maximum resident set size") of the largest process
it saw, so restrict it to one model to read that model's peak; the ``peak MB`` column gives the
same figure for each model's worker process (interpreter and imports included; every worker runs
this script, so every worker imports our package, pandas and numpy).

How to read it
--------------
``wall s`` is the median over the repeats and ``min–max s`` their range (a wide range means a
noisy machine: add repeats). ``workflows/s`` is workflows simulated per wall second.
``vs <bare>`` is the ratio of wall time per workflow, ours / bare (the same as the
ratio of wall times when both simulate the same number of workflows): below 1 we are faster,
above 1 slower. The target is at most 1.0 for every topology against ``simpy-resource`` (the
ratio against ``simpy-store`` is for information); the verdict lines also give the ratio of the
fastest runs, which a busy machine disturbs less than the median. ``mean latency`` is a sanity
check that all models simulate the same network: the theory for four M/M/1 stations in tandem
is 4 × 1 / (10 − 5) = 0.8 s. Below the table, a line
per topology gives the time of ``simulate()`` together with turning its raw records into the
requests frame: the price of a usable result, not counted in the comparison. Our models keep a
record of every visit and every workflow, the bare ones only a list of latencies, which is most
of the difference in ``peak MB``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import bare_chain
import simpy

STATIONS, MEAN_SERVICE, RATE = bare_chain.STATIONS, bare_chain.MEAN_SERVICE, bare_chain.RATE
THEORY_LATENCY = STATIONS / (1 / MEAN_SERVICE - RATE)
TARGET = 1.0
"""Our wall time per workflow may be at most this many times the bare ``simpy-resource`` model's
(the ratio against ``simpy-store``, a faster idiom, is shown for information)."""

OURS = ("orchestration", "choreography", "hybrid")
BARE = ("simpy-resource", "simpy-store")
MODELS = OURS + BARE


# -- our simulator ----------------------------------------------------------------------------


def model_build() -> str:
    """Whether this installation runs the model compiled (see the README's *Development*)."""
    import sim.model

    if sim.model.COMPILED:
        return "Model: compiled with mypyc."
    return "Model: pure Python (SIM_PURE_PYTHON set, no C compiler at install, or edited since)."


def chain_scenario(customers: int, seed: int) -> dict:
    """The chain as scenario data: 4 M/M/1 stations in sequence, every overhead at zero."""
    services = [f"s{i + 1}" for i in range(STATIONS)]
    return {
        "name": "chain-vs-simpy",
        "seed": seed,
        "duration": customers / RATE,
        "services": {s: {"latency": {"dist": "exponential", "mean": MEAN_SERVICE}} for s in services},
        "network": {"latency": 0},
        "workflows": {"chain": {"steps": services}},
        "load": {"chain": {"arrival": "poisson", "rate": RATE}},
        "topologies": {
            "orchestration": {"orchestrator": {"decision_cpu": 0}},
            "choreography": {"broker": {"publish_latency": 0, "delivery_latency": 0}},
            "hybrid": {
                "orchestrator": {"decision_cpu": 0},
                "broker": {"publish_latency": 0, "delivery_latency": 0},
                "asynchronous": [],
            },
        },
    }


def run_ours(topology: str, customers: int, seed: int) -> dict:
    """One run of a topology of our simulator; the time is its ``wall_seconds``."""
    # imported already by worker()
    from sim.analysis.metrics import requests_frame
    from sim.running.simulate import Task, simulate
    from sim.scenario.loader import scenario_from_dict

    scenario = scenario_from_dict(chain_scenario(customers, seed))
    started = time.perf_counter()
    run = simulate(Task(scenario, topology))
    requests = requests_frame(run)
    call = time.perf_counter() - started
    done = requests[requests["status"] == "completed"]
    return {
        "workflows": len(requests),
        "completed": len(done),
        "wall": run.wall_seconds,
        "call": call,
        "mean_latency": float(done["latency"].mean()),
    }


# -- bare SimPy -------------------------------------------------------------------------------


def run_simpy_resource(customers: int, seed: int) -> dict:
    """The classic idiom: a process per customer, a ``Resource`` per station (``bare_chain.py``)."""
    started = time.perf_counter()
    arrived, latencies = bare_chain.simulate(customers, seed)
    wall = time.perf_counter() - started
    return _bare_result(arrived, latencies, wall)


def run_simpy_store(customers: int, seed: int) -> dict:
    """One long-lived server process per station, fed by a ``Store``; a job is its arrival time."""
    started = time.perf_counter()
    env = simpy.Environment()
    rng = random.Random(seed)
    queues = [simpy.Store(env) for _ in range(STATIONS)]
    latencies: list[float] = []
    arrived = 0

    def server(inbox: simpy.Store, outbox: simpy.Store | None):
        while True:
            arrival = yield inbox.get()
            yield env.timeout(rng.expovariate(1 / MEAN_SERVICE))
            if outbox is None:
                latencies.append(env.now - arrival)
            else:
                outbox.put(arrival)

    def source(duration: float):
        nonlocal arrived
        t = rng.expovariate(RATE)
        while t < duration:
            yield env.timeout(t - env.now)
            queues[0].put(env.now)
            arrived += 1
            t += rng.expovariate(RATE)

    for i, inbox in enumerate(queues):
        env.process(server(inbox, queues[i + 1] if i + 1 < STATIONS else None))
    env.process(source(customers / RATE))
    env.run()
    wall = time.perf_counter() - started
    return _bare_result(arrived, latencies, wall)


def _bare_result(arrived: int, latencies: list[float], wall: float) -> dict:
    return {
        "workflows": arrived,
        "completed": len(latencies),
        "wall": wall,
        "call": wall,
        "mean_latency": statistics.fmean(latencies) if latencies else float("nan"),
    }


BARE_RUNNERS: dict[str, Callable[[int, int], dict]] = {
    "simpy-resource": run_simpy_resource,
    "simpy-store": run_simpy_store,
}


# -- measuring ----------------------------------------------------------------------------------


def _peak_mb() -> float:
    """Peak resident memory of this process, in MB (NaN where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def worker(model: str, customers: int, seed: int) -> None:
    """Run one measurement in this (fresh) process and print it as one JSON line.

    Every worker imports our package (and so pandas, numpy, pydantic) before it runs, whatever the
    model: the peak memory then starts from the same base, and the garbage collector has the
    same number of live objects to walk in every model.
    """
    import sim.analysis.metrics
    import sim.running.simulate  # noqa: F401

    if model in BARE_RUNNERS:
        result = BARE_RUNNERS[model](customers, seed)
    else:
        result = run_ours(model, customers, seed)
    result["model"] = model
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def measure(model: str, customers: int, seed: int) -> dict:
    """One measurement of ``model`` in a fresh Python process."""
    cmd = [sys.executable, __file__, "--worker", model, "--customers", str(customers), "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{model}: worker failed (exit {out.returncode})\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    walls = [r["wall"] for r in runs]
    wall = statistics.median(walls)
    first = runs[0]
    return {
        "workflows": first["workflows"],
        "completed": first["completed"],
        "wall": wall,
        "min": min(walls),
        "max": max(walls),
        "call": statistics.median(r["call"] for r in runs),
        "per_workflow": wall / first["workflows"],
        "best_per_workflow": min(walls) / first["workflows"],
        "mean_latency": first["mean_latency"],
        "peak_mb": max(r["peak_mb"] for r in runs),
    }


def print_table(models: list[str], rows: dict[str, dict], bare: list[str]) -> None:
    header = ["model", "workflows", "wall s (median)", "min–max s", "workflows/s"]
    header += [f"vs {b}" for b in bare] + ["mean latency s", "peak MB"]
    lines = []
    for m in models:
        r = rows[m]
        line = [
            m,
            f"{r['workflows']:,}",
            f"{r['wall']:.3f}",
            f"{r['min']:.2f}–{r['max']:.2f}",
            f"{r['workflows'] / r['wall']:,.0f}",
        ]
        line += [f"{r['per_workflow'] / rows[b]['per_workflow']:.2f}×" for b in bare]
        line += [f"{r['mean_latency']:.4f}", f"{r['peak_mb']:.0f}"]
        lines.append(line)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(cells)

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="about this many workflows arrive")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per model (median reported)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (the same for every repeat)")
    parser.add_argument(
        "--model", action="append", choices=MODELS, help="run only this model (repeatable; default: all)"
    )
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.customers < 1 or args.repeats < 1:
        parser.error("--customers and --repeats must be at least 1")
    if args.worker:
        worker(args.worker, args.customers, args.seed)
        return

    models = [m for m in MODELS if args.model is None or m in args.model]
    print(
        f"Chain of {STATIONS} M/M/1 stations (service mean {MEAN_SERVICE} s, arrivals {RATE:g}/s, "
        f"utilisation {RATE * MEAN_SERVICE:g}), zero overheads; about {args.customers:,} workflows, "
        f"seed {args.seed}, median of {args.repeats} runs, each in a fresh process."
    )
    print(
        f"Python {platform.python_version()}, SimPy {simpy.__version__}, {platform.machine()}, "
        f"{_cpu_count()} CPUs"
    )
    print(model_build())
    results: dict[str, list[dict]] = {m: [] for m in models}
    for r in range(args.repeats):
        for m in models:  # in turn, so that a slow patch of the machine hits every model alike
            res = measure(m, args.customers, args.seed)
            results[m].append(res)
            print(f"  run {r + 1}/{args.repeats} {m:<15} {res['wall']:8.3f} s", file=sys.stderr, flush=True)
    rows = {m: summarise(results[m]) for m in models}
    print()
    bare = [b for b in BARE if b in rows]
    print_table(models, rows, bare)
    print()
    print(f"Theory: mean latency {THEORY_LATENCY:.4f} s (4 × 1 / (10 − 5)).")
    unfinished = [m for m in models if rows[m]["completed"] != rows[m]["workflows"]]
    if unfinished:
        print(f"Warning: not every workflow completed in {', '.join(unfinished)}.")
    ours = [m for m in OURS if m in rows]
    for m in ours:
        extra = rows[m]["call"] - rows[m]["wall"]
        print(
            f"{m}: simulate() and the requests frame took {rows[m]['call']:.3f} s in all; "
            f"{extra:.3f} s of it is building the frame (not counted above)."
        )
    if ours and bare:
        print()
        print(f"Target: wall time per workflow at most {TARGET:.1f}× the bare simpy-resource model's.")
        for m in ours:
            for b in bare:
                ratio = rows[m]["per_workflow"] / rows[b]["per_workflow"]
                best = rows[m]["best_per_workflow"] / rows[b]["best_per_workflow"]
                verdict = ""
                if b == "simpy-resource":
                    verdict = ("meets" if ratio <= TARGET else "MISSES") + " the target"
                print(f"  {m:<13} vs {b:<14} {ratio:5.2f}×  {verdict:<18} (fastest runs: {best:.2f}×)")


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
