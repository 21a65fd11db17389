"""The effect ledger: every time a step's work takes effect at its service, and every undo.

A step *takes effect* when its work ends successfully at its service, whether or not its caller
still waits for it: the late work of an abandoned (timed-out) attempt, a redelivered event
processed again, a retry after a lost reply all take effect. The ledger is the truth that the
coordinators know only in part:

* the first application of a workflow's step is an **effect**;
* a repeat at a service that is not ``idempotent`` applies again: a **duplicate effect** (a
  second charge); an idempotent service recognises the step (an idempotency key it has seen)
  and **absorbs** the repeat;
* a compensation that succeeds **undoes** one standing application of the step (a refund undoes
  one charge, so a double charge refunded once still stands).

Every application therefore ends standing, undone or absorbed, and :meth:`EffectLedger.check`
proves it at the end of the run. A workflow that ends unsuccessfully with an application
standing is inconsistent, never failed: the saga asks the ledger when it settles, and the world
reconciles at the end of the run the workflows whose effects landed after they had ended.
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import simpy

from sim.model.records import EFFECT_COLUMNS, EffectRecord, Spill, SpillFolder
from sim.model.workflow import Instance

APPLIED, DUPLICATE, ABSORBED, UNDONE = 1, 2, 3, 4
"""Kinds of ledger entries."""
KIND_NAMES = {APPLIED: "applied", DUPLICATE: "duplicate", ABSORBED: "absorbed", UNDONE: "undone"}

SPILL_AT = 1 << 18
"""Entries the ledger holds in memory before it writes them out (:meth:`EffectLedger.spill`):
about 4 MB."""

_STEP_SHIFT, _GID_SHIFT = 4, 20
_KIND_MASK, _STEP_MASK = (1 << _STEP_SHIFT) - 1, (1 << (_GID_SHIFT - _STEP_SHIFT)) - 1
"""How an entry's code packs its kind (4 bits), step (16 bits) and instance (the rest)."""


class EffectLedger:
    """The ledger of one world: an entry per application or undo (when, which instance, which
    step, what kind), and per instance its standing applications and first effect."""

    def __init__(self, total: int, idempotent: frozenset[str], env: simpy.Environment) -> None:
        self.idempotent = idempotent
        """Services that absorb a repeated effect of the same workflow step."""
        self.env = env
        self.time = array("d")
        self.code = array("q")
        """Each entry's instance, step and kind in one integer (:meth:`columns` unpacks them):
        two appends per entry instead of four, on the path of every step."""
        self.standing = array("i", [0]) * total
        """Standing applications per instance (by its global index)."""
        self.first = array("d", [math.nan]) * total
        """Instant of each instance's first effect."""
        self.spilled: Spill | None = None
        """Entries written out of memory (:meth:`spill`), before those in ``time`` and ``code``."""

    def grow(self) -> None:
        """A slot for one more instance (a world whose instances are not known up front)."""
        self.standing.append(0)
        self.first.append(math.nan)

    def _record(self, inst: Instance, k: int, kind: int) -> None:
        self.time.append(self.env._now)
        self.code.append((inst.gid << _GID_SHIFT) | (k << _STEP_SHIFT) | kind)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The entries as arrays: time (a view of the ledger's), instance (global index), step,
        kind; each in the narrowest type that holds it (a long run has tens of millions)."""
        code = np.frombuffer(self.code, dtype=np.int64)
        gid = code >> _GID_SHIFT
        if len(self.standing) < 2**31:
            gid = gid.astype(np.int32)
        step = code >> _STEP_SHIFT
        step &= _STEP_MASK
        return (
            np.frombuffer(self.time, dtype=float),
            gid,
            step.astype(np.uint16),  # (_STEP_MASK: 16 bits)
            (code & _KIND_MASK).astype(np.int8),
        )

    def _counts(self, inst: Instance) -> list[int]:
        """The standing applications of each step of ``inst`` (kept only once a step stands
        other than once: until then its applied steps stand once each)."""
        counts = inst.standing
        if counts is None:
            applied = inst.applied
            counts = inst.standing = [(applied >> k) & 1 for k in range(len(inst.plan.steps))]
        return counts

    def apply(self, inst: Instance, k: int) -> int:
        """Step ``k`` of ``inst`` has just taken effect at its service; return the entry's kind."""
        mask = 1 << k
        now = self.env._now
        if not inst.applied & mask:  # the first application (the hot path: written out)
            inst.applied |= mask
            gid = inst.gid
            if inst.first_effect != inst.first_effect:  # NaN: its first effect
                inst.first_effect = now
                self.first[gid] = now
            if inst.standing is not None:
                inst.standing[k] += 1
            self.standing[gid] += 1
            self.time.append(now)
            self.code.append((gid << _GID_SHIFT) | (k << _STEP_SHIFT) | APPLIED)
            return APPLIED
        if inst.plan.steps[k].service in self.idempotent:
            kind = ABSORBED
        else:
            kind = DUPLICATE
            self._counts(inst)[k] += 1
            self.standing[inst.gid] += 1
        self._record(inst, k, kind)
        return kind

    def undo(self, inst: Instance, k: int) -> bool:
        """A compensation of step ``k`` succeeded: it undoes one standing application (none: it
        had nothing to undo). Return whether it undid one."""
        if not inst.applied & (1 << k):
            return False
        counts = self._counts(inst)
        if counts[k] == 0:
            return False
        counts[k] -= 1
        self.standing[inst.gid] -= 1
        self._record(inst, k, UNDONE)
        return True

    def stands(self, inst: Instance) -> bool:
        """Whether an application of any step of ``inst`` stands."""
        return self.standing[inst.gid] > 0

    def crowded(self) -> bool:
        """Whether :meth:`spill` would write entries out (:data:`SPILL_AT` or more in memory)."""
        return len(self.code) >= SPILL_AT

    def spill(self, folder: SpillFolder) -> None:
        """Write the entries out of memory (they never change once recorded)."""
        if self.spilled is None:
            self.spilled = Spill(folder, EFFECT_COLUMNS)
        self.spilled.write(*self.columns())
        del self.time[:], self.code[:]

    def record(self) -> EffectRecord:
        """Every entry: those written out and those in memory."""
        return EffectRecord(*self.columns(), spilled=self.spilled)

    def check(self) -> None:
        """Every application is standing, undone or absorbed: raise if the entries disagree with
        the standing counts."""
        applied = undone = 0
        for _, _, _, kinds in self.record().chunks():
            applied += int(np.count_nonzero((kinds == APPLIED) | (kinds == DUPLICATE)))
            undone += int(np.count_nonzero(kinds == UNDONE))
        standing = int(np.frombuffer(self.standing, dtype=np.int32).sum())
        if applied - undone != standing or standing < 0:
            raise AssertionError(
                f"effects violated: {applied} applications, {undone} undone, {standing} standing"
            )
