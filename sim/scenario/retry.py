"""Retry policies in the scenario language: how often, and how long apart, a failed call is tried
again (used by services, by the broker's producers, and as Temporal's default under poll)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from sim.scenario.base import StrictModel
from sim.scenario.limits import MAX_ATTEMPTS, MAX_SECONDS


class RetryBudget(StrictModel):
    """A retry quota shared by every call of one caller to one service: the token bucket of the
    AWS SDK's standard retry mode (botocore's ``RetryQuotaChecker``). A retry takes
    ``retry_cost`` tokens (``timeout_cost`` after a timeout) and is refused when the bucket
    holds fewer; a call that succeeds at once puts ``success_refund`` back, and one that
    succeeds after retries gives back what its last retry took. It caps retry storms: once the
    bucket is empty, retries go out only as fast as successes refill it."""

    capacity: PositiveInt = Field(500, le=10**9, description="Tokens in a full bucket (also its start).")
    retry_cost: NonNegativeInt = Field(5, le=10**9, description="Tokens one retry takes.")
    timeout_cost: NonNegativeInt = Field(10, le=10**9, description="Tokens a retry after a timeout takes.")
    success_refund: NonNegativeInt = Field(
        1, le=10**9, description="Tokens a call that succeeds at its first attempt puts back."
    )


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
    budget: RetryBudget | None = Field(
        None,
        description="A retry quota (the AWS SDK's token bucket): `true` or `{}` for its defaults "
        "(500 tokens, 5 per retry, 10 per retry after a timeout, 1 back per success). Omit: none.",
        json_schema_extra={"flag": True},  # also takes true or false
    )

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @model_serializer(mode="wrap")
    def _keep_unlimited(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``max_attempts: null`` (unlimited) is written even when nulls are left out (as in a
        resolved scenario): without it, the file would read back as the default 3 attempts."""
        data: dict[str, Any] = handler(self)
        if self.max_attempts is None:
            data = {"max_attempts": None, **data}  # (in its place: the first field)
        return data

    @model_validator(mode="after")
    def _time_passes(self) -> Retry:
        if self.max_attempts is None and self.initial == 0:
            raise ValueError(
                "unlimited attempts (max_attempts: null) need a backoff (initial > 0): a call refused "
                "at once would otherwise be retried forever at one instant"
            )
        return self
