"""Raw records of a run: plain arrays and frames, free of the simulation engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ComponentRecord:
    """Raw timestamps of one component's visits during one run."""

    name: str
    kind: str
    servers: int | None
    arrived: np.ndarray
    started: np.ndarray
    ended: np.ndarray
    rejected: np.ndarray
    errors: np.ndarray
    aborted: np.ndarray


@dataclass
class TopologyRun:
    """Everything one topology's run produced, before any statistics."""

    topology: str
    kind: str
    seed: int
    replication: int
    requests: pd.DataFrame
    components: list[ComponentRecord]
    messages: int
    end_time: float
    wall_seconds: float
    counters: dict[str, float] = field(default_factory=dict)
    """Run totals: decisions, attempts, duplicates, dead_letters, lost_work, publish_failures,
    breaker_openings, bulkhead_refusals."""
    faults: list[dict[str, object]] = field(default_factory=list)
    """Fault windows applied in this run: type, target, start, end."""
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Spans of the traced workflow instances (empty unless tracing was asked for)."""
