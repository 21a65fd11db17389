"""``sim calibrate``: a scenario file written from a real system's traces (see
:mod:`sim.analysis.calibration` for what is read and what is left to the user)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sim.analysis.calibration import calibrate as read_calibration
from sim.analysis.calibration import read_traces, scenario_skeleton
from sim.api.report import write_text_atomically
from sim.scenario.errors import ScenarioError
from sim.scenario.loader import scenario_from_dict

FITS = ("empirical", "lognormal", "gamma")


def calibrate(
    traces: str | Path,
    out: str | Path,
    *,
    topology: str | None = None,
    fit: str = "empirical",
    sampled: float = 1.0,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write to ``out`` a scenario calibrated from the trace file ``traces`` (OTLP/JSON or Jaeger
    JSON) and return its path. ``topology`` picks one topology of a file ``sim run --trace``
    wrote for several; ``fit`` is how each service's latency is given (``empirical``: its
    observed durations, or a fitted ``lognormal`` or ``gamma``); ``sampled`` is the share of
    workflows the traces hold, when they do not number them. The scenario is validated before it
    is written, atomically; an existing file is replaced only with ``overwrite``."""
    source = str(traces)
    if fit not in FITS:
        raise ScenarioError(source, [f"fit: {fit!r} is not one of {', '.join(FITS)}"])
    if not 0 < sampled <= 1:
        raise ScenarioError(source, ["sampled: the share of workflows traced must be in (0, 1]"])
    target = Path(out)
    if target.exists() and not overwrite:
        raise ScenarioError(str(target), ["exists already (give --overwrite to replace it)"])
    try:
        spans = read_traces(traces, topology)
        data = scenario_skeleton(read_calibration(spans), name=name or target.stem, fit=fit, sampled=sampled)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(source, [f"cannot read the traces: {exc}"]) from None
    scenario_from_dict(data, source=str(target), base_dir=target.parent)
    header = (
        f"# Calibrated by `sim calibrate` from {Path(traces).name}: each service's latency from\n"
        "# its spans, each workflow's steps from its spans' order and overlap, each rate from its\n"
        "# roots. A span includes the wait inside its service; the coordination is not inferred:\n"
        "# add the engine and the broker you want to compare as topologies.\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(target, header + yaml.safe_dump(data, sort_keys=False, width=100))
    return target
