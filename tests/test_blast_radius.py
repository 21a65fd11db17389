"""Blast radius of faults against the baseline twin run, on small hand-built frames.

Every frame here is synthetic, with answers worked out by hand in the comments; nothing is
simulated, so the tests run in well under a second.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.analysis import blast_radius as br
from sim.analysis.blast_radius import (
    Band,
    align_timeseries,
    blast_radius,
    blast_radius_summary_lines,
    component_deviations,
    twin_pairs,
    within_band,
)
from sim.analysis.plots import blast_radius_bars, fault_timelines

WIDTH = 10.0
N_WINDOWS = 20  # the runs cover [0, 200)
FAULT = {"type": "crash", "target": "payment", "start": 50.0, "end": 70.0}


# --- builders ----------------------------------------------------------------------------------


def timeseries(
    completions: list[float] | None = None,
    p99: list[float] | None = None,
    backlog: list[float] | None = None,
    topology: str = "orchestration",
    replication: int = 0,
    n: int = N_WINDOWS,
    last_end: float | None = None,
) -> pd.DataFrame:
    """A run's windows of WIDTH seconds; steady state is 100 completions, p99 0.5 s, backlog 2."""
    starts = np.arange(n) * WIDTH
    ends = starts + WIDTH
    if last_end is not None:
        ends[-1] = last_end
    comp = np.array(completions if completions is not None else [100.0] * n, dtype=float)
    return pd.DataFrame(
        {
            "topology": topology,
            "replication": replication,
            "t_start": starts,
            "t_end": ends,
            "arrivals": 100,
            "completions": comp,
            "failures": 0,
            "throughput": comp / (ends - starts),
            "in_flight": 5,
            "latency_mean": 0.3,
            "latency_p99": np.array(p99 if p99 is not None else [0.5] * n, dtype=float),
            "backlog": np.array(backlog if backlog is not None else [2.0] * n, dtype=float),
            "queued_orchestrator": 0,
            "queued_broker": 0,
        }
    )


def requests(
    changes: dict[int, tuple[str, float]] | None = None,
    topology: str = "orchestration",
    replication: int = 0,
    n: int = 200,
    categorical: bool = False,
) -> pd.DataFrame:
    """One instance per second (id i arrives at i), completed after 0.5 s unless ``changes`` maps
    its id to (status, latency); a NaN latency means unfinished."""
    status = ["completed"] * n
    latency = [0.5] * n
    for i, (s, lat) in (changes or {}).items():
        status[i], latency[i] = s, lat
    arrival = np.arange(n, dtype=float)
    latency_arr = np.array(latency, dtype=float)
    frame = pd.DataFrame(
        {
            "topology": topology,
            "replication": replication,
            "workflow": "checkout",
            "id": np.arange(n),
            "arrival": arrival,
            "completion": arrival + latency_arr,
            "status": status,
            "latency": latency_arr,
        }
    )
    if categorical:
        frame["status"] = pd.Categorical(frame["status"], categories=br.STATUSES)
    return frame


def summary(attempts: float, topology: str = "orchestration", replication: int = 0, **extra) -> pd.DataFrame:
    row = {"duplicates": 0, "lost": 0, "lost_work": 0.0, **extra}
    return pd.DataFrame([{"topology": topology, "replication": replication, "attempts": attempts, **row}])


def components(stats: dict[str, dict], topology: str = "orchestration", replication: int = 0) -> pd.DataFrame:
    rows = []
    for name, values in stats.items():
        base = {"errors": 0, "rejected": 0, "handled": 1000, "p99_wait": 0.1, "mean_queue": 0.2}
        rows.append(
            {"topology": topology, "replication": replication, "name": name, "kind": "service"}
            | base
            | values
        )
    return pd.DataFrame(rows)


def run(req, ts, summ, comps=None) -> SimpleNamespace:
    return SimpleNamespace(
        requests=req,
        timeseries=ts,
        summary=summ,
        components=comps if comps is not None else components({"payment": {}}),
    )


