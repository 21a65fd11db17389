"""Parameter sweeps: which scenario fields to vary, over which values, and the grid of runs.

``sim sweep FILE --vary PATH=VALUES ...`` (or a ``sweep:`` section in the scenario file) names
scenario fields by a PATH and gives each a list of VALUES; several factors make a grid (their
cartesian product). Each grid point is applied to the *raw* scenario data (as parsed from YAML,
before validation) and the result validated as usual, so a sweep can set any field the scenario
language has, and every problem is reported in the loader's ``file: field.path: what is wrong``
style, prefixed by the point that caused it.

PATH syntax: dot-separated keys, list items as ``[i]`` or ``.i``::

    load.checkout.rate
    services.payment.replicas                   # may be absent in the file: the last key may be new
    topologies.orchestration.orchestrator.workers
    load.checkout.schedule[1].rate              # or load.checkout.schedule.1.rate

VALUES syntax (:func:`parse_values`)::

    10,20,40             a list; 10 is an int, 2.5 a float, anything else a string (orchestration,hybrid)
    40                   a single value
    10:100:10            start:stop:step; stop is included when it falls on the grid
    0.1:0.5:0.1          5 values, exactly 0.1 0.2 0.3 0.4 0.5 (decimal arithmetic, no float drift)
    log:1:1000:4         count values spaced geometrically from start to stop, both included

This module imports nothing from :mod:`sim.scenario` at import time, so that
``sim.scenario.models`` may import :class:`SweepSpec` from here without an import cycle.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, field_validator

if TYPE_CHECKING:
    from sim.scenario.models import Scenario

Value = Union[int, float, str]
"""One value of a factor: a number or a string (a name such as a topology kind or a dist)."""

Point = dict[str, Value]
"""One grid point: factor path → value, in factor order."""

MAX_VALUES = 10_000
"""Most values one factor may have (a guard against a mistyped range such as ``0:1e6:1``)."""

VARY_SOURCE = "--vary"
"""The ``source`` of errors about ``--vary`` text."""

_TOLERANCE = Decimal("1e-9")  # relative to the step: how close to the grid a range's stop must be
_SIGNIFICANT = 12  # significant digits kept of geometrically spaced values
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KEY = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(\d+)\]")
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')  # characters that do not belong in a file name
_VALUES_HINT = "a list like 10,20,40, a range start:stop:step like 10:100:10, or log:start:stop:count"


class _Problem(ValueError):
    """A problem in sweep text; turned into a ScenarioError or a pydantic error by the caller."""


def _scenario_error(source: str, problems: Sequence[str]) -> Exception:
    from sim.scenario.loader import ScenarioError  # late: see the module docstring

    return ScenarioError(source, problems)


# --------------------------------------------------------------------------------------------
# Values


def _number(text: str) -> int | float | None:
    """The number written in ``text`` (an int when written without point or exponent), or None."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):
            raise _Problem(f"{text} is too large a number")
        return value
    return None


def _scalar(text: str) -> Value:
    number = _number(text)
    return text.strip() if number is None else number


def _show(value: Value) -> str:
    """A value as the user would write it (shortest round-trip text for floats)."""
    return repr(value) if isinstance(value, float) else str(value)


def _linear_range(text: str, parts: list[str]) -> list[Value]:
    if len(parts) != 3:
        raise _Problem(f"{text!r}: a range is start:stop:step with three numbers, e.g. 10:100:10")
    names = ("start", "stop", "step")
    numbers = [_number(p) for p in parts]
    for name, part, number in zip(names, parts, numbers):
        if number is None:
            what = f"{part.strip()!r} is not a number" if part.strip() else "is missing"
            raise _Problem(f"{text!r}: the {name} {what} (a range is start:stop:step, e.g. 10:100:10)")
    # Decimal arithmetic on the text as written: 0.1 + 2 × 0.1 is exactly 0.3, as the user meant.
    start, stop, step = (Decimal(p.strip()) for p in parts)
    if step == 0:
        raise _Problem(f"{text!r}: the step must not be 0")
    if (stop - start) * step < 0:
        sign = "positive" if stop > start else "negative"
        raise _Problem(
            f"{text!r}: the step must be {sign} to go from {parts[0].strip()} to {parts[1].strip()}"
        )
    quotient = (stop - start) / step
    steps = int(quotient.to_integral_value(rounding=ROUND_FLOOR))
    if quotient - steps > 1 - _TOLERANCE:  # stop is on the grid but for rounding of the step
        steps += 1
    if steps + 1 > MAX_VALUES:
        raise _Problem(f"{text!r}: gives {steps + 1} values (at most {MAX_VALUES})")
    whole = all(isinstance(n, int) for n in numbers)
    values: list[Value] = []
    for i in range(steps + 1):
        value = start + i * step
        if i == steps and abs(value - stop) <= _TOLERANCE * abs(step):
            value = stop
        values.append(int(value) if whole else float(value))
    return values


