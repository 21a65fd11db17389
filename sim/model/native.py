"""Whether the model runs compiled, and how it runs its Python sources when it cannot.

An installation with a C compiler compiles the model's modules with mypyc (see ``setup.py``):
each ``module.py`` gets an extension ``module.*.so`` beside it, which Python imports in its
place. The build writes ``_build.py`` here, with the digest of the sources it compiled.

The extensions are used only when they were built from the sources as they are now, all of them
or none (compiled classes refer to each other directly, so a module cannot be swapped alone):
after a source is edited in an editable installation, or with ``SIM_PURE_PYTHON`` set (to profile
or debug the model line by line), :func:`choose` installs an import hook that loads every model
module from its source. Both ways run the same code and give the same numbers, to the last bit.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
PACKAGE = __name__.rpartition(".")[0]

RECORD = HERE / "_build.py"
"""What the build writes: the digest of the sources it compiled (see :func:`write_record`)."""

INTERPRETED = ("__init__.py", "native.py", RECORD.name, "records.py")
"""Model modules that stay Python: the package, this module and the build's record; and the
records, which are file and array work (their temporary folder is weakly referenced, which a
compiled class cannot be)."""


def sources(root: Path = HERE) -> list[Path]:
    """The model modules that are compiled, in a fixed order."""
    return sorted(p for p in root.rglob("*.py") if p.name not in INTERPRETED)


def digest(paths: Sequence[Path], root: Path = HERE) -> str:
    """One digest of the sources' names and contents."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def write_record(paths: Sequence[Path]) -> None:
    """Record that the build compiled ``paths`` as they are now (read by :func:`choose`)."""
    RECORD.write_text(
        '"""Written by the build (setup.py): the digest of the model sources it compiled."""\n\n'
        f'SOURCES = "{digest(paths)}"\n'
    )


class Sources(importlib.abc.MetaPathFinder):
    """Loads the model's modules from their Python sources, even where an extension is beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PACKAGE + "."):
            return None
        file = HERE.joinpath(*fullname.split(".")[2:]).with_suffix(".py")
        if file.name in INTERPRETED or not file.is_file():
            return None  # (a package, or a module that is never compiled: the usual way)
        return importlib.util.spec_from_file_location(fullname, file)


def choose() -> bool:
    """Use the compiled model if it is current (return True); else load the sources."""
    reason = None
    if os.environ.get("SIM_PURE_PYTHON"):
        reason = ""  # asked for: no warning
    else:
        try:
            built = importlib.import_module(f"{PACKAGE}.{RECORD.stem}").SOURCES
        except ImportError:
            reason = ""  # installed without a compiler: nothing compiled to use
        else:
            if built != digest(sources()):
                reason = (
                    "the compiled model was built from other sources than those installed now; "
                    "running the sources (slower). Install the package again to compile them."
                )
    if reason is None:
        return True
    if not any(isinstance(f, Sources) for f in sys.meta_path):
        sys.meta_path.insert(0, Sources())
    if reason:
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
    return False