# The faulted run of the main example: a dip during the fault (50–70 s), a catch-up burst in
# [70, 80) with a high p99, then back to normal from 80 s. Backlog (at window ends): 300 at 60,
# 600 at 70, 200 at 80, 5 at 90 (still above max(2×2, 2+1) = 4), 2 from 100 on.
DIP = [100.0] * 5 + [20.0, 20.0, 250.0] + [100.0] * 12
DIP_P99 = [0.5] * 7 + [3.0] + [0.5] * 12
DIP_BACKLOG = [2.0] * 5 + [300.0, 600.0, 200.0, 5.0] + [2.0] * 11
# Twins: 55 fails; 60 is still in flight; 61 / 63 are just under / at the latency threshold
# max(2 × 0.5, 0.5 + 1) = 1.5 (strict), 62 just over; 150 is in flight in both runs; for 151 /
# 152 the baseline latency is 3 s, so the threshold is max(6, 4) = 6: 5.9 is under, 6.1 over.
BASE_CHANGES = {150: ("in_flight", math.nan), 151: ("completed", 3.0), 152: ("completed", 3.0)}
FAULT_CHANGES = {
    55: ("failed", 0.2),
    60: ("in_flight", math.nan),
    61: ("completed", 1.49),
    62: ("completed", 1.51),
    63: ("completed", 1.5),
    150: ("in_flight", math.nan),
    151: ("completed", 5.9),
    152: ("completed", 6.1),
}


def main_example(**kwargs) -> pd.DataFrame:
    baseline = run(requests(BASE_CHANGES), timeseries(), summary(1000))
    faulted = run(
        requests(FAULT_CHANGES, categorical=True),
        timeseries(DIP, DIP_P99, DIP_BACKLOG),
        summary(1200, duplicates=7, lost_work=3.5),
    )
    return blast_radius(baseline, faulted, [FAULT], **kwargs)


# --- twins -------------------------------------------------------------------------------------


def test_twin_pairing_outcome_and_latency_threshold() -> None:
    pairs = twin_pairs(requests(BASE_CHANGES), requests(FAULT_CHANGES, categorical=True))
    affected = set(pairs.loc[pairs["affected"], "id"])
    assert affected == {55, 60, 62, 152}
    reason = dict(zip(pairs["id"], pairs["reason"]))
    assert reason[55] == reason[60] == "outcome"
    assert reason[62] == reason[152] == "latency"
    # Far from the fault and unchanged, both in flight, just under / exactly at the threshold.
    for i in (0, 10, 199, 150, 61, 63, 151):
        assert reason[i] == ""
    assert pairs["paired"].all() and len(pairs) == 200


def test_latency_factor_and_slack_are_parameters() -> None:
    pairs = twin_pairs(requests(BASE_CHANGES), requests(FAULT_CHANGES), latency_factor=3.0, latency_slack=0.5)
    # threshold for a 0.5 s twin: max(1.5, 1.0) = 1.5; for a 3 s twin: max(9, 3.5) = 9
    assert set(pairs.loc[pairs["affected"], "id"]) == {55, 60, 62}


def test_finished_in_baseline_but_in_flight_when_faulted_is_affected() -> None:
    base = requests()
    fault = requests({5: ("in_flight", math.nan), 6: ("lost", math.nan)})
    pairs = twin_pairs(base, fault)
    assert set(pairs.loc[pairs["affected"], "id"]) == {5, 6}


def test_unpaired_instances_are_counted_not_affected() -> None:
    pairs = twin_pairs(requests(n=10), requests(n=12))
    assert (~pairs["paired"]).sum() == 2 and not pairs["affected"].any()


# --- the main example --------------------------------------------------------------------------


def test_affected_counts_and_share() -> None:
    row = main_example().iloc[0]
    assert (row["topology"], row["replication"]) == ("orchestration", 0)
    assert row["affected"] == 4
    assert row["affected_completed"] == 2  # 62 and 152, by latency
    assert row["affected_failed"] == 1 and row["affected_in_flight"] == 1
    assert row["affected_compensated"] == row["affected_lost"] == row["affected_inconsistent"] == 0
    assert row["affected_by_latency"] == 2 and row["unpaired"] == 0
    # impact window [50, 90): arrivals 50..89, and the affected 152 that arrived after it
    assert row["workflows_in_window"] == 41
    assert row["affected_share"] == pytest.approx(4 / 41)