def _log_range(text: str, parts: list[str]) -> list[Value]:
    hint = "a log range is log:start:stop:count, e.g. log:1:1000:4"
    if len(parts) != 3:
        raise _Problem(f"{text!r}: {hint}")
    start, stop, count = (_number(p) for p in parts)
    if start is None or stop is None or count is None:
        raise _Problem(f"{text!r}: start, stop and count must be numbers ({hint})")
    if start <= 0 or stop <= 0:
        raise _Problem(f"{text!r}: start and stop of a log range must be greater than 0")
    if not isinstance(count, int) or count < 2:
        raise _Problem(f"{text!r}: the count must be a whole number of at least 2 ({hint})")
    if count > MAX_VALUES:
        raise _Problem(f"{text!r}: gives {count} values (at most {MAX_VALUES})")
    whole = isinstance(start, int) and isinstance(stop, int)
    ratio = math.log(stop / start)
    values: list[Value] = []
    for i in range(count):
        if i == 0:
            raw = float(start)
        elif i == count - 1:
            raw = float(stop)
        else:
            raw = start * math.exp(ratio * i / (count - 1))
        value = float(f"{raw:.{_SIGNIFICANT}g}")  # 9.999999999999998 → 10.0
        values.append(int(value) if whole and value.is_integer() else value)
    return values


def _values(text: str) -> list[Value]:
    """Parse VALUES text; raise :class:`_Problem` with a message naming the text."""
    text = text.strip()
    if not text:
        raise _Problem(f"no values given (expected {_VALUES_HINT})")
    if "," in text:
        items = [item.strip() for item in text.split(",")]
        for item in items:
            if not item:
                raise _Problem(f"{text!r}: empty item in the list")
            if ":" in item:
                raise _Problem(f"{text!r}: a list item cannot be a range ({item!r}); give one or the other")
        values = [_scalar(item) for item in items]
    elif text.startswith("log:"):
        values = _log_range(text, text[4:].split(":"))
    elif ":" in text:
        values = _linear_range(text, text.split(":"))
    else:
        values = [_scalar(text)]
    _check_values(values, text)
    return values


