"""The base of every model of the scenario language: strict, frozen, finite.

Unknown keys are rejected (a misspelt field must not be silently ignored), models are immutable
once validated, and ``allow_inf_nan=False`` refuses "inf", "Infinity", "nan" and 1e999, which
pydantic would otherwise read as floats.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A model of the scenario language (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
