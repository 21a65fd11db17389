"""The engine's cheapest event: a wake-up that SimPy's loop runs as it runs a ``Timeout``.

Every service visit and every delayed call of the model is one engine event. A SimPy ``Timeout``
costs two Python calls to make (its constructor and ``Environment.schedule``); a :class:`Due`
goes into the same queue under the same key (time, priority, event id), so events run in the
same order as with ``Timeout`` (and every result is the same), for a fraction of the cost once
the model is compiled. It relies on what SimPy 4's ``Environment.step`` itself uses: the heap
``_queue`` of (time, priority, id, event) and the id counter ``_eid``; of the event, ``step``
reads ``callbacks`` and ``_ok``. For the same reason the model's hot paths read the clock as
``env._now``, the attribute behind SimPy's ``now`` property (a Python call each time), and
:func:`run` is ``Environment.run``'s loop over ``step``, compiled with the model.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, URGENT, Event, EventPriority


class Due:
    """A wake-up at a set time: its ``callbacks`` are called with it (``_value``: what they read)."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, value: Any, callback: Callable[[Due], None]) -> None:
        self._ok = True
        self._value = value
        self.callbacks: list[Callable[[Due], None]] | None = [callback]
        """Called when the time comes (SimPy sets it to None once they are)."""


def due(
    env: simpy.Environment, delay: float, value: Any, callback: Callable[[Due], None], urgent: bool = False
) -> Due:
    """Schedule a :class:`Due` ``delay`` seconds from now, exactly as ``Timeout(env, delay,
    value)`` with ``callback`` would be (``urgent``: with the priority of a process's start)."""
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    event = Due(value, callback)
    queue: list[Any] = env._queue  # (typed by SimPy for its own events)
    heappush(queue, (env._now + delay, URGENT if urgent else NORMAL, next(env._eid), event))
    return event


def run(env: simpy.Environment, until: float | Event) -> None:
    """``env.run(until)``: process events until the time ``until``, or until the event
    ``until`` has been processed (SimPy 4's ``run`` and ``step``, step by step)."""
    if not isinstance(until, Event):
        at = float(until)
        if at <= env._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = Event(env)
        stop._ok = True
        stop._value = None
        env.schedule(stop, URGENT, at - env._now)
        until = stop
    elif until.callbacks is None:
        return  # processed already
    assert until.callbacks is not None
    until.callbacks.append(StopSimulation.callback)
    queue: list[Any] = env._queue
    try:
        while queue:
            env._now, _, _, event = heappop(queue)
            callbacks = event.callbacks
            event.callbacks = None  # (no callback added while they run)
            i = 0
            try:
                for callback in callbacks:
                    i += 1
                    callback(event)
            except StopSimulation:
                # The rest of the callbacks run when the simulation resumes.
                event.callbacks = callbacks[i:]
                env.schedule(event, EventPriority(-1))
                raise
            if not event._ok and not hasattr(event, "_defused"):
                failure = event._value
                error = type(failure)(*failure.args)
                error.__cause__ = failure
                raise error
    except StopSimulation:
        return
    raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}')
