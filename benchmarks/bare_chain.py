"""The chain as a bare SimPy user would write it: a process per customer, a ``Resource`` per station.

Four single-server stations in sequence with exponential service times (mean 0.1 s), Poisson
arrivals at 5 per second for ``customers / 5`` seconds; only a list of latencies is kept. It is
the ``simpy-resource`` model of ``chain_vs_simpy.py`` and the bare script of
``whole_process.py``, and it imports nothing but the standard library and SimPy::

    python benchmarks/bare_chain.py 100000 1      # customers, seed: prints arrivals and mean latency
"""

from __future__ import annotations

import random
import sys

import simpy

STATIONS = 4
MEAN_SERVICE = 0.1
"""Mean service time of every station, in seconds."""
RATE = 5.0
"""Workflow arrivals per second."""


def simulate(customers: int, seed: int) -> tuple[int, list[float]]:
    """Run the chain; return how many customers arrived and the latencies of those that left."""
    env = simpy.Environment()
    rng = random.Random(seed)
    stations = [simpy.Resource(env, capacity=1) for _ in range(STATIONS)]
    latencies: list[float] = []
    arrived = 0

    def customer():
        arrival = env.now
        for station in stations:
            with station.request() as request:
                yield request
                yield env.timeout(rng.expovariate(1 / MEAN_SERVICE))
        latencies.append(env.now - arrival)

    def source(duration: float):
        nonlocal arrived
        t = rng.expovariate(RATE)
        while t < duration:
            yield env.timeout(t - env.now)
            env.process(customer())
            arrived += 1
            t += rng.expovariate(RATE)

    env.process(source(customers / RATE))
    env.run()
    return arrived, latencies


if __name__ == "__main__":
    n, latencies = simulate(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    print(n, sum(latencies) / len(latencies))
