"""A workflow as the world runs it: steps compiled into stages and branches, and its instances.

A scenario's workflow (a list of steps, some of them parallel groups of branches) is compiled
once per world into a :class:`WorkflowPlan`: every service call becomes a :class:`StepPlan` that
knows its station and which steps act on its completion, so coordinators never re-read the
scenario while running. An :class:`Instance` is one running workflow with the work it brings.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.model.station import Station


@dataclass(eq=False)
class StepPlan:
    """One service call of a workflow, with its place in the stage/branch structure."""

    index: int
    service: str
    stage: int
    branch: int
    position: int
    station: Station
    last_in_branch: bool = False
    next_in_branch: StepPlan | None = None
    followers: list[StepPlan] = field(default_factory=list)
    """Steps that act on this step's completion: the next in its branch, or the first step of
    every branch of the next stage."""
    inputs: int = 1
    """Completions this step waits for (the branches of the previous stage, for a join)."""
    terminal: bool = False
    """Whether this step ends a branch of the last stage."""


@dataclass(eq=False)
class WorkflowPlan:
    """A workflow compiled for one world: stages of branches of steps, and its draw functions.

    ``stages[s][b]`` is the list of steps of branch ``b`` of stage ``s``; a plain step is a stage
    with one branch of one step.
    """

    name: str
    offset: int
    """Global id of its first instance (a world with closed-loop clients: 0, ids are given as
    instances are created)."""
    count: int
    """Its instances (a world with closed-loop clients: those created so far)."""
    stages: list[list[list[StepPlan]]]
    steps: list[StepPlan]
    service_draws: list[Callable[[], float]]
    error_draws: list[tuple[int, Callable[[], float]]]
    retry_work: list[Callable[[], float]]
    """Service times of retried attempts, per step, drawn in order of use."""
    retry_errors: list[Callable[[], float]]
    compensation_work: list[Callable[[], float] | None]
    compensation_errors: list[Callable[[], float]]
    net_in_draws: list[Callable[[], float]] | None
    net_out_draws: list[Callable[[], float]] | None
    net_entry_draw: Callable[[], float] | None
    no_errors: list[float] = field(default_factory=list)
    business: list[float] = field(default_factory=list)
    """Each step's business error probability (refusals that are never retried)."""
    parallel_undo: bool = False
    """Whether its saga compensates all at once (else one after another, the last first)."""
    deadline: float | None = None
    """Seconds after arrival by which an instance must be over, else it fails (None: none)."""
    pivot_stage: int = -1
    """The stage of its pivot step (-1: none): later stages are retried forward."""

    @functools.cached_property
    def entry_steps(self) -> list[StepPlan]:
        """First steps of every branch of the first stage."""
        return [branch[0] for branch in self.stages[0]]


class Instance:
    """One running workflow instance: its identity, the work it brings and its progress."""

    __slots__ = (
        "applied",
        "arrival",
        "calls",
        "committed",
        "dispatch",
        "effects",
        "errors",
        "failure",
        "finished",
        "first_effect",
        "gid",
        "index",
        "joins",
        "marks",
        "net_entry",
        "net_in",
        "net_out",
        "overheads",
        "partition",
        "pending",
        "plan",
        "shard",
        "standing",
        "undo_failed",
        "undoing",
        "work",
    )

    work: list[float]
    """Service time of each step's first attempt."""
    errors: list[float]
    """U(0, 1) error draw of each step's first attempt (2.0 where the service cannot fail)."""
    net_in: list[float]
    """Hop to the service of each step."""
    net_out: list[float]
    """Hop back from the service of each step."""
    net_entry: float
    """Hop from the client to the coordinator."""
    overheads: list[float]
    """Engine work of the start decision and of the decision after each step (orchestration)."""
    dispatch: list[float]
    """Dispatch latency of each step's first task (orchestration)."""

    def __init__(self, plan: WorkflowPlan, index: int, arrival: float, gid: int) -> None:
        self.plan = plan
        self.index = index
        self.gid = gid
        """Its slot in the world's outcome arrays (see :class:`sim.model.world.World`)."""
        self.arrival = arrival
        self.finished = False
        self.pending = 0
        self.joins: dict[int, int] | None = None
        # Saga bookkeeping (see :mod:`sim.model.saga`): steps whose effects stand (in the order
        # they took effect), steps still running, the step that failed (-1 while none has),
        # compensations in progress.
        self.effects: list[int] = []
        self.calls = 0
        self.failure = -1
        self.first_effect = math.nan
        self.undoing = 0
        self.undo_failed = False
        # The effect ledger's view (see :mod:`sim.model.effects`): steps that ever took effect
        # (a bit each), and standing applications per step once a step stands other than once.
        self.applied = 0
        self.standing: list[int] | None = None
        self.committed = False
        """Whether it has passed its saga's pivot (steps after it are retried forward)."""
        self.shard = 0
        """The engine shard the instance lives on (orchestration)."""
        self.partition = 0
        """The partition of the broker its events go to (a log)."""
        self.marks: dict[object, float] | None = None
        """Start instants of open spans; only traced instances have it."""