def test_impact_window_and_recovery_time() -> None:
    row = main_example().iloc[0]
    assert (row["fault_start"], row["fault_end"]) == (50.0, 70.0)
    assert row["faults"] == 1 and row["fault_targets"] == "payment"
    # [70, 80) is out of the band (25/s against 10/s, p99 3 s); 80, 90, 100 are within.
    assert row["impact_start"] == 50.0 and row["impact_end"] == 90.0
    assert row["recovered"] and row["settled_by"] == "settle"
    assert row["recovery_time"] == pytest.approx(20.0)


def test_backlog_drain_and_amplification() -> None:
    row = main_example().iloc[0]
    # Backlogs at the window ends in (50, 90]: 300, 600, 200, 5.
    assert row["peak_backlog"] == 600.0 and row["baseline_backlog"] == 2.0
    # First window end ≥ 70 with a backlog ≤ max(2 × 2, 2 + 1) = 4: 100 (5 at 90 is not).
    assert row["drain_time"] == pytest.approx(30.0)
    assert row["attempts"] == 1200 and row["baseline_attempts"] == 1000
    assert row["retry_amplification"] == pytest.approx(1.2)
    assert row["duplicates"] == 7 and row["lost"] == 0 and row["lost_work"] == 3.5


def test_settle_is_a_parameter() -> None:
    # With settle = 1, [80, 90) alone ends the impact window; it does anyway here.
    assert main_example(band=Band(settle=1)).iloc[0]["impact_end"] == 90.0
    # A mapping of Band fields works too; a wide throughput band accepts the burst but not its p99.
    assert main_example(band={"rel": 2.0}).iloc[0]["impact_end"] == 90.0
    assert main_example(band={"rel": 2.0, "abs_p99": 3.0}).iloc[0]["impact_end"] == 80.0


def test_never_recovering_run() -> None:
    # After the fault the faulted run completes half as much to the end of the run.
    comp = [100.0] * 5 + [50.0] * 15
    baseline = run(requests(), timeseries(), summary(1000))
    faulted = run(requests({70: ("failed", 0.1)}), timeseries(comp), summary(1000))
    row = blast_radius(baseline, faulted, [FAULT]).iloc[0]
    assert not row["recovered"] and row["settled_by"] == "never"
    assert row["impact_end"] == 200.0 and row["recovery_time"] == pytest.approx(130.0)
    assert row["workflows_in_window"] == 150 and row["affected"] == 1
    assert row["retry_amplification"] == pytest.approx(1.0)
    # A fault still on when the run ends: not recovered, recovery time 0 (impact_end = run end).
    late = blast_radius(baseline, faulted, [FAULT | {"end": 250.0}]).iloc[0]
    assert not late["recovered"] and late["impact_end"] == 200.0 and late["recovery_time"] == 0.0
    assert math.isnan(late["drain_time"])


def test_recovery_in_the_last_windows_settles_at_the_end_of_the_run() -> None:
    comp = [100.0] * 5 + [50.0] * 13 + [100.0, 100.0]  # in band again for the last two windows
    baseline = run(requests(), timeseries(), summary(1000))
    faulted = run(requests(), timeseries(comp), summary(1000))
    row = blast_radius(baseline, faulted, [FAULT]).iloc[0]
    assert row["recovered"] and row["settled_by"] == "end_of_run" and row["impact_end"] == 190.0


def test_unaffected_window_holding_fault_end_gives_less_than_one_window() -> None:
    fault = {"type": "crash", "target": "payment", "start": 50.0, "end": 64.0}
    baseline = run(requests(), timeseries(), summary(10))
    faulted = run(requests(), timeseries(), summary(10))
    row = blast_radius(baseline, faulted, [fault]).iloc[0]
    assert row["impact_end"] == 70.0 and row["recovery_time"] == pytest.approx(6.0)
    assert row["drain_time"] == pytest.approx(6.0) and row["affected"] == 0


