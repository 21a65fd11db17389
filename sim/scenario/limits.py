"""How large a scenario may be: the bounds that keep a run within memory and time.

A scenario that validates must run without crashing or hanging, so the language bounds what would
otherwise exhaust memory (an arrival array of 10^300 instants), overflow a number (a backoff of
2^1025 seconds) or make the clock stand still (a crash every 0 seconds). Two kinds of limits:

* **Field bounds**, always enforced by the models (:mod:`sim.scenario.models`,
  :mod:`sim.scenario.distributions`) and by the command-line overrides: times at most
  :data:`MAX_SECONDS`, rates at most :data:`MAX_RATE`, servers at most :data:`MAX_SERVERS`,
  replications at most :data:`MAX_REPLICATIONS`, and so on. Past them a run makes no sense.
* **Estimates of the work of one run**, checked by :func:`check_limits`: the expected number of
  arrivals, of time-series windows and of crashes. Past them a run is very likely to exhaust
  memory or to take hours, but a user with a large machine may insist (``force=True``, the
  command line's ``--force``).

This module imports only :mod:`sim.scenario.errors` at run time, so that the models can import
its constants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.scenario.errors import ScenarioError

if TYPE_CHECKING:
    from sim.scenario.models import Scenario

# --- field bounds (always enforced) -------------------------------------------------------------

MAX_SECONDS = 1_000_000_000
"""Longest time any field may give, in seconds (about 31.7 years): durations, warm-up, drain,
windows, fault instants, timeouts, backoffs and distribution parameters. Beyond it the clock's
float arithmetic loses the resolution the model needs, and no real system is observed that long."""

MAX_RATE = 1_000_000_000
"""Highest rate, per second: arrival rates and a broker partition's capacity."""

MAX_SERVERS = 100_000
"""Most servers of one component: a service's replicas × concurrency, an engine's shards ×
shard_concurrency (and its replicas), a broker's partitions (each bound applies to the factors
and to their product). Faults start one process per replica, and per-server state is kept."""

MAX_COUNT = 1_000_000_000
"""Largest other whole number: queue limits, bulkhead slots, circuit-breaker windows, Erlang phases."""

MAX_CLIENTS = 100_000
"""Most closed-loop clients of one workflow's load: each is a simulation process with a random
stream of its own."""

MAX_ATTEMPTS = 100
"""Most attempts of one call (``retry.max_attempts``) and deliveries of one event
(``broker.max_deliveries``): each attempt is simulated, possibly all at one instant."""

MAX_REPLICATIONS = 10_000
"""Most replications of one scenario."""

MAX_SEED = 2**63 - 1
"""Largest root seed (results store it as a 64-bit integer)."""

MIN_CV, MAX_CV = 0.001, 100.0
"""Range of a coefficient of variation (gamma; lognormal's upper bound): below 0.001 a gamma is a
constant for every purpose (write one), above 100 draws underflow to 0 or overflow."""

MAX_SIGMA = 10.0
"""Largest sd of ln X of a lognormal, however given (``sigma``, or derived from ``median`` and
``p99``, or from ``cv``): e^(10²/2) already makes the mean 5·10^21 times the median, and beyond it
the mean overflows."""

MIN_FACTOR, MAX_FACTOR = 0.001, 1000.0
"""Range of a slowdown's ``factor``; overlapping slowdowns multiply, the product kept within
[MIN_FACTOR², MAX_FACTOR²]."""

MAX_STEPS = 10_000
"""Steps of one workflow, its branches' steps included."""

# --- estimates of one run (check_limits; may be overridden with force) --------------------------

MAX_ARRIVALS = 20_000_000
"""Most expected workflow arrivals in one run (one topology, one replication): arrival instants,
per-instance records and the request table grow with them (about 1 KB per instance in all)."""

MAX_WINDOWS = 100_000
"""Most time-series windows of one run: (duration + drain) / window."""

MAX_CRASHES = 1_000_000
"""Most expected crashes in one run, over all crash faults and replicas."""

MAX_EVALUATIONS = 1_000_000
"""Most autoscaler evaluations in one run, over all autoscaled components: (duration + drain) /
interval each."""

# --- the file itself (sim.scenario.loader) ------------------------------------------------------

MAX_FILE_BYTES = 10_000_000
"""Largest scenario file, and largest CSV file of an empirical distribution, in bytes (10 MB)."""

MAX_DEPTH = 50
"""Deepest nesting of lists and mappings in a scenario (a real one needs about 10)."""

MAX_NODES = 100_000
"""Most values in a scenario once YAML aliases are expanded (every alias counts its target's
values again): validation visits each of them, so an alias bomb would take minutes or all memory."""


def run_span(scenario: Scenario) -> float:
    """The longest a run may last, in simulated seconds: arrivals, then the drain."""
    return scenario.duration + scenario.drain_time


def expected_arrivals(scenario: Scenario) -> float:
    """Expected arrivals of one run: Σ over workflows of the expected arrivals of its load in
    ``[0, duration)`` (a rate, a schedule, a profile's integral, a trace's count; for closed-loop
    clients, whose arrivals depend on the response times, an upper bound)."""
    return sum(load.expected_arrivals(scenario.duration) for load in scenario.load.values())


