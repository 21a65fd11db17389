"""Applying a sweep point to a scenario: set each varied field in the raw data, then validate.

Each grid point (:mod:`sim.scenario.grid`) is applied to the *raw* scenario data (as parsed from
YAML, before validation) and the result validated as usual, so a sweep can set any field the
scenario language has, and every problem is reported in the loader's ``file: field.path: what is
wrong`` style, prefixed by the point that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.scenario.errors import ScenarioError, field_path, given
from sim.scenario.grid import VARY_SOURCE, GridError, Value, describe_point, path_tokens
from sim.scenario.loader import scenario_from_dict
from sim.scenario.models import Scenario


def _tree_copy(value: Any, ancestors: dict[int, Any]) -> Any:
    """A copy of plain data in which no two places share an object, so that setting one place
    never changes another. (A YAML alias ``*engine`` used in two topologies is one object in
    the parsed data, and :func:`copy.deepcopy` would keep it shared.) A recursive structure keeps
    its cycles."""
    if isinstance(value, Mapping):
        if id(value) in ancestors:
            return ancestors[id(value)]
        out: dict[Any, Any] = {}
        ancestors[id(value)] = out
        for key, item in value.items():
            out[key] = _tree_copy(item, ancestors)
        del ancestors[id(value)]
        return out
    if isinstance(value, (list, tuple)):
        if id(value) in ancestors:
            return ancestors[id(value)]
        items: list[Any] = []
        ancestors[id(value)] = items
        items.extend(_tree_copy(item, ancestors) for item in value)
        del ancestors[id(value)]
        return items
    if isinstance(value, (set, bytearray)):
        return value.copy()
    return value  # scalars (str, numbers, None, dates) are immutable


def _set(root: dict[str, Any], path: str, value: Value) -> None:
    """Set ``path`` in ``root`` in place; raise :class:`GridError` if it addresses no place."""
    tokens = path_tokens(path)
    node: Any = root
    where = ""
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        here = where or "the top level"
        if isinstance(node, dict):
            known = f"known: {', '.join(sorted(str(k) for k in node))}" if node else "it is empty"
            if isinstance(token, int):
                raise GridError(f"{here} is a mapping, not a list ({known})")
            if token not in node and not last:
                place = f"in {where}" if where else "at the top level"
                raise GridError(f"no {token!r} {place} ({known})")
            step: str | int = token
        elif isinstance(node, list):
            if isinstance(token, str) and not token.isdigit():
                raise GridError(f"{here} is a list, not a mapping; address an item as {here}[0]")
            step = int(token)
            if step >= len(node):
                items = f"it has {len(node)}: [0] to [{len(node) - 1}]" if node else "it is empty"
                raise GridError(f"no item [{step}] in {here} ({items})")
        else:
            shown = f"{token!r}" if isinstance(token, str) else f"item [{token}]"
            raise GridError(f"{here} is {given(node)}, not a mapping or a list, so it has no {shown}")
        if last:
            node[step] = value
            return
        node = node[step]
        where = field_path(where, step)


def apply_point(
    data: Mapping[str, Any], point: Mapping[str, Value], source: str, *, origin: str = VARY_SOURCE
) -> dict[str, Any]:
    """A copy of raw scenario ``data`` (as parsed from YAML) with each path of ``point`` set.

    Every path must address an existing place, except that its last key may be new in an
    existing mapping (an optional field absent from the file, such as
    ``services.payment.replicas``); whether the scenario language has that field is then for
    validation to say (see :func:`scenario_for_point`). ``data`` is left unchanged, and places
    that YAML aliases share in ``data`` are separate in the copy.

    Raise :class:`~sim.scenario.errors.ScenarioError` with ``source`` and one line per bad path:
    ``--vary load.chekout.rate: no 'chekout' in load (known: checkout)`` (``origin`` names where
    the paths come from: ``--vary``, or e.g. ``sweep.vary`` for a sweep in the file).
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(source, ["the top level must be a mapping of fields"])
    result = _tree_copy(data, {})
    problems: list[str] = []
    for path, value in point.items():
        try:
            _set(result, path, value)
        except GridError as exc:
            problems.append(f"{origin} {path}: {exc}")
    if problems:
        raise ScenarioError(source, problems)
    return result


def scenario_for_point(
    data: Mapping[str, Any],
    point: Mapping[str, Value],
    source: str,
    base_dir: str | Path = ".",
    *,
    origin: str = VARY_SOURCE,
    allow_outside: bool = False,
) -> Scenario:
    """The validated scenario of one grid point: :func:`apply_point`, then
    :func:`sim.scenario.loader.scenario_from_dict`.

    A validation problem is re-raised with each line prefixed by the point, e.g.
    ``checkout.yaml: --vary services.payment.replicaz=2: services.payment.replicaz: unknown field
    (did you mean 'replicas'?)``. Validate the base scenario first: a problem of the file itself
    would otherwise be reported against every point. ``data`` should carry the scenario's name
    (``load_scenario`` defaults it to the file's stem).
    """
    applied = apply_point(data, point, source, origin=origin)
    try:
        return scenario_from_dict(applied, source=source, base_dir=base_dir, allow_outside=allow_outside)
    except ScenarioError as exc:
        if not point:
            raise
        prefix = f"{origin} {describe_point(point)}"
        raise ScenarioError(exc.source, [f"{prefix}: {p}" for p in exc.problems]) from None
