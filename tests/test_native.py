"""The compiled model and its sources: the same numbers, and the sources used when the build is stale."""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import sim.model
from sim.model import native

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

RUN = """
import pickle, sys
import pandas as pd
import sim, sim.model
frames = {}
for name in ["checkout.yaml", "kafka-rebalance.yaml", "engine-db-outage.yaml"]:
    result = sim.run(sys.argv[1] + "/" + name, duration=150.0)
    frames[name] = {k: v for k, v in vars(result).items() if isinstance(v, pd.DataFrame)}
pickle.dump((sim.model.COMPILED, frames), sys.stdout.buffer)
"""


def _frames(pure: bool) -> tuple[bool, dict[str, dict[str, pd.DataFrame]]]:
    env = {k: v for k, v in os.environ.items() if k != "SIM_PURE_PYTHON"}
    if pure:
        env["SIM_PURE_PYTHON"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(SCENARIOS)], env=env, capture_output=True, check=True, timeout=600
    )
    compiled, frames = pickle.loads(done.stdout)
    return compiled, frames


@pytest.mark.slow
def test_the_compiled_model_gives_the_numbers_of_its_sources_to_the_last_bit() -> None:
    compiled, fast = _frames(pure=False)
    assert compiled == sim.model.COMPILED  # (False on a machine without a C compiler)
    interpreted, slow = _frames(pure=True)
    assert not interpreted
    assert fast.keys() == slow.keys()
    for name in fast:
        assert fast[name].keys() == slow[name].keys()
        for key, frame in fast[name].items():
            if "wall_seconds" in frame.columns:  # (how long the run took, not what it found)
                frame = frame.drop(columns="wall_seconds")
                slow[name][key] = slow[name][key].drop(columns="wall_seconds")
            pd.testing.assert_frame_equal(frame, slow[name][key], check_exact=True, obj=f"{name} {key}")


def test_a_build_from_the_current_sources_is_used() -> None:
    try:
        built = importlib.import_module("sim.model._build").SOURCES
    except ImportError:
        pytest.skip("the model was installed without compiling it")
    assert built == native.digest(native.sources())
    compiled = sim.model.COMPILED
    assert compiled == (not os.environ.get("SIM_PURE_PYTHON"))
    station = importlib.import_module("sim.model.station")
    assert station.__file__ is not None
    assert station.__file__.endswith(".py") != compiled


def test_a_build_from_other_sources_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIM_PURE_PYTHON", raising=False)
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, native.Sources)])

    class Stale:
        SOURCES = "0" * 64

    real = importlib.import_module
    monkeypatch.setattr(
        importlib, "import_module", lambda name, *a: Stale if name.endswith("._build") else real(name, *a)
    )
    with pytest.warns(RuntimeWarning, match="other sources"):
        assert native.choose() is False
    assert any(isinstance(f, native.Sources) for f in sys.meta_path)
    # Asked for, the sources run without a warning.
    monkeypatch.setenv("SIM_PURE_PYTHON", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.choose() is False


def test_the_import_hook_loads_model_modules_from_their_sources() -> None:
    finder = native.Sources()
    spec = finder.find_spec("sim.model.broker.groups", None)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin) == ROOT / "sim" / "model" / "broker" / "groups.py"
    assert finder.find_spec("sim.model.broker", None) is None  # a package: found the usual way
    assert finder.find_spec("sim.model.records", None) is None  # never compiled
    assert finder.find_spec("sim.analysis.metrics", None) is None  # not the model
    assert finder.find_spec("sim.model.nothing", None) is None


def test_the_digest_covers_every_compiled_module_and_its_content(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("__init__.py", "a.py", "records.py", "sub/b.py"):
        (tmp_path / name).write_text("x = 1\n")
    files = native.sources(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.py", "sub/b.py"]
    before = native.digest(files, tmp_path)
    (tmp_path / "sub" / "b.py").write_text("x = 2\n")
    assert native.digest(files, tmp_path) != before
