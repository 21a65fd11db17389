"""Retry policies in the scenario language: how often, and how long apart, a failed call is tried
again (used by services, by the broker's producers, and as Temporal's default under poll)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from sim.scenario.base import StrictModel
from sim.scenario.limits import MAX_ATTEMPTS, MAX_SECONDS


class Retry(StrictModel):
    """Retries of a failed call: ``max_attempts`` in all (the first included), waiting
    min(max_backoff, initial × multiplier^(n−1)) before retry n, with optional jitter.
    Defaults follow the AWS SDK standard mode (3 attempts, 100 ms base, ×2, full jitter, 20 s cap)."""

    max_attempts: PositiveInt | None = Field(
        3,
        le=MAX_ATTEMPTS,
        description="Attempts in all, the first included (at most 100); null: unlimited "
        "(Temporal's default, bounded by the service's schedule_to_close).",
    )
    initial: NonNegativeFloat = Field(
        0.1, le=MAX_SECONDS, description="Backoff before the first retry, in seconds."
    )
    multiplier: float = Field(
        2.0, ge=1, description="Factor between successive backoffs (the backoff stops at max_backoff)."
    )
    max_backoff: PositiveFloat = Field(20.0, le=MAX_SECONDS, description="Longest backoff, in seconds.")
    jitter: Literal["none", "full", "equal"] = Field(
        "full", description="none: exact backoff; full: uniform in [0, b]; equal: uniform in [b/2, b]."
    )