def expected_windows(scenario: Scenario) -> float:
    """Time-series windows of a run that lasts as long as it may."""
    return run_span(scenario) / scenario.window_width


def expected_crashes(scenario: Scenario) -> list[tuple[int, float]]:
    """(fault index, expected crashes in one run) for each crash fault: per replica, the crash
    period over the mean cycle, mean MTBF + mean MTTR (renewal theory). The target's replicas are
    the service's, or the largest engine or broker of any topology."""
    out: list[tuple[int, float]] = []
    for i, fault in enumerate(scenario.faults):
        if fault.type != "crash":
            continue
        replicas = _replicas(scenario, fault.target)
        end = run_span(scenario) if fault.until is None else min(fault.until, run_span(scenario))
        period = max(0.0, end - fault.start)
        cycle = fault.mtbf.mean + fault.mttr.mean
        crashes = math.inf if cycle <= 0 else replicas * period / cycle
        out.append((i, crashes))
    return out


def expected_evaluations(scenario: Scenario) -> float:
    """Autoscaler evaluations of a run that lasts as long as it may: every autoscaled service's,
    and those of the most often evaluating engine (a run has one topology, so one engine)."""
    span = run_span(scenario)
    services = sum(span / s.autoscale.interval for s in scenario.services.values() if s.autoscale)
    engines = [
        span / t.orchestrator.autoscale.interval
        for t in scenario.topologies.values()
        if t.orchestrator is not None and t.orchestrator.autoscale is not None
    ]
    return services + max(engines, default=0.0)


def _replicas(scenario: Scenario, target: str) -> int:
    if target in scenario.services:
        return scenario.services[target].most_replicas  # an autoscaled one's crash processes: per replica
    if target == "orchestrator":
        engines = [t.orchestrator.most_replicas for t in scenario.topologies.values() if t.orchestrator]
        return max(engines, default=1)
    if target == "broker":
        brokers = [t.broker.partitions for t in scenario.topologies.values() if t.broker]
        return max(brokers, default=1)
    return 1


def _count(value: float) -> str:
    return "infinitely many" if not math.isfinite(value) else f"{value:,.0f}"


def check_limits(scenario: Scenario, *, force: bool = False, source: str | None = None) -> None:
    """Refuse a scenario whose runs would very likely exhaust memory or take hours.

    Checks, for one run (one topology, one replication), the expected arrivals against
    :data:`MAX_ARRIVALS`, the time-series windows against :data:`MAX_WINDOWS` and the expected
    crashes against :data:`MAX_CRASHES`. With ``force`` nothing is checked: the user has a machine
    for it. The field bounds (:data:`MAX_SECONDS`...) are the models' and always hold.

    Raise :class:`~sim.scenario.errors.ScenarioError` with one ``field: message`` line per
    problem, each saying the estimate, the limit and that ``--force`` accepts it; ``source``
    names the scenario in the error (default: the scenario's name).
    """
    if force:
        return
    problems: list[str] = []
    hint = "or pass --force to run it anyway"
    arrivals = expected_arrivals(scenario)
    if arrivals > MAX_ARRIVALS:
        problems.append(
            f"load: about {_count(arrivals)} arrivals per run (mean rate × duration, summed over the "
            f"workflows) exceed the limit of {MAX_ARRIVALS:,}; lower the rates or the duration, {hint}"
            if not any(load.closed for load in scenario.load.values())
            else f"load: up to {_count(arrivals)} arrivals per run (mean rate × duration, and for "
            f"clients N × duration × (1 / mean think_time + 1 / patience), summed over the workflows) "
            f"exceed the limit of {MAX_ARRIVALS:,}; lower the rates, the clients or the duration, {hint}"
        )
    windows = expected_windows(scenario)
    if windows > MAX_WINDOWS:
        width = "duration / 60" if scenario.window is None else f"{scenario.window:g} s"
        problems.append(
            f"window: {run_span(scenario):g} s of run (duration + drain) in windows of {width} make "
            f"about {_count(windows)} time-series windows, more than the limit of {MAX_WINDOWS:,}; "
            f"set a wider window or a shorter drain, {hint}"
        )
    for i, crashes in expected_crashes(scenario):
        if crashes > MAX_CRASHES:
            problems.append(
                f"faults[{i}]: about {_count(crashes)} crashes per run (replicas × time / (mean mtbf + "
                f"mean mttr)) exceed the limit of {MAX_CRASHES:,}; lengthen mtbf or limit the "
                f"process with until, {hint}"
            )
    evaluations = expected_evaluations(scenario)
    if evaluations > MAX_EVALUATIONS:
        problems.append(
            f"autoscale: about {_count(evaluations)} autoscaler evaluations per run ((duration + drain) / "
            f"interval, summed over the autoscaled components) exceed the limit of {MAX_EVALUATIONS:,}; "
            f"lengthen the interval or shorten the run, {hint}"
        )
    if problems:
        raise ScenarioError(source if source is not None else scenario.name, problems)
