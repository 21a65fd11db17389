"""The cost language: unit prices of what the model counts, so that each topology gets a price
per 1,000 workflows beside its latencies.

Prices are in one currency (the shipped ``scenarios/prices.yaml`` lists US dollars, with their
sources and dates). Each topology pays only for what it runs: an orchestration its engine (state
transitions or actions, its instances and store), a choreography its broker (events, gigabytes,
partitions, brokers), a hybrid both, and every topology its services' replicas. A ``costs:``
section may ``include`` a prices file and ``use`` some of its named price lists; the fields it
gives itself win. A topology's own ``costs:`` overrides the scenario's field by field (one
topology on Step Functions, another on Temporal Cloud).
"""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat, PositiveFloat

from sim.scenario.base import StrictModel

PRICE = 1e9
"""Largest unit price accepted."""


class Costs(StrictModel):
    """Unit prices; a price left out is 0 (free, or not counted)."""

    per_transition: NonNegativeFloat = Field(
        0.0, le=PRICE, description="Per engine decision (a state transition, as Step Functions bills)."
    )
    per_action: NonNegativeFloat = Field(
        0.0,
        le=PRICE,
        description="Per engine action (as Temporal Cloud bills): a workflow started, an activity "
        "attempt dispatched, an event published by the engine.",
    )
    engine_hour: NonNegativeFloat = Field(0.0, le=PRICE, description="Per engine replica-hour.")
    store_hour: NonNegativeFloat = Field(0.0, le=PRICE, description="Per hour of the engine's store.")
    per_store_write: NonNegativeFloat = Field(0.0, le=PRICE, description="Per write to the engine's store.")
    per_event: NonNegativeFloat = Field(
        0.0, le=PRICE, description="Per event the broker appends (SQS or SNS requests, say)."
    )
    per_gb: NonNegativeFloat = Field(0.0, le=PRICE, description="Per gigabyte of events through the broker.")
    event_size_kb: PositiveFloat = Field(1.0, le=1e6, description="Size of one event, in kilobytes.")
    partition_hour: NonNegativeFloat = Field(
        0.0, le=PRICE, description="Per partition-hour (partitions × consumed topics)."
    )
    broker_hour: NonNegativeFloat = Field(0.0, le=PRICE, description="Per broker node-hour.")
    cluster_hour: NonNegativeFloat = Field(
        0.0, le=PRICE, description="Per hour of the broker as a whole (a serverless cluster's fee)."
    )
    replica_hour: NonNegativeFloat = Field(
        0.0, le=PRICE, description="Per service replica-hour (a container or VM per replica)."
    )
    services: dict[str, NonNegativeFloat] = Field(
        {}, description="Service name → its own price per replica-hour (instead of replica_hour)."
    )

    def merged(self, other: Costs | None) -> Costs:
        """These prices with the fields ``other`` gives instead (a topology's own prices)."""
        if other is None:
            return self
        return self.model_copy(update={name: getattr(other, name) for name in other.model_fields_set})