def test_longer_faulted_run_and_a_short_last_window() -> None:
    # The baseline ends at 195 s with 50 completions in [190, 195); the faulted run's last window
    # [190, 200) also has 50: as rates over the common width they agree.
    b_comp = [100.0] * 19 + [50.0]
    f_comp = [100.0] * 5 + [0.0, 0.0] + [100.0] * 12 + [50.0]
    baseline = run(requests(), timeseries(b_comp, last_end=195.0), summary(10))
    faulted = run(requests(), timeseries(f_comp), summary(10))
    aligned = align_timeseries(baseline.timeseries, faulted.timeseries)
    assert aligned["t_end"].iloc[-1] == 200.0 and within_band(aligned)[-1]
    assert blast_radius(baseline, faulted, [FAULT]).iloc[0]["impact_end"] == 80.0
    # A faulted run that goes on beyond the baseline's end, still completing work, is out of
    # the band there (the baseline window is empty); here it never settles.
    longer = timeseries([100.0] * 5 + [0.0] * 5 + [150.0] * 12, n=22)
    faulted = run(requests(), longer, summary(10))
    row = blast_radius(baseline, faulted, [FAULT]).iloc[0]
    assert not row["recovered"] and row["impact_end"] == 220.0


def test_throughput_and_p99_band_boundaries() -> None:
    # Baseline 100 completions per 10 s: tolerance max(0.1 × 10, 2 × √100 / 10) = 2 /s → ±20.
    base = timeseries([100.0] * 4, n=4)
    fault = timeseries([120.0, 121.0, 80.0, 79.0], n=4)
    assert list(within_band(align_timeseries(base, fault))) == [True, False, True, False]
    # p99 limit for 0.5 s: max(0.75, 0.55) = 0.75; for 0.02 s: max(0.03, 0.07) = 0.07.
    base = timeseries(p99=[0.5, 0.5, 0.02, 0.02, math.nan, math.nan], n=6)
    fault = timeseries(p99=[0.75, 0.76, 0.07, 0.08, math.nan, 9.0], n=6)
    assert list(within_band(align_timeseries(base, fault))) == [True, False, True, False, True, True]
    # Tiny counts: one completion in the baseline allows up to 2 per window in the faulted run.
    base = timeseries([0.0, 0.0], n=2)
    fault = timeseries([2.0, 3.0], n=2)
    assert list(within_band(align_timeseries(base, fault))) == [True, False]


# --- components --------------------------------------------------------------------------------


BASE_COMPONENTS = {
    "payment": {},
    "email": {"mean_queue": 0.2},
    "inventory": {"p99_wait": 0.1},
    "shipping": {},
    "warehouse": {"errors": 50},
    "broker": {"mean_queue": 3.0},
}
FAULT_COMPONENTS = {
    "payment": {"errors": 900},  # the fault target: never reported
    "email": {"mean_queue": 5.0},  # queue > max(0.4, 1.2): out
    "inventory": {"p99_wait": 0.14},  # wait ≤ max(0.2, 0.15): in
    "shipping": {"errors": 5, "rejected": 6},  # 0.011 > 0 + 0.01 and > 0: out
    "warehouse": {"errors": 90},  # 0.09 > 0.06 but not > 0.10: in
    "broker": {"mean_queue": 6.5},  # > max(6, 4): out
}


def test_component_band_with_a_component_stats_callable() -> None:
    calls = []
    baseline = run(requests(), timeseries(), summary(10), components({"payment": {}}))
    faulted = run(requests(), timeseries(DIP, DIP_P99, DIP_BACKLOG), summary(10), components({"x": {}}))

    def stats(which, topology, replication, lo, hi):
        calls.append((which is faulted, topology, replication, lo, hi))
        table = FAULT_COMPONENTS if which is faulted else BASE_COMPONENTS
        return components(table).drop(columns=["topology", "replication"])

    row = blast_radius(baseline, faulted, [FAULT], component_stats=stats).iloc[0]
    assert sorted(calls) == [(False, "orchestration", 0, 50.0, 90.0), (True, "orchestration", 0, 50.0, 90.0)]
    assert row["affected_components"] == "broker;email;shipping"
    assert row["affected_component_count"] == 3


def test_component_band_falls_back_to_the_components_frames() -> None:
    baseline = run(requests(), timeseries(), summary(10), components(BASE_COMPONENTS))
    faulted = run(requests(), timeseries(DIP), summary(10), components(FAULT_COMPONENTS))
    row = blast_radius(baseline, faulted, [FAULT]).iloc[0]
    assert row["affected_components"] == "broker;email;shipping"


