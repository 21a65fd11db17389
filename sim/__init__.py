"""Comparative discrete-event simulation of workflow coordination styles.

The same workflows, under the same load and the same random numbers, coordinated by a central
orchestrator, by event choreography, or by a hybrid of both. Typical use::

    import sim
    result = sim.run("scenarios/checkout.yaml")
    result.summary          # one row per topology
    result.save("results/checkout/mine")
    sweep = sim.run_sweep("scenarios/checkout.yaml", ["load.checkout.rate=10:50:10"])
"""

from sim.experiment.results import RunResult, run
from sim.experiment.rundir import read_run, write_run
from sim.experiment.sweep import SweepResult, read_sweep, run_sweep
from sim.scenario.loader import ScenarioError, load_scenario, scenario_from_dict
from sim.scenario.models import Scenario
from sim.scenario.schema import scenario_schema

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "load_scenario",
    "read_run",
    "read_sweep",
    "run",
    "run_sweep",
    "scenario_from_dict",
    "scenario_schema",
    "write_run",
]
