"""Closed-loop clients: a load whose arrivals answer the system's response times.

An open-loop load (a rate, a schedule, a trace) arrives whatever the system does. Interactive
users do not: each waits for its answer before it asks again. That is the closed queueing
network of the machine-repairman model (M/M/1//N) and of load generators such as JMeter thread
groups or Locust users with a think time. N clients with mean think time Z get a throughput
X = N / (R + Z), R the mean response time (the interactive response-time law), so a slower
system is offered less load, until users lose patience: then each gives up on its instance and
submits a new one, and the retries add load exactly when the system can least take it (a retry
storm).

Each client thinks (a draw of ``think_time`` from a stream of its own, so client c's k-th think
is the same in every topology), submits one instance through the world, and waits for the
outcome the world records (:meth:`World.finish`), whatever it is. With ``patience`` it waits at
most that long; the instance it gives up on goes on in the system (a user closing the tab
cancels nothing server-side), and the client submits a new instance after the backoff of its
``retry`` policy (:class:`~sim.model.resilience.RetryPolicy`, a retry budget included), as long
as the policy allows another attempt; else it goes back to thinking. Clients submit nothing once
the arrival period (``duration``) is over.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import Timeout

from sim.model import streams
from sim.model.outcomes import COMPLETED
from sim.model.resilience import RetryPolicy
from sim.model.workflow import Instance, WorkflowPlan
from sim.scenario.models import Load

if TYPE_CHECKING:
    from sim.model.world import World

THINK_BATCH = 16
"""Think times drawn at a time per client: thousands of clients each hold a stream."""


class Clients:
    """The closed-loop clients of one workflow (its load has ``clients``)."""

    def __init__(self, world: World, plan: WorkflowPlan, load: Load) -> None:
        assert load.clients is not None and load.think_time is not None
        self.world = world
        self.plan = plan
        self.load = load
        self.end = world.scenario.duration
        self.patience = load.patience
        self.policy = RetryPolicy(
            load.client_retry, world.uniforms(f"client-jitter/{plan.name}"), world.counters
        )
        """One policy for all the workflow's clients (one retry budget, if any, between them)."""

    def start(self, arrive: Callable[[Instance], None]) -> None:
        """Start every client (each thinks first, from time 0)."""
        for c in range(self.load.clients or 0):
            self.world.env.process(self._client(c, arrive))

    def _client(self, c: int, arrive: Callable[[Instance], None]) -> Generator[simpy.Event, Any, None]:
        world, env, policy, counters = self.world, self.world.env, self.policy, self.world.counters
        assert self.load.think_time is not None
        think = streams.draws(
            self.load.think_time,
            world.seed,
            f"think/{self.plan.name}/{c}",
            world.replication,
            batch=THINK_BATCH,
        )
        while True:
            yield Timeout(env, think())
            if env.now >= self.end:
                return
            attempt, cost = 1, 0
            while True:
                done = world.submit(self.plan, arrive)
                counters.client_submissions += 1
                if self.patience is None:
                    yield done
                    break
                yield done | Timeout(env, self.patience)
                if done.triggered:  # it ended within the client's patience
                    if done.value == COMPLETED:
                        policy.succeeded(cost)
                    break
                counters.abandoned += 1
                if not policy.allows(attempt):
                    break
                cost = policy.charge()
                if cost < 0:  # the retry budget refused it
                    break
                delay = policy.next_delay(attempt)
                if delay > 0:
                    yield Timeout(env, delay)
                if env.now >= self.end:
                    return
                counters.client_retries += 1
                attempt += 1