def test_partition_ends_are_fault_targets() -> None:
    baseline = run(requests(), timeseries(), summary(10), components(BASE_COMPONENTS))
    faulted = run(requests(), timeseries(DIP), summary(10), components(FAULT_COMPONENTS))
    cut = {"type": "partition", "target": "email", "peer": "broker", "start": 50.0, "end": 70.0}
    row = blast_radius(baseline, faulted, [cut]).iloc[0]
    # payment is no target now; email and broker, the two ends of the partition, are.
    assert row["affected_components"] == "payment;shipping"
    assert row["fault_targets"] == "broker;email"


def test_a_partition_names_its_ends_exactly() -> None:
    """A partition of ``email-broker`` and ``payment`` leaves ``email`` and ``broker`` (whose
    names its first end starts with) among the affected components."""
    baseline = run(requests(), timeseries(), summary(10), components(BASE_COMPONENTS))
    faulted = run(requests(), timeseries(DIP), summary(10), components(FAULT_COMPONENTS))
    cut = {"type": "partition", "target": "email-broker", "peer": "payment", "start": 50.0, "end": 70.0}
    row = blast_radius(baseline, faulted, [cut]).iloc[0]
    assert row["affected_components"] == "broker;email;shipping"


def test_component_deviations_flags_and_missing_components() -> None:
    base = components({"a": {"p99_wait": math.nan}, "b": {}}).drop(columns=["topology"])
    fault = components({"a": {"p99_wait": 0.06}, "c": {"mean_queue": 1.5}})
    dev = component_deviations(base, fault).set_index("name")
    assert dev.loc["a", "wait_out"] and not dev.loc["a", "queue_out"]  # NaN wait taken as 0
    assert not dev.loc["b", "out"]  # only in the baseline: idle when faulted
    # Only in the faulted run: compared with an idle baseline, queue 1.5 > max(0, 1) and wait
    # 0.1 > max(0, 0.05) are out; its error rate 0 is not.
    assert dev.loc["c", "queue_out"] and dev.loc["c", "wait_out"] and not dev.loc["c", "errors_out"]


# --- several topologies and replications -------------------------------------------------------


def test_multiple_topologies_and_replications() -> None:
    b_req, f_req, b_ts, f_ts, b_sum, f_sum = [], [], [], [], [], []
    for topo, slow in (("orchestration", [20.0, 20.0]), ("choreography", [100.0, 100.0])):
        for rep in (0, 1):
            b_req.append(requests(topology=topo, replication=rep))
            changes = {55 + rep: ("failed", 0.1)} if topo == "orchestration" else {}
            f_req.append(requests(changes, topology=topo, replication=rep))
            b_ts.append(timeseries(topology=topo, replication=rep))
            # Replication r has its fault in [50 + 10 r, 70 + 10 r).
            comp = [100.0] * (5 + rep) + slow + [100.0] * (13 - rep)
            f_ts.append(timeseries(comp, topology=topo, replication=rep))
            b_sum.append(summary(1000, topology=topo, replication=rep))
            f_sum.append(summary(1000 + 100 * rep, topology=topo, replication=rep))
    baseline = run(pd.concat(b_req), pd.concat(b_ts), pd.concat(b_sum))
    faulted = run(pd.concat(f_req), pd.concat(f_ts), pd.concat(f_sum))
    faults = {
        0: [{"type": "crash", "target": "payment", "start": 50.0, "end": 70.0}],
        1: [
            {"type": "crash", "target": "payment", "start": 60.0, "end": 65.0},
            {"type": "crash", "target": "payment", "start": 66.0, "end": 80.0},
        ],
    }
    frame = blast_radius(baseline, faulted, faults)
    assert list(zip(frame["topology"], frame["replication"])) == [
        ("orchestration", 0),
        ("orchestration", 1),
        ("choreography", 0),
        ("choreography", 1),
    ]
    assert list(frame["fault_start"]) == [50.0, 60.0, 50.0, 60.0]
    assert list(frame["fault_end"]) == [70.0, 80.0, 70.0, 80.0]
    assert list(frame["faults"]) == [1, 2, 1, 2]
    assert list(frame["affected"]) == [1, 1, 0, 0]
    # Orchestration dips for two windows after the fault start, so it is back at the window
    # after fault_end (+10 s); choreography never left the band.
    assert list(frame["impact_end"]) == [80.0, 90.0, 80.0, 90.0]
    assert list(frame["recovery_time"]) == [10.0, 10.0, 10.0, 10.0]
    assert list(frame["retry_amplification"]) == pytest.approx([1.0, 1.1, 1.0, 1.1])
    # A window restricted to one topology applies to it alone.
    only = [{"type": "partition", "target": "broker", "start": 10.0, "end": 20.0, "topology": "choreography"}]
    frame = blast_radius(baseline, faulted, faults[0] + only)
    assert list(frame["fault_start"]) == [50.0, 50.0, 10.0, 10.0]
    assert list(frame["fault_targets"]) == ["payment", "payment", "broker;payment", "broker;payment"]


