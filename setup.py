"""Build the package, with the simulation model (``sim/model``) compiled to C by mypyc.

The model's modules are ordinary, type-checked Python; mypyc (part of mypy) turns them into C
extensions that run the same code faster. Everything else stays Python.

Compiling needs a C compiler. Without one, or with ``SIM_PURE_PYTHON=1`` set while installing,
the package installs as pure Python: the same numbers, more slowly. The build writes a digest of
the sources it compiled to ``sim/model/_build.py``; ``sim.model.native`` runs the sources instead
of extensions built from other ones (an editable installation whose model was edited since).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("native", HERE / "sim" / "model" / "native.py")
assert _spec is not None and _spec.loader is not None
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)
RECORD = native.RECORD

PENDING = [Extension("sim_model__mypyc", sources=[])]
"""Stands for the compiled model until a build needs it (mypyc checks and translates the
sources then, not for every metadata query)."""


def compiled_model() -> list[Extension]:
    """The compiled model's extensions, with its record; none if compiling is not wanted or
    not possible (then the model runs as Python)."""
    RECORD.unlink(missing_ok=True)
    if os.environ.get("SIM_PURE_PYTHON"):
        return []
    sources = native.sources()
    try:
        from mypyc.build import mypycify

        os.chdir(HERE)  # mypyc names the modules after the paths it is given
        exts = mypycify([str(p.relative_to(HERE)) for p in sources], opt_level="3", group_name="sim_model")
    except (Exception, SystemExit) as error:  # type errors, no mypyc: run as Python
        print(f"warning: the model is not compiled ({error!r}); it runs as Python", file=sys.stderr)
        return []
    native.write_record(sources)
    return exts


class BuildModel(build_ext):
    """Compiles the model; if the C compiler fails, warns and leaves the model as Python."""

    def finalize_options(self) -> None:
        if self.distribution.ext_modules is PENDING:
            self.distribution.ext_modules = compiled_model()
        super().finalize_options()

    def build_extensions(self) -> None:
        if self.compiler.compiler_type != "msvc":
            for ext in self.extensions:
                # No fused multiply-add: the same floating-point results as Python's.
                ext.extra_compile_args = [*ext.extra_compile_args, "-ffp-contract=off"]
        try:
            super().build_extensions()
        except Exception as error:
            print(f"warning: the model is not compiled ({error}); it runs as Python", file=sys.stderr)
            self.extensions = []
            RECORD.unlink(missing_ok=True)


setup(ext_modules=PENDING, cmdclass={"build_ext": BuildModel})
