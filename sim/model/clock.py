"""The engine's cheapest event: a wake-up that SimPy's loop runs as it runs a ``Timeout``.

Every service visit and every delayed call of the model is one engine event. A SimPy ``Timeout``
costs two Python calls to make (its constructor and ``Environment.schedule``); a :class:`Due`
goes into the same queue under the same key (time, priority, event id), so events run in the
same order as with ``Timeout`` (and every result is the same), for a fraction of the cost once
the model is compiled. It relies on what SimPy 4's ``Environment.step`` itself uses: the heap
``_queue`` of (time, priority, id, event) and the id counter ``_eid``; of the event, ``step``
reads ``callbacks`` and ``_ok``. For the same reason the model's hot paths read the clock as
``env._now``, the attribute behind SimPy's ``now`` property (a Python call each time).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy

NORMAL = 1
"""SimPy's priority of an ordinary event (``simpy.events.NORMAL``)."""


class Due:
    """A wake-up at a set time: its ``callbacks`` are called with it (``_value``: what they read)."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, value: Any, callback: Callable[[Due], None]) -> None:
        self._ok = True
        self._value = value
        self.callbacks: list[Callable[[Due], None]] | None = [callback]
        """Called when the time comes (SimPy sets it to None once they are)."""


def due(env: simpy.Environment, delay: float, value: Any, callback: Callable[[Due], None]) -> Due:
    """Schedule a :class:`Due` ``delay`` seconds from now, exactly as ``Timeout(env, delay,
    value)`` with ``callback`` would be."""
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    event = Due(value, callback)
    queue: list[Any] = env._queue  # (typed by SimPy for its own events)
    heappush(queue, (env._now + delay, NORMAL, next(env._eid), event))
    return event
