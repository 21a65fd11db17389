"""Where results are written, and the rules that keep a user's files safe.

Every folder the simulator writes (a run folder, a sweep folder) carries a marker file,
``.orchestration-sim.json``, naming its kind and listing the files the simulator wrote there. The
rules, for ``--out`` as for the Python API:

* a folder that does not exist, or an empty one, is used;
* an existing folder of the same kind, made by the simulator, is replaced (a run folder) or
  resumed (a sweep folder) only when asked (``--overwrite`` / ``overwrite=True`` for runs; sweeps
  always resume their own folder), and only if it holds nothing but files the simulator wrote:
  a file a user added is never deleted;
* any other existing path (a folder of the user's, a file) is refused, with a message.

Default folder names are built from the scenario's name reduced to one safe path component, so a
name such as ``../x`` or ``/etc`` never writes outside ``results/``.

A run folder is written in a temporary folder beside its destination and swapped into place in
one step (Linux ``renameat2(RENAME_EXCHANGE)`` where available), so that at every instant the
destination holds either the old run or the new one. Temporary folders left behind by a process
that was killed are removed by the next write into the same parent folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fnmatch
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.scenario.errors import ScenarioError

MARKER = ".orchestration-sim.json"
"""The marker file of a folder written by the simulator."""

TEMP_TAG = ".sim-tmp-"
"""Part of the name of a temporary folder of ours: ``.<name>.sim-tmp-<pid>-<n>``."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_component(name: str, fallback: str = "scenario") -> str:
    """``name`` as one safe path component: runs of other characters become ``-``, leading dots
    and dashes go, and at most 100 characters are kept (``../x`` → ``x``, ``/etc`` → ``etc``)."""
    text = _UNSAFE.sub("-", name).lstrip(".-")[:100].rstrip(".-")
    return text or fallback


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of ``folder``, or None if it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def write_marker(folder: Path, kind: str, files: Iterable[str]) -> None:
    """Record ``folder`` as a ``kind`` folder of ours holding ``files`` (paths relative to it)."""
    data = {"kind": kind, "files": sorted(set(files))}
    tmp = folder / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)


def add_to_marker(folder: Path, *names: str) -> None:
    """Add files the simulator has just written into one of its folders to its marker."""
    marker = read_marker(folder)
    if marker is not None:
        write_marker(folder, str(marker.get("kind", "run")), [*marker["files"], *names])


def files_of(folder: Path) -> set[str]:
    """Every file below ``folder``, relative to it (the marker itself excluded)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()} - {MARKER}


def foreign_files(folder: Path) -> list[str]:
    """Files below one of our folders that the simulator did not write (the marker lists file
    names, or glob patterns such as ``tasks/*`` for folders whose content grows)."""
    marker = read_marker(folder)
    ours = [str(f) for f in marker["files"]] if marker is not None else []
    return sorted(f for f in files_of(folder) if not any(fnmatch.fnmatchcase(f, p) for p in ours))


def check_output(folder: Path, kind: str, *, overwrite: bool = False, option: str = "--out") -> None:
    """Raise :class:`ScenarioError` (source ``option``) if results may not be written to
    ``folder`` under the rules in the module docstring; create nothing."""
    problem = _output_problem(folder, kind, overwrite)
    if problem is not None:
        raise ScenarioError(option, [f"{folder}: {problem}"])


def _output_problem(folder: Path, kind: str, overwrite: bool) -> str | None:
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder" if parent != folder else "is a file, not a folder"
        if parent.exists():
            break
    if not folder.exists():
        writable = next((p for p in folder.parents if p.exists()), Path("."))
        return None if os.access(writable, os.W_OK | os.X_OK) else f"cannot write into {writable}"
    if not os.access(folder.parent, os.W_OK | os.X_OK):
        return f"cannot write into {folder.parent}"
    if not any(folder.iterdir()):
        return None
    marker = read_marker(folder)
    if marker is None:
        return "exists and is not a folder written by the simulator; choose another folder"
    if marker.get("kind") != kind:
        return f"is a {marker.get('kind')} folder, not a {kind} folder; choose another folder"
    foreign = foreign_files(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        return f"holds files the simulator did not write ({shown}); move them or choose another folder"
    if kind == "run" and not overwrite:
        return "holds an earlier run; give --overwrite to replace it, or choose another folder"
    return None


# --- writing a folder atomically ---------------------------------------------------------------


def temporary_folder(folder: Path) -> Path:
    """A new empty temporary folder beside ``folder`` (after removing stale ones of ours)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(folder.parent)
    for n in range(1000):
        tmp = folder.parent / f".{folder.name[:80]}{TEMP_TAG}{os.getpid()}-{n}"
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp
    raise OSError(f"cannot create a temporary folder beside {folder}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path) -> list[Path]:
    """Remove temporary folders of ours in ``parent`` whose process is gone; return them."""
    removed = []
    pattern = re.compile(rf"^\.(.*){re.escape(TEMP_TAG)}(\d+)-(\d+|old)$")
    with contextlib.suppress(OSError):
        for path in parent.iterdir():
            match = pattern.match(path.name)
            if not match or not path.is_dir() or _alive(int(match.group(2))):
                continue
            final = parent / match.group(1)
            if match.group(3) == "old" and not final.exists():
                path.rename(final)  # killed between the two renames: the old folder comes back
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); False where unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def install(tmp: Path, folder: Path) -> None:
    """Put the finished folder ``tmp`` at ``folder``, replacing what was there (checked by
    :func:`check_output`) so that ``folder`` always holds the old or the new content."""
    if not folder.exists():
        tmp.rename(folder)
        return
    if _exchange(tmp, folder):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = folder.with_name(f".{folder.name}{TEMP_TAG}{os.getpid()}-old")
    folder.rename(old)
    try:
        tmp.rename(folder)
    except BaseException:
        old.rename(folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