def test_group_without_fault_window() -> None:
    baseline = run(requests(), timeseries(), summary(10))
    faulted = run(requests({3: ("failed", 0.1)}), timeseries(), summary(10))
    only = [FAULT | {"topology": "choreography"}]
    row = blast_radius(baseline, faulted, only).iloc[0]
    assert math.isnan(row["fault_start"]) and row["settled_by"] == "no_fault"
    assert pd.isna(row["recovered"]) and row["affected"] == 1
    assert blast_radius_summary_lines(blast_radius(baseline, faulted, only)) == [
        "orchestration: no fault window applies"
    ]


def test_lost_counted_from_requests_without_summary_column() -> None:
    baseline = run(requests(), timeseries(), pd.DataFrame({"topology": ["orchestration"], "replication": 0}))
    faulted = run(
        requests({60: ("lost", math.nan), 61: ("lost", math.nan)}),
        timeseries(),
        pd.DataFrame({"topology": ["orchestration"], "replication": [0]}),
    )
    row = blast_radius(baseline, faulted, [FAULT]).iloc[0]
    assert row["lost"] == 2 and row["affected_lost"] == 2
    assert math.isnan(row["retry_amplification"]) and math.isnan(row["duplicates"])


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        Band(settle=0)
    with pytest.raises(ValueError):
        br.fault_frame([{"type": "crash", "target": "x", "start": 5.0, "end": 1.0}])
    with pytest.raises(TypeError):
        main_example(band={"nonsense": 1.0})


# --- text and plots ----------------------------------------------------------------------------


def test_summary_lines() -> None:
    frame = main_example()
    assert blast_radius_summary_lines(frame) == [
        "orchestration: 4 workflows affected (9.8 % of 41 in the impact window), recovered 20.0 s "
        "after the fault; peak backlog 600 (baseline 2); retry amplification 1.20×"
    ]
    two = pd.concat([frame, frame.assign(replication=1, affected=6, recovered=False, recovery_time=40.0)])
    (line,) = blast_radius_summary_lines(two)
    assert line.startswith("orchestration (mean of 2 replications): 5 ± 13 workflows affected")
    assert "recovered 20.0 s after the fault in 1 of 2 replications" in line
    lost = frame.assign(lost=1200.0, affected_components="email;shipping", recovered=False)
    (line,) = blast_radius_summary_lines(lost)
    assert "not recovered by the end of the run (20.0 s after the fault)" in line
    assert line.endswith("; 1,200 lost; also affected: email, shipping")


def test_plots_return_figures() -> None:
    frame = main_example()
    both = pd.concat([frame, frame.assign(topology="choreography", recovered=False)])
    ts_b = pd.concat([timeseries(), timeseries(topology="choreography").drop(columns=["backlog"])])
    ts_f = pd.concat([timeseries(DIP, DIP_P99, DIP_BACKLOG), timeseries(DIP, topology="choreography")])
    crash = [FAULT, FAULT | {"start": 65.0, "end": 72.0}, FAULT | {"start": 120.0, "end": 121.0}]
    for fig in (fault_timelines(ts_b, ts_f, crash), blast_radius_bars(both)):
        assert isinstance(fig, Figure)
    fig = fault_timelines(ts_b, ts_f, crash)
    assert fig.axes[0].get_title() == "orchestration" and len(fig.axes) == 8


def test_module_imports_no_simulation_engine() -> None:
    tree = ast.parse(Path(br.__file__).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
    roots = {m.split(".")[0] for m in modules}
    assert roots <= {
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "typing",
        "numpy",
        "pandas",
        "scipy",
        "sim",
    }
    assert {m for m in modules if m.startswith("sim")} <= {"sim.analysis.statistics"}
