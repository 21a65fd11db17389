"""Visits written out of memory during a run give the figures of visits kept in memory."""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.analysis import chunked
from sim.analysis.chunked import LevelPeak, in_order, quantile
from sim.analysis.evaluation import _concat_requests, evaluate
from sim.analysis.metrics import requests_frame
from sim.api import rundir
from sim.model import effects as effects_module
from sim.model import station as station_module
from sim.model import world as world_module
from sim.model.broker import groups as groups_module
from sim.model.records import GROUP_COLUMNS, GroupRecord, Spill, SpillFolder, TopologyRun
from sim.model.station import JobOptions, Station
from sim.running.simulate import Task, simulate
from sim.running.store import load_records, save_records

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

VALUES = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, 1.0, -2.5]),  # many equal values
    ),
    min_size=1,
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    values=VALUES,
    size=st.integers(1, 60),
    q=st.one_of(st.sampled_from([0.0, 0.5, 0.99, 1.0]), st.floats(0, 1)),
    collect=st.sampled_from([1, 3, 1 << 20]),
)
def test_a_quantile_read_in_chunks_is_numpys_to_the_last_bit(
    values: list[float], size: int, q: float, collect: int
) -> None:
    data = np.array(values)
    chunks = [data[i : i + size] for i in range(0, data.size, size)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunked, "COLLECT", collect)  # 1: every bit of the key settled by passes
        got = quantile(lambda: iter(chunks), q)
    expected = float(np.quantile(data, q))
    assert got == expected or (got == 0.0 and expected == 0.0)


def test_a_quantile_of_nothing_is_nan() -> None:
    assert np.isnan(quantile(lambda: iter([np.empty(0)]), 0.99))


INTERVALS = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 12)), min_size=0, max_size=80
)  # (start, length) on a coarse grid: ties and empty intervals


@settings(max_examples=300, deadline=None)
@given(
    intervals=INTERVALS,
    size=st.integers(1, 30),
    edges=st.lists(st.integers(0, 80), min_size=2, max_size=6, unique=True).map(sorted),
)
def test_the_largest_levels_fed_in_chunks_are_those_of_every_instant(
    intervals: list[tuple[int, int]], size: int, edges: list[int]
) -> None:
    # Openings out of order, as a queue's deliveries record when their messages became ready.
    opens = np.array([s for s, _ in intervals], dtype=float)
    closes = opens + np.array([n for _, n in intervals], dtype=float)
    chunks = [(float(opens[i : i + size].min()), i) for i in range(0, opens.size, size)]
    peak = LevelPeak(np.array(edges, dtype=float))
    for i, bound in in_order(chunks):
        peak.add(opens[i : i + size], closes[i : i + size], bound)
    got = peak.result()
    # By definition, on a grid of half-steps (every interval end is an integer).
    expected = [
        max(int(np.sum((opens <= t) & (t < closes))) for t in np.arange(a, b, 0.5))
        for a, b in itertools.pairwise(edges)
    ]
    assert got.tolist() == expected


def _frames(result: object) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in vars(result).items() if isinstance(v, pd.DataFrame)}


