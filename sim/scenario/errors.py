"""The error every part of the scenario language raises, and how it names fields and values.

A problem is reported as ``source: field.path: what is wrong``: the file (or the command-line
option) it comes from, the path of the field in the scenario, and a sentence. This module imports
nothing, so every other module of the language (and the command line) can use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ScenarioError(Exception):
    """A scenario that cannot be used; ``problems`` holds one ``path: message`` line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


def field_path(path: str, key: Any) -> str:
    """``path`` extended by a mapping key (``a.b``) or a list index (``a[1]``)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def given(value: Any) -> str:
    """A short description of a wrong value, in YAML terms (``null``, ``a list``, ``'abc'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