def _check_values(values: Sequence[Any], text: str | None = None) -> None:
    where = f"{text!r}: " if text is not None else ""
    if not values:
        raise _Problem(f"{where}no values given (expected {_VALUES_HINT})")
    if len(values) > MAX_VALUES:
        raise _Problem(f"{where}{len(values)} values (at most {MAX_VALUES})")
    seen: list[Any] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _Problem(f"{where}a value must be a number or a string, not {_given(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Problem(f"{where}a value must be a finite number, not {value}")
        if isinstance(value, str) and not value.strip():
            raise _Problem(f"{where}a value must not be an empty string")
        if value in seen:  # 10 and 10.0 are the same value; 10 and "10" are not
            raise _Problem(f"{where}{_show(value)} is listed twice")
        seen.append(value)


def parse_values(text: str) -> list[Value]:
    """The values of a ``--vary PATH=VALUES``: a list ``10,20,40``, a range ``start:stop:step``
    (stop included when it falls on the grid), a log range ``log:start:stop:count`` or one value.

    Numbers written as integers become ints, other numbers floats, anything else stays a string.
    A range whose start, stop and step are all integers gives ints; otherwise floats, computed in
    decimal so that ``0.1:0.5:0.1`` is exactly ``[0.1, 0.2, 0.3, 0.4, 0.5]``. A log range gives
    values rounded to 12 significant digits (ints where integral, if start and stop are ints).
    Raise :class:`~sim.scenario.loader.ScenarioError` (source ``--vary``) on bad text.
    """
    try:
        return _values(text)
    except _Problem as exc:
        raise _scenario_error(VARY_SOURCE, [str(exc)]) from None


# --------------------------------------------------------------------------------------------
# Paths and factors


def _parse_path(path: str) -> tuple[str | int, ...]:
    """Tokens of a PATH: keys as strings, bracketed indices as ints (``.1`` stays the string "1")."""
    if not path:
        raise _Problem("empty path")
    if path.startswith(".") or path.endswith("."):
        raise _Problem(f"{path}: {'starts' if path.startswith('.') else 'ends'} with a dot")
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "[":
            if not tokens:
                raise _Problem(f"{path}: a path starts with a field name, not an index")
            match = _INDEX.match(path, pos)
            if match is None:
                raise _Problem(f"{path}: bad index at {path[pos:]!r} (expected [0], [1], ...)")
            tokens.append(int(match.group(1)))
        else:
            if path[pos] == "." and tokens:
                pos += 1
            match = _KEY.match(path, pos)
            if match is None:
                raise _Problem(f"{path}: empty key at position {pos + 1} (keys are separated by one dot)")
            tokens.append(match.group(0))
        pos = match.end()
        if pos < len(path) and path[pos] not in ".[":
            raise _Problem(f"{path}: unexpected {path[pos]!r} at position {pos + 1}")
    return tuple(tokens)


def parse_path(path: str) -> tuple[str | int, ...]:
    """The keys and indices of a PATH (``a.b[1].c`` → ``("a", "b", 1, "c")``; ``a.b.1`` keeps
    ``"1"``, an index if ``a.b`` turns out to be a list). Raise ScenarioError on bad syntax."""
    try:
        return _parse_path(path)
    except _Problem as exc:
        raise _scenario_error(VARY_SOURCE, [str(exc)]) from None


def _normal(tokens: Iterable[str | int]) -> tuple[str | int, ...]:
    """Tokens with digit keys as ints, so that ``a.b.1`` and ``a.b[1]`` compare equal."""
    return tuple(int(t) if isinstance(t, str) and t.isdigit() else t for t in tokens)


def _overlap_problems(paths: Iterable[str]) -> list[str]:
    """Paths given twice (in any spelling) or one inside another (``load.checkout`` and
    ``load.checkout.rate``): the order in which they were set would decide the result."""
    problems: list[str] = []
    earlier: list[tuple[str, tuple[str | int, ...]]] = []
    for path in paths:
        tokens = _normal(_parse_path(path))
        for other, other_tokens in earlier:
            if tokens == other_tokens:
                same = "" if other == path else f" (as {other})"
                problems.append(f"{path}: varied twice{same}")
            elif tokens[: len(other_tokens)] == other_tokens or other_tokens[: len(tokens)] == tokens:
                problems.append(f"{path}: overlaps {other} (vary one or the other)")
        earlier.append((path, tokens))
    return problems


@dataclass(frozen=True)
class Factor:
    """One varied field: its PATH and the values it takes, in order."""

    path: str
    values: tuple[Value, ...]


def parse_vary(item: str) -> Factor:
    """A :class:`Factor` from ``--vary`` text ``PATH=VALUES`` (see :func:`parse_values`)."""
    path, sep, text = item.partition("=")
    path = path.strip()
    example = "e.g. load.checkout.rate=10,20,40"
    if not sep:
        raise _scenario_error(VARY_SOURCE, [f"{item!r}: expected PATH=VALUES, {example}"])
    if not path:
        raise _scenario_error(VARY_SOURCE, [f"{item!r}: the PATH before '=' is missing, {example}"])
    try:
        _parse_path(path)
    except _Problem as exc:
        raise _scenario_error(VARY_SOURCE, [str(exc)]) from None
    if not text.strip():
        raise _scenario_error(VARY_SOURCE, [f"{path}: no values after '=' (expected {_VALUES_HINT})"])
    try:
        values = _values(text)
    except _Problem as exc:
        raise _scenario_error(VARY_SOURCE, [f"{path}: {exc}"]) from None
    return Factor(path, tuple(values))


def expand_grid(factors: Sequence[Factor]) -> list[Point]:
    """Every combination of the factors' values, the first factor varying slowest.

    No factors give one point, ``{}`` (the scenario as it is). Raise ScenarioError when a path
    is given twice (``a.b[1]`` and ``a.b.1`` are the same) or one path lies inside another.
    """
    try:
        problems = _overlap_problems(f.path for f in factors)
    except _Problem as exc:
        raise _scenario_error(VARY_SOURCE, [str(exc)]) from None
    if problems:
        raise _scenario_error(VARY_SOURCE, problems)
    paths = [f.path for f in factors]
    return [dict(zip(paths, combo)) for combo in itertools.product(*(f.values for f in factors))]


# --------------------------------------------------------------------------------------------
# Applying a point


def _given(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(where: str, token: str | int) -> str:
    if isinstance(token, int):
        return f"{where}[{token}]"
    return f"{where}.{token}" if where else token


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
    """Set ``path`` in ``root`` in place; raise :class:`_Problem` if it addresses no place."""
    tokens = _parse_path(path)
    node: Any = root
    where = ""
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        here = where or "the top level"
        if isinstance(node, dict):
            known = f"known: {', '.join(sorted(str(k) for k in node))}" if node else "it is empty"
            if isinstance(token, int):
                raise _Problem(f"{here} is a mapping, not a list ({known})")
            if token not in node and not last:
                place = f"in {where}" if where else "at the top level"
                raise _Problem(f"no {token!r} {place} ({known})")
            step: str | int = token
        elif isinstance(node, list):
            if isinstance(token, str) and not token.isdigit():
                raise _Problem(f"{here} is a list, not a mapping; address an item as {here}[0]")
            step = int(token)
            if step >= len(node):
                items = f"it has {len(node)}: [0] to [{len(node) - 1}]" if node else "it is empty"
                raise _Problem(f"no item [{step}] in {here} ({items})")
        else:
            shown = f"{token!r}" if isinstance(token, str) else f"item [{token}]"
            raise _Problem(f"{here} is {_given(node)}, not a mapping or a list, so it has no {shown}")
        if last:
            node[step] = value
            return
        node = node[step]
        where = _join(where, step)


def apply_point(
    data: Mapping[str, Any], point: Mapping[str, Value], source: str, *, origin: str = VARY_SOURCE
) -> dict[str, Any]:
    """A copy of raw scenario ``data`` (as parsed from YAML) with each path of ``point`` set.

    Every path must address an existing place, except that its last key may be new in an
    existing mapping (an optional field absent from the file, such as
    ``services.payment.replicas``); whether the scenario language has that field is then for
    validation to say (see :func:`scenario_for_point`). ``data`` is left unchanged, and places
    that YAML aliases share in ``data`` are separate in the copy.

    Raise :class:`~sim.scenario.loader.ScenarioError` with ``source`` and one line per bad path:
    ``--vary load.chekout.rate: no 'chekout' in load (known: checkout)`` (``origin`` names where
    the paths come from: ``--vary``, or e.g. ``sweep.vary`` for a sweep in the file).
    """
    if not isinstance(data, Mapping):
        raise _scenario_error(source, ["the top level must be a mapping of fields"])
    result = _tree_copy(data, {})
    problems: list[str] = []
    for path, value in point.items():
        try:
            _set(result, path, value)
        except _Problem as exc:
            problems.append(f"{origin} {path}: {exc}")
    if problems:
        raise _scenario_error(source, problems)
    return result


def _describe(point: Mapping[str, Value]) -> str:
    return ",".join(f"{path}={_show(value)}" for path, value in point.items())


def scenario_for_point(
    data: Mapping[str, Any],
    point: Mapping[str, Value],
    source: str,
    base_dir: str | Path = ".",
    *,
    origin: str = VARY_SOURCE,
) -> Scenario:
    """The validated scenario of one grid point: :func:`apply_point`, then
    :func:`sim.scenario.loader.scenario_from_dict`.

    A validation problem is re-raised with each line prefixed by the point, e.g.
    ``checkout.yaml: --vary services.payment.replicaz=2: services.payment.replicaz: unknown field
    (did you mean 'replicas'?)``. Validate the base scenario first: a problem of the file itself
    would otherwise be reported against every point. ``data`` should carry the scenario's name
    (``load_scenario`` defaults it to the file's stem).
    """
    from sim.scenario.loader import ScenarioError, scenario_from_dict

    applied = apply_point(data, point, source, origin=origin)
    try:
        return scenario_from_dict(applied, source=source, base_dir=base_dir)
    except ScenarioError as exc:
        if not point:
            raise
        prefix = f"{origin} {_describe(point)}"
        raise ScenarioError(exc.source, [f"{prefix}: {p}" for p in exc.problems]) from None


# --------------------------------------------------------------------------------------------
# Labels and keys


def point_label(point: Mapping[str, Value]) -> str:
    """A readable, file-name-safe name of a point, e.g.
    ``load.checkout.rate=40,services.payment.replicas=2`` (``base`` for the empty point).

    Floats keep their shortest exact text (``0.1``, ``40.0``), so different values never share a
    label; characters that cannot appear in file names (``/ \\ : * ? " < > |``) become ``_``.
    """
    if not point:
        return "base"
    return _UNSAFE.sub("_", _describe(point))


def point_key(
    resolved: Mapping[str, Any] | BaseModel, seed: int | None, replication: int, topology: str
) -> str:
    """A stable key of one run: the first 16 hex digits of the SHA-256 of the canonical JSON
    (sorted keys, no spaces) of the resolved scenario, seed, replication and topology.

    ``resolved`` is the validated scenario as plain data, e.g.
    ``scenario.model_dump(mode="json", by_alias=True)`` (a pydantic model is dumped that way), so
    that ``2`` and ``2.0`` written in two files give the same key. Mapping order does not matter;
    any changed value does. The key says nothing about the simulator's version: a sweep that
    skips finished work by this key reuses results made by older code.
    """
    if isinstance(resolved, BaseModel):
        resolved = resolved.model_dump(mode="json", by_alias=True)
    payload = {"scenario": resolved, "seed": seed, "replication": replication, "topology": topology}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# A sweep in the scenario file


def _vary_values(value: Any) -> list[Value] | str:
    """A ``sweep.vary`` entry: kept as written (a list, or VALUES text), checked here."""
    if isinstance(value, str):
        _values(value)
        return value
    if isinstance(value, (list, tuple)):
        values = list(value)
        _check_values(values)
        return values
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a list of values or VALUES text ({_VALUES_HINT}), not {_given(value)}")
    _check_values([value])
    return [value]  # a single number is a list of one


_VALUES_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": {"type": ["number", "string"]}, "minItems": 1},
        {"type": "string", "description": f"VALUES text: {_VALUES_HINT}"},
        {"type": "number"},
    ]
}

