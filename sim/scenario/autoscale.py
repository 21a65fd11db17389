"""Autoscaling in the scenario language: a Kubernetes HorizontalPodAutoscaler on a component's
replicas (KEDA's scalers for queue and lag metrics), used by services and by the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from sim.scenario.base import StrictModel
from sim.scenario.limits import MAX_COUNT, MAX_SECONDS, MAX_SERVERS


class Autoscale(StrictModel):
    """Replicas between ``min`` and ``max``, recomputed every ``interval`` seconds as the HPA does:
    desired = ceil(current × metric / target), left alone while metric / target is within
    ``tolerance`` of 1. ``utilization`` is the share of the replicas' servers busy over the last
    interval (a replica still starting counts as idle, as the HPA counts a pod not yet ready);
    ``queue`` the requests waiting for a server and ``lag`` the messages of the service's
    subscription not yet processed (KEDA's Kafka scaler; for a service that reads no broker, the
    backlog of its task queue), both as a total, so desired = ceil(total / target). A scale-down
    takes the highest recommendation of the last ``stabilization_down`` seconds, a scale-up the
    lowest of the last ``stabilization_up``; a scale-up adds at most max(4 replicas, 100 %) per
    15 s, the HPA's default policy. A new replica serves after ``startup_time``; one scaled in
    drains (takes no new work, finishes what it holds for at most ``drain_timeout``) and is gone.
    Replicas are paid for from their start to their end."""

    min: PositiveInt = Field(1, le=MAX_SERVERS, description="Fewest replicas.")
    max: PositiveInt = Field(le=MAX_SERVERS, description="Most replicas.")
    metric: Literal["utilization", "queue", "lag"] = Field(
        "utilization",
        description="utilization: busy share of the servers over the last interval; queue: requests "
        "waiting; lag: messages not yet processed (a consumer group's lag, a task queue's backlog).",
    )
    target: PositiveFloat = Field(
        description="Target of the metric: a share in (0, 1] for utilization, a count per replica "
        "for queue and lag."
    )
    interval: float = Field(
        15.0,
        ge=1,
        le=MAX_SECONDS,
        description="Seconds between evaluations, at least 1 (the HPA's sync period, 15 s).",
    )
    stabilization_up: NonNegativeFloat = Field(
        0.0, le=MAX_SECONDS, description="Scale-up stabilization window, in seconds (HPA default 0)."
    )
    stabilization_down: NonNegativeFloat = Field(
        300.0, le=MAX_SECONDS, description="Scale-down stabilization window, in seconds (HPA default 300)."
    )
    startup_time: NonNegativeFloat = Field(
        0.0, le=MAX_SECONDS, description="Seconds from a replica's start until it serves."
    )
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="No change while metric / target is within this of 1 (HPA: 0.1)."
    )
    drain_timeout: NonNegativeFloat = Field(
        30.0,
        le=MAX_SECONDS,
        description="Longest drain of a replica scaled in, in seconds (terminationGracePeriodSeconds).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if self.metric == "utilization" and self.target > 1:
            raise ValueError("a utilization target is a share of the servers, at most 1")
        if self.target > MAX_COUNT:
            raise ValueError(f"target must be at most {MAX_COUNT:,}")
        return self

    def initial(self, replicas: int) -> int:
        """The replicas a component starts with: its configured ones, within [min, max]."""
        return min(max(replicas, self.min), self.max)


class Scalable:
    """What a component with replicas and an optional ``autoscale`` (a service, the engine) says
    of its replicas."""

    if TYPE_CHECKING:
        replicas: int
        autoscale: Autoscale | None

    @property
    def most_replicas(self) -> int:
        """Replicas it may ever have (autoscale's max, or its fixed replicas)."""
        return self.replicas if self.autoscale is None else self.autoscale.max

    @property
    def initial_replicas(self) -> int:
        """Replicas it starts with."""
        return self.replicas if self.autoscale is None else self.autoscale.initial(self.replicas)