@pytest.mark.parametrize(
    ("name", "duration"),
    [
        ("checkout.yaml", 150.0),  # three topologies, an engine of one shard
        ("temporal-shards.yaml", 120.0),  # shards that hold their server while their writes commit
        ("sqs-visibility.yaml", 150.0),  # a queue's deliveries arrive out of order (when ready)
        ("payment-outage.yaml", 150.0),  # crashes abort work in service, with a fault-free twin
        ("orchestrator-crash.yaml", 120.0),  # an engine that loses its queue
        ("double-charge.yaml", 150.0),  # duplicate effects, refunds
        ("saga-compensation.yaml", 200.0),  # compensations that undo effects late
    ],
)
def test_a_run_that_writes_its_visits_out_gives_the_same_figures(
    name: str, duration: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = sim.load_scenario(SCENARIOS / name).model_copy(update={"duration": duration})
    kept = _frames(sim.run(scenario))
    monkeypatch.setattr(station_module, "SPILL_AT", 64)
    monkeypatch.setattr(effects_module, "SPILL_AT", 40)
    monkeypatch.setattr(groups_module, "SPILL_AT", 64)
    monkeypatch.setattr(world_module, "ARRIVALS_CHUNK", 50)
    spilled_runs = []
    original = world_module.World.records

    def records(self: world_module.World, *args: object, **kwargs: object) -> object:
        run = original(self, *args, **kwargs)  # type: ignore[arg-type]
        spilled_runs.append(
            any(c.spilled is not None for c in run.components)
            and (run.effects is not None and (run.effects.spilled is not None or run.effects.entries < 40))
            and all(g.spilled is not None or g.messages < 64 for g in run.groups)
        )
        return run

    monkeypatch.setattr(world_module.World, "records", records)
    spilled = _frames(sim.run(scenario))
    assert spilled_runs and all(spilled_runs)
    assert kept.keys() == spilled.keys()
    for key, frame in kept.items():
        # Sums are added chunk by chunk: the last bits may differ, nothing else.
        pd.testing.assert_frame_equal(frame, spilled[key], check_exact=False, rtol=1e-12, atol=1e-12, obj=key)


def _spilled_run(monkeypatch: pytest.MonkeyPatch, topology: str = "orchestration") -> TopologyRun:
    monkeypatch.setattr(station_module, "SPILL_AT", 64)
    monkeypatch.setattr(effects_module, "SPILL_AT", 40)
    monkeypatch.setattr(groups_module, "SPILL_AT", 64)
    monkeypatch.setattr(world_module, "ARRIVALS_CHUNK", 50)
    scenario = sim.load_scenario(SCENARIOS / "checkout.yaml").model_copy(update={"duration": 60.0})
    return simulate(Task(scenario, topology))


@pytest.mark.parametrize("topology", ["orchestration", "choreography"])
def test_records_written_out_come_back_in_the_same_chunks_from_the_store_and_from_other_processes(
    topology: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The same chunks, so the same figures, whichever executor ran the simulation.
    run = _spilled_run(monkeypatch, topology)
    save_records(run, tmp_path / "run.npz")
    loaded = load_records(tmp_path / "run.npz")
    assert loaded is not None
    sent = pickle.loads(pickle.dumps(run))
    for copy in (loaded, sent):
        for a, b in zip(run.components, copy.components, strict=True):
            assert (a.spilled is None) == (b.spilled is None)
            if a.spilled is not None and b.spilled is not None:
                assert a.spilled.counts == b.spilled.counts and a.spilled.path != b.spilled.path
            for (fa, *ca), (fb, *cb) in zip(a.chunks(), b.chunks(), strict=True):
                assert fa == fb
                for x, y in zip(ca, cb, strict=True):
                    np.testing.assert_array_equal(x, y)
        assert run.effects is not None and copy.effects is not None
        assert run.effects.spilled is not None and copy.effects.spilled is not None
        assert run.effects.spilled.counts == copy.effects.spilled.counts
        for ca, cb in zip(run.effects.chunks(), copy.effects.chunks(), strict=True):
            for x, y in zip(ca, cb, strict=True):
                np.testing.assert_array_equal(x, y)
        assert all(g.spilled is not None for g in run.groups)
        for ga, gb in zip(run.groups, copy.groups, strict=True):
            assert gb.spilled is not None and ga.spilled is not None
            assert ga.spilled.counts == gb.spilled.counts
            for ca, cb in zip(ga.chunks(), gb.chunks(), strict=True):
                for x, y in zip(ca, cb, strict=True):
                    np.testing.assert_array_equal(x, y)
    scenario = sim.load_scenario(SCENARIOS / "checkout.yaml").model_copy(
        update={"duration": 60.0, "warmup": 10.0}
    )
    frames = [evaluate(scenario, [r]) for r in (run, loaded, sent)]
    for key in ("summary", "components", "timeseries", "lag", "partitions"):
        for other in frames[1:]:
            pd.testing.assert_frame_equal(getattr(frames[0], key), getattr(other, key), check_exact=True)


def test_the_folder_of_written_visits_goes_with_its_run(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _spilled_run(monkeypatch)
    spill = next(c.spilled for c in run.components if c.spilled is not None)
    folder = spill.folder.path
    assert folder.is_dir() and spill.path.is_file()
    del run, spill
    gc.collect()
    assert not folder.exists()


def test_a_station_writes_out_only_visits_whose_records_are_final(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(station_module, "SPILL_AT", 4)
    env = simpy.Environment()
    station = Station(env, "s", "service", 1)
    held = JobOptions(hold=True)
    done: list[int] = []
    for i in range(6):
        station.submit(1.0, done.append, i, options=held if i == 2 else None)
    env.run(until=4.5)  # 0, 1, 2 served; 2 holds its server, so 3 and later wait
    folder = SpillFolder()
    station.spill(folder)
    assert station.base == 2  # 0 and 1 out; 2 holds its server (its end is not final yet)
    station.release(2)
    env.run(until=7.0)  # 3 and 4 served, 5 in service until 7.5
    station.spill(folder)
    assert station.base == 5  # visits 0..4 ended before now; 5 is still in service
    assert station.started_of(1) == 1.0 and station.ended_of(2) == 4.5
    assert station.ended_of(5) == 7.5
    env.run()
    assert station.visit_count() == 6 and done == list(range(6))


def test_a_large_frame_is_written_to_parquet_in_row_groups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setattr(rundir, "ROW_GROUP", 7)
    frame = pd.DataFrame(
        {
            "id": np.arange(30),
            "status": pd.Categorical.from_codes(np.arange(30) % 3, ["completed", "failed", "lost"]),
            "latency": np.linspace(0, 1, 30),
        }
    )
    rundir.write_parquet(frame, tmp_path / "requests.parquet")
    assert pq.ParquetFile(tmp_path / "requests.parquet").metadata.num_row_groups == 5
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "requests.parquet"), frame)


def test_a_message_that_begins_again_after_it_was_written_out_reads_its_last_begin() -> None:
    # A queue's duplicate delivery may begin after the first one was acknowledged and the
    # message's record written out: the record reads the duplicate's begin, as in memory.
    folder = SpillFolder()
    spill = Spill(folder, GROUP_COLUMNS)
    spill.write(
        np.array([0.0, 1.0, 2.0]),
        np.array([1.0, 2.0, 3.0]),
        np.array([0.5, 1.5, 2.5]),
        np.zeros(3, dtype=np.int32),
        np.ones(3, dtype=np.int8),
    )
    record = GroupRecord(
        service="s",
        kind="queue",
        partitions=1,
        consumers=1,
        concurrency=1,
        max_in_flight=1,
        entered=np.array([3.0]),
        left=np.array([np.nan]),
        began=np.array([np.nan]),
        lane=np.zeros(1, dtype=np.int32),
        how=np.zeros(1, dtype=np.int8),
        spilled=spill,
        late_began={1: 4.0},
    )
    whole = record.whole()
    assert record.messages == whole.messages == 4
    np.testing.assert_array_equal(whole.began, [0.5, 4.0, 2.5, np.nan])
    np.testing.assert_array_equal(whole.entered, [0.0, 1.0, 2.0, 3.0])


def test_a_terminated_run_leaves_no_records_behind(tmp_path: Path) -> None:
    scenario = {
        "name": "long-chain",
        "duration": 40000.0,
        "seed": 1,
        "services": {f"s{i}": {"latency": {"dist": "exponential", "mean": 0.1}} for i in range(4)},
        "workflows": {"chain": {"steps": ["s0", "s1", "s2", "s3"]}},
        "load": {"chain": {"arrival": "poisson", "rate": 5.0}},
        "topologies": {"orchestration": {"orchestrator": {"decision_cpu": 0}}},
    }
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(scenario))
    spills = tmp_path / "tmp"
    spills.mkdir()
    env = {**os.environ, "TMPDIR": str(spills)}
    command = [
        sys.executable,
        "-m",
        "sim",
        "run",
        str(path),
        "--no-plots",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    ]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(spills.glob("sim-records-*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(spills.glob("sim-records-*")), "the run wrote no records out"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    assert not any(spills.iterdir())
    assert not (tmp_path / "out").exists()


def test_worker_processes_give_the_figures_of_this_process_when_records_are_written_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(station_module, "SPILL_AT", 64)
    monkeypatch.setattr(effects_module, "SPILL_AT", 40)
    monkeypatch.setattr(groups_module, "SPILL_AT", 64)
    monkeypatch.setattr(world_module, "ARRIVALS_CHUNK", 50)  # (forked workers inherit these)
    scenario = sim.load_scenario(SCENARIOS / "checkout.yaml").model_copy(update={"duration": 120.0})
    here = _frames(sim.run(scenario, replications=2, executor="serial"))
    there = _frames(sim.run(scenario, replications=2, executor="processes", workers=2))
    for key, frame in here.items():
        if key in ("summary", "components"):  # (their wall-clock seconds differ)
            frame, other = frame.filter(regex="^(?!wall)"), there[key].filter(regex="^(?!wall)")
        else:
            other = there[key]
        pd.testing.assert_frame_equal(frame, other, check_exact=True, obj=key)


def test_the_requests_of_several_runs_are_held_once() -> None:
    scenario = sim.load_scenario(SCENARIOS / "checkout.yaml").model_copy(
        update={"duration": 90.0, "warmup": 10.0}
    )
    runs = [simulate(Task(scenario, name)) for name in scenario.topologies]
    frames = [requests_frame(r) for r in runs]
    expected = pd.concat([f.copy() for f in frames], ignore_index=True)
    expected["topology"] = expected["topology"].astype(pd.CategoricalDtype(list(scenario.topologies)))
    joined = _concat_requests(frames, runs)
    pd.testing.assert_frame_equal(joined, expected)
    start = 0
    for run in runs:  # each run's outcomes are now rows of the joined columns
        assert np.shares_memory(run.outcomes.arrival, joined["arrival"].to_numpy())
        np.testing.assert_array_equal(
            run.outcomes.arrival, joined["arrival"].to_numpy()[start : start + run.total]
        )
        start += run.total


def test_records_are_written_out_while_the_run_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    # An overloaded service leaves a backlog that the drain works off after the last arrival.
    scenario = sim.scenario_from_dict(
        {
            "name": "backlog",
            "duration": 20.0,
            "drain": 60.0,
            "seed": 3,
            "services": {"s": {"latency": {"dist": "exponential", "mean": 0.1}}},
            "workflows": {"w": {"steps": ["s"]}},
            "load": {"w": {"arrival": "poisson", "rate": 15.0}},
            "topologies": {"orchestration": {"orchestrator": {"decision_cpu": 0}}},
        }
    )
    monkeypatch.setattr(station_module, "SPILL_AT", 8)
    run = simulate(Task(scenario, "orchestration"))
    assert run.end_time > scenario.duration + 2.0  # the backlog took a while
    record = next(c for c in run.components if c.name == "s")
    assert record.spilled is not None
    written = len(record.spilled.counts)
    # A chunk is written once all its visits have ended: one with a visit that ended after the
    # last arrival was written while the run drained.
    assert any(np.nanmax(record.chunk(k)[3]) > scenario.duration for k in range(written))


_HELD: list[SpillFolder] = []


def _forget_folders() -> None:
    _HELD.clear()
    gc.collect()


def test_a_forked_worker_that_drops_its_copy_of_a_folder_leaves_the_folder_alone() -> None:
    # A worker process forked from this one holds copies of this process's records: dropping
    # them there must not remove the files this process still reads.
    _HELD.append(SpillFolder())
    folder = _HELD[0].path
    child = multiprocessing.get_context("fork").Process(target=_forget_folders)
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert folder.is_dir()
    _HELD.clear()
    gc.collect()
    assert not folder.exists()