VaryValues = Annotated[
    Union[list[Value], str],
    PlainValidator(_vary_values),
    WithJsonSchema(_VALUES_SCHEMA),
]


class SweepSpec(BaseModel):
    """A parameter sweep: every combination of the values of the varied fields is one run.

    ::

        sweep:
          vary:
            load.checkout.rate: [10, 20, 40]
            services.payment.replicas: "1:4:1"
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vary: dict[str, VaryValues] = Field(
        min_length=1,
        description="Field PATH (e.g. load.checkout.rate, services.payment.replicas, "
        "load.checkout.schedule[1].rate) → its values: a list, or text as in `--vary`: "
        "10,20,40, a range start:stop:step (stop included when on the grid), or "
        "log:start:stop:count. The first field varies slowest.",
    )

    @field_validator("vary")
    @classmethod
    def _paths(cls, vary: dict[str, Any]) -> dict[str, Any]:
        try:
            problems = _overlap_problems(vary)
        except _Problem as exc:
            raise ValueError(str(exc)) from None
        if problems:
            raise ValueError("; ".join(problems))
        return vary


def factors_from_spec(spec: SweepSpec) -> list[Factor]:
    """The factors of a sweep described in a scenario file, in the file's order."""
    factors = []
    for path, values in spec.vary.items():
        parsed = parse_values(values) if isinstance(values, str) else list(values)
        factors.append(Factor(path, tuple(parsed)))
    return factors
