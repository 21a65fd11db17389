"""``report.html`` for a run folder: read the folder, render the report, write it atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from sim.analysis.report import render_report
from sim.api.folders import add_to_marker
from sim.api.rundir import read_run
from sim.scenario.errors import ScenarioError

REPORT_NAME = "report.html"

RUN_FILES = (
    "scenario.yaml",
    "meta.json",
    "summary.csv",
    "components.csv",
    "requests.parquet",
    "timeseries.csv",
)
"""Files that make a folder a run folder (see :mod:`sim.api.rundir`)."""


class NotARunFolder(ValueError):
    """The folder given to :func:`write_report` is not a readable run folder."""


def _check_run_folder(folder: Path) -> None:
    if not folder.exists():
        raise NotARunFolder(f"{folder}: no such folder")
    if not folder.is_dir():
        raise NotARunFolder(f"{folder}: not a run folder (not a folder)")
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        raise NotARunFolder(f"{folder}: not a run folder (missing {', '.join(missing)})")


def write_report(folder: str | Path, out: str | Path | None = None, images: str = "svg") -> Path:
    """Read the run folder ``folder`` and write its report atomically, by default as
    ``folder/report.html`` (``out``: another file, or a folder to write ``report.html`` into);
    return the path written. Raises :class:`NotARunFolder` when ``folder`` is not a readable run
    folder, and :class:`~sim.scenario.errors.ScenarioError` when its scenario is invalid."""
    folder = Path(folder)
    _check_run_folder(folder)
    try:
        result = read_run(folder)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # one line
        raise NotARunFolder(f"{folder}: cannot read the run folder ({type(exc).__name__}: {reason})") from exc
    target = folder / REPORT_NAME if out is None else Path(out)
    if target.is_dir():
        target = target / REPORT_NAME
    _check_target(target)
    html = render_report(result, images=images)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(target, html)
    if target.parent.resolve() == folder.resolve():
        add_to_marker(folder, target.name)
    return target


GENERATOR = '<meta name="generator" content="orchestration-sim">'
"""The tag every report carries, by which an earlier report is recognised and may be replaced."""


def _check_target(target: Path) -> None:
    """Refuse to write the report over anything but an earlier report (or into a file)."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ScenarioError("--out", [f"{target}: {parent} is a file, not a folder"])
            break
    if not target.exists():
        return
    if not target.is_file():
        raise ScenarioError("--out", [f"{target}: exists and is not a file"])
    try:
        with open(target, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise ScenarioError("--out", [f"{target}: cannot read it ({exc.strerror})"]) from None
    if GENERATOR not in head:
        raise ScenarioError("--out", [f"{target}: exists and is not a report of ours; choose another file"])


def write_text_atomically(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file beside it, swapped into place: a
    reader never sees half a file, and an interrupted write leaves the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
