"""The notebooks run top to bottom on a small configuration, so that they never rot.

Each notebook's first code cell is its parameters cell (tagged ``parameters``); the test replaces
it with small values, executes the notebook in a fresh kernel from the notebooks folder and fails
on the first error. Notebooks are committed without outputs, which is checked here too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

SMALL = {
    "DURATION": 90,  # the checkout scenario's warm-up is 60 s
    "REPLICATIONS": 2,
    "RATES": "20,50",
    "ENGINE_REPLICAS": "3,8",
    "EXECUTOR": "serial",
    "WORKERS": None,
    "TRACE": 1,
    "OUTAGES": [10, 20],
}
"""Small values of the parameters the notebooks use; ``OUT`` is set to a temporary folder."""

PER_NOTEBOOK = {
    "capacity-sweep.ipynb": {"DURATION": 40},
    # payment-outage.yaml: warm-up 30 s, outage at 120-180 s; 260 s covers the recovery.
    "blast-radius.ipynb": {"DURATION": 260, "REPLICATIONS": 1},
    # the spike is at 200-320 s
    "capacity-and-cost.ipynb": {"DURATION": 360, "STARTUP_TIMES": [0, 30], "CLIENTS": [2, 16]},
}
"""Values that differ from ``SMALL`` for one notebook."""


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell must be tagged 'parameters'"
    assert code and code[0] is tagged[0], "the parameters cell must be the first code cell"
    return tagged[0]


def assigned_names(source: str) -> list[str]:
    names = []
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"the parameters cell holds only assignments: {ast.dump(node)}"
        names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def small_parameters(name: str, source: str, out: Path) -> str:
    """The parameters cell with every parameter set to its small value."""
    values = {**SMALL, **PER_NOTEBOOK.get(name, {}), "OUT": str(out)}
    names = assigned_names(source)
    unknown = [n for n in names if n not in values]
    assert not unknown, f"give tests/test_notebooks.py a small value for {unknown}"
    return "\n".join(f"{n} = {values[n]!r}" for n in names) + "\n"


def test_there_are_notebooks():
    names = {p.name for p in PATHS}
    assert {"compare-topologies.ipynb", "capacity-sweep.ipynb"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    parameters_cell(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    # What the repository's check greps for: an outputs list that continues on the next line, or a
    # numbered cell.
    text = path.read_text(encoding="utf-8")
    assert not re.search(r'"outputs": \[$', text, re.MULTILINE)
    assert not re.search(r'"execution_count": [0-9]', text)


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_runs_top_to_bottom(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    cell = parameters_cell(nb)
    cell.source = small_parameters(path.name, cell.source, tmp_path / "out")
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
