"""Comparative discrete-event simulation of workflow coordination styles.

The same workflows, under the same load and the same random numbers, coordinated by a central
orchestrator, by event choreography, or by a hybrid of both. Typical use::

    import sim
    result = sim.run("scenarios/checkout.yaml")
    result.summary          # one row per topology
    result.save("results/checkout/mine")
    sweep = sim.run_sweep("scenarios/checkout.yaml", ["load.checkout.rate=10:50:10"])

The names below are loaded on first use, so that importing the package (and starting the
command line) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.api.calibrate import calibrate
    from sim.api.report import write_report
    from sim.api.results import RunResult, run
    from sim.api.rundir import read_run, write_run
    from sim.api.sweep import SweepResult, read_sweep, run_sweep
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario, scenario_from_dict
    from sim.scenario.models import Scenario
    from sim.scenario.schema import scenario_schema

_EXPORTS = {
    "calibrate": "sim.api.calibrate",
    "RunResult": "sim.api.results",
    "Scenario": "sim.scenario.models",
    "ScenarioError": "sim.scenario.errors",
    "SweepResult": "sim.api.sweep",
    "load_scenario": "sim.scenario.loader",
    "read_run": "sim.api.rundir",
    "read_sweep": "sim.api.sweep",
    "run": "sim.api.results",
    "run_sweep": "sim.api.sweep",
    "scenario_from_dict": "sim.scenario.loader",
    "scenario_schema": "sim.scenario.schema",
    "write_report": "sim.api.report",
    "write_run": "sim.api.rundir",
}

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "calibrate",
    "load_scenario",
    "read_run",
    "read_sweep",
    "run",
    "run_sweep",
    "scenario_from_dict",
    "scenario_schema",
    "write_report",
    "write_run",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
