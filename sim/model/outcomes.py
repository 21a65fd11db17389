"""How a workflow instance ends: the six outcomes, as the small codes the outcome arrays hold.

Kept apart from the world so that the analysis can name outcomes without importing the
simulation engine.
"""

from __future__ import annotations

IN_FLIGHT, COMPLETED, FAILED, COMPENSATED, INCONSISTENT, LOST = 0, 1, 2, 3, 4, 5
STATUS_NAMES = {
    IN_FLIGHT: "in_flight",
    COMPLETED: "completed",
    FAILED: "failed",
    COMPENSATED: "compensated",
    INCONSISTENT: "inconsistent",
    LOST: "lost",
}
"""completed: every step done; failed: failed before any step had effects; compensated: failed,
and every done step was undone; inconsistent: failed with effects left (a compensation failed or
was not defined); lost: vanished (a non-durable engine went down); in_flight: not finished."""
FINISHED = (COMPLETED, FAILED, COMPENSATED, INCONSISTENT, LOST)
