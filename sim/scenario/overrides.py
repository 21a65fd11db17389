"""Command-line overrides of a scenario's fields, checked like the fields they replace.

The overrides are applied with ``model_copy``, which does not validate, so every bound the
scenario's fields have (:mod:`sim.scenario.limits`) is checked here again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sim.scenario.errors import ScenarioError
from sim.scenario.limits import MAX_REPLICATIONS, MAX_SECONDS, MAX_SEED
from sim.scenario.models import Scenario


def with_overrides(
    scenario: Scenario,
    duration: float | None = None,
    seed: int | None = None,
    replications: int | None = None,
    confidence: float | None = None,
) -> Scenario:
    """The scenario with the command-line overrides applied and checked; a bad value raises
    :class:`ScenarioError` whose source is the option (``--duration``...)."""
    update: dict[str, Any] = {}
    if replications is not None:
        if replications < 1:
            raise ScenarioError("--replications", ["must be at least 1"])
        if replications > MAX_REPLICATIONS:
            raise ScenarioError("--replications", [f"must be at most {MAX_REPLICATIONS:,}"])
        update["replications"] = replications
    if confidence is not None:
        if not 0 < confidence < 1:
            raise ScenarioError("--confidence", ["must be between 0 and 1 (e.g. 0.95)"])
        update["confidence"] = confidence
    if seed is not None:
        if seed < 0:
            raise ScenarioError("--seed", ["must be at least 0"])
        if seed > MAX_SEED:
            raise ScenarioError("--seed", [f"must be less than 2^63 ({MAX_SEED + 1:,})"])
        update["seed"] = seed
    if duration is not None:
        if not (math.isfinite(duration) and duration > 0):
            raise ScenarioError("--duration", ["must be a finite number greater than 0"])
        if duration > MAX_SECONDS:
            raise ScenarioError("--duration", [f"must be at most {MAX_SECONDS:,} seconds"])
        if scenario.warmup != "auto" and scenario.warmup >= duration:
            raise ScenarioError("--duration", [f"must be greater than the warm-up ({scenario.warmup:g} s)"])
        update["duration"] = duration
        if scenario.window is not None and scenario.window > duration:
            update["window"] = None
    return scenario.model_copy(update=update) if update else scenario


def select_topologies(scenario: Scenario, names: Sequence[str] | None) -> list[str]:
    """The topologies to run: ``names`` in the order given (default: all, in file order);
    an unknown name raises :class:`ScenarioError` with source ``--topology``."""
    chosen = list(names) if names else list(scenario.topologies)
    unknown = [n for n in chosen if n not in scenario.topologies]
    if unknown:
        known = ", ".join(scenario.topologies)
        raise ScenarioError("--topology", [f"unknown topology {n!r} (known: {known})" for n in unknown])
    return chosen
