"""Python's cyclic garbage collector around phases that make many short-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Keep Python's cyclic garbage collector to the objects made inside the block.

    Importing matplotlib and drawing figures make many short-lived objects, which trigger full
    collections; each would walk every object of the run and of the loaded modules again (a sixth
    of the time the plots of a run take). ``gc.freeze`` sets the older objects aside until the
    block ends, and collections inside it still free the block's own garbage. A program that
    froze objects itself keeps its own arrangement.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
