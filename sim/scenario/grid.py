"""The sweep grid language: which scenario fields to vary, over which values, and the grid of runs.

``sim sweep FILE --vary PATH=VALUES ...`` (or a ``sweep:`` section in the scenario file) names
scenario fields by a PATH and gives each a list of VALUES; several factors make a grid (their
cartesian product). How a point is applied to a scenario is
:mod:`sim.scenario.points`.

PATH syntax: dot-separated keys, list items as ``[i]`` or ``.i``::

    load.checkout.rate
    services.payment.replicas                   # may be absent in the file: the last key may be new
    topologies.orchestration.orchestrator.shards
    load.checkout.schedule[1].rate              # or load.checkout.schedule.1.rate

VALUES syntax (:func:`parse_values`)::

    10,20,40             a list; 10 is an int, 2.5 a float, anything else a string (orchestration,hybrid)
    40                   a single value
    10:100:10            start:stop:step; stop is included when it falls on the grid
    0.1:0.5:0.1          5 values, exactly 0.1 0.2 0.3 0.4 0.5 (decimal arithmetic, no float drift)
    log:1:1000:4         count values spaced geometrically from start to stop, both included

This module imports only :mod:`sim.scenario.errors`, so that ``sim.scenario.models`` may import
:class:`SweepSpec` from here.
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
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, field_validator

from sim.scenario.errors import ScenarioError, given

Value = Union[int, float, str]
"""One value of a factor: a number or a string (a name such as a topology kind or a dist)."""

Point = dict[str, Value]
"""One grid point: factor path → value, in factor order."""

MAX_VALUES = 10_000
"""Most values one factor may have (a guard against a mistyped range such as ``0:1e6:1``)."""

MAX_POINTS = 100_000
"""Most points of a grid (the product of its factors' value counts): three factors of 10,000
values would make 10^12 points, listed before the first run."""

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


class GridError(ValueError):
    """A problem in sweep text; turned into a ScenarioError or a pydantic error by the caller."""


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
            raise GridError(f"{text} is too large a number")
        return value
    return None


def _non_finite_text(text: str) -> bool:
    """Whether ``text`` is a spelling of an infinite or NaN number ("inf", "-Infinity", "nan",
    "1e999"), which the scenario's fields would read as one: such a value is refused, not kept
    as a name."""
    try:
        return not math.isfinite(float(text.strip()))
    except (ValueError, OverflowError):
        return False


def _scalar(text: str) -> Value:
    number = _number(text)
    return text.strip() if number is None else number


def show_value(value: Value) -> str:
    """A value as the user would write it (shortest round-trip text for floats)."""
    return repr(value) if isinstance(value, float) else str(value)


def _linear_range(text: str, parts: list[str]) -> list[Value]:
    if len(parts) != 3:
        raise GridError(f"{text!r}: a range is start:stop:step with three numbers, e.g. 10:100:10")
    names = ("start", "stop", "step")
    numbers = [_number(p) for p in parts]
    for name, part, number in zip(names, parts, numbers):
        if number is None:
            what = f"{part.strip()!r} is not a number" if part.strip() else "is missing"
            raise GridError(f"{text!r}: the {name} {what} (a range is start:stop:step, e.g. 10:100:10)")
    # Decimal arithmetic on the text as written: 0.1 + 2 × 0.1 is exactly 0.3, as the user meant.
    start, stop, step = (Decimal(p.strip()) for p in parts)
    if step == 0:
        raise GridError(f"{text!r}: the step must not be 0")
    if (stop - start) * step < 0:
        sign = "positive" if stop > start else "negative"
        raise GridError(
            f"{text!r}: the step must be {sign} to go from {parts[0].strip()} to {parts[1].strip()}"
        )
    quotient = (stop - start) / step
    steps = int(quotient.to_integral_value(rounding=ROUND_FLOOR))
    if quotient - steps > 1 - _TOLERANCE:  # stop is on the grid but for rounding of the step
        steps += 1
    if steps + 1 > MAX_VALUES:
        raise GridError(f"{text!r}: gives {steps + 1} values (at most {MAX_VALUES})")
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
        raise GridError(f"{text!r}: {hint}")
    start, stop, count = (_number(p) for p in parts)
    if start is None or stop is None or count is None:
        raise GridError(f"{text!r}: start, stop and count must be numbers ({hint})")
    if start <= 0 or stop <= 0:
        raise GridError(f"{text!r}: start and stop of a log range must be greater than 0")
    if not isinstance(count, int) or count < 2:
        raise GridError(f"{text!r}: the count must be a whole number of at least 2 ({hint})")
    if count > MAX_VALUES:
        raise GridError(f"{text!r}: gives {count} values (at most {MAX_VALUES})")
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
    """Parse VALUES text; raise :class:`GridError` with a message naming the text."""
    text = text.strip()
    if not text:
        raise GridError(f"no values given (expected {_VALUES_HINT})")
    if "," in text:
        items = [item.strip() for item in text.split(",")]
        for item in items:
            if not item:
                raise GridError(f"{text!r}: empty item in the list")
            if ":" in item:
                raise GridError(f"{text!r}: a list item cannot be a range ({item!r}); give one or the other")
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
        raise GridError(f"{where}no values given (expected {_VALUES_HINT})")
    if len(values) > MAX_VALUES:
        raise GridError(f"{where}{len(values)} values (at most {MAX_VALUES})")
    seen: list[Any] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise GridError(f"{where}a value must be a number or a string, not {given(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise GridError(f"{where}a value must be a finite number, not {value}")
        if isinstance(value, str) and _non_finite_text(value):
            raise GridError(f"{where}a value must be a finite number, not {value.strip()!r}")
        if isinstance(value, str) and not value.strip():
            raise GridError(f"{where}a value must not be an empty string")
        if value in seen:  # 10 and 10.0 are the same value; 10 and "10" are not
            raise GridError(f"{where}{show_value(value)} is listed twice")
        seen.append(value)


def parse_values(text: str) -> list[Value]:
    """The values of a ``--vary PATH=VALUES``: a list ``10,20,40``, a range ``start:stop:step``
    (stop included when it falls on the grid), a log range ``log:start:stop:count`` or one value.

    Numbers written as integers become ints, other numbers floats, anything else stays a string.
    A range whose start, stop and step are all integers gives ints; otherwise floats, computed in
    decimal so that ``0.1:0.5:0.1`` is exactly ``[0.1, 0.2, 0.3, 0.4, 0.5]``. A log range gives
    values rounded to 12 significant digits (ints where integral, if start and stop are ints).
    Raise :class:`~sim.scenario.errors.ScenarioError` (source ``--vary``) on bad text.
    """
    try:
        return _values(text)
    except GridError as exc:
        raise ScenarioError(VARY_SOURCE, [str(exc)]) from None


# --------------------------------------------------------------------------------------------
# Paths and factors


def path_tokens(path: str) -> tuple[str | int, ...]:
    """Tokens of a PATH: keys as strings, bracketed indices as ints (``.1`` stays the string "1");
    raise :class:`GridError` on bad syntax."""
    if not path:
        raise GridError("empty path")
    if path.startswith(".") or path.endswith("."):
        raise GridError(f"{path}: {'starts' if path.startswith('.') else 'ends'} with a dot")
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "[":
            if not tokens:
                raise GridError(f"{path}: a path starts with a field name, not an index")
            match = _INDEX.match(path, pos)
            if match is None:
                raise GridError(f"{path}: bad index at {path[pos:]!r} (expected [0], [1], ...)")
            tokens.append(int(match.group(1)))
        else:
            if path[pos] == "." and tokens:
                pos += 1
            match = _KEY.match(path, pos)
            if match is None:
                raise GridError(f"{path}: empty key at position {pos + 1} (keys are separated by one dot)")
            tokens.append(match.group(0))
        pos = match.end()
        if pos < len(path) and path[pos] not in ".[":
            raise GridError(f"{path}: unexpected {path[pos]!r} at position {pos + 1}")
    return tuple(tokens)


def parse_path(path: str) -> tuple[str | int, ...]:
    """The keys and indices of a PATH (``a.b[1].c`` → ``("a", "b", 1, "c")``; ``a.b.1`` keeps
    ``"1"``, an index if ``a.b`` turns out to be a list). Raise ScenarioError on bad syntax."""
    try:
        return path_tokens(path)
    except GridError as exc:
        raise ScenarioError(VARY_SOURCE, [str(exc)]) from None


def _normal(tokens: Iterable[str | int]) -> tuple[str | int, ...]:
    """Tokens with digit keys as ints, so that ``a.b.1`` and ``a.b[1]`` compare equal."""
    return tuple(int(t) if isinstance(t, str) and t.isdigit() else t for t in tokens)


def _overlap_problems(paths: Iterable[str]) -> list[str]:
    """Paths given twice (in any spelling) or one inside another (``load.checkout`` and
    ``load.checkout.rate``): the order in which they were set would decide the result."""
    problems: list[str] = []
    earlier: list[tuple[str, tuple[str | int, ...]]] = []
    for path in paths:
        tokens = _normal(path_tokens(path))
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
        raise ScenarioError(VARY_SOURCE, [f"{item!r}: expected PATH=VALUES, {example}"])
    if not path:
        raise ScenarioError(VARY_SOURCE, [f"{item!r}: the PATH before '=' is missing, {example}"])
    try:
        path_tokens(path)
    except GridError as exc:
        raise ScenarioError(VARY_SOURCE, [str(exc)]) from None
    if not text.strip():
        raise ScenarioError(VARY_SOURCE, [f"{path}: no values after '=' (expected {_VALUES_HINT})"])
    try:
        values = _values(text)
    except GridError as exc:
        raise ScenarioError(VARY_SOURCE, [f"{path}: {exc}"]) from None
    return Factor(path, tuple(values))


def expand_grid(factors: Sequence[Factor]) -> list[Point]:
    """Every combination of the factors' values, the first factor varying slowest.

    No factors give one point, ``{}`` (the scenario as it is). Raise ScenarioError when a path
    is given twice (``a.b[1]`` and ``a.b.1`` are the same) or one path lies inside another, or
    when the grid would have more than :data:`MAX_POINTS` points.
    """
    try:
        problems = _overlap_problems(f.path for f in factors)
    except GridError as exc:
        raise ScenarioError(VARY_SOURCE, [str(exc)]) from None
    if problems:
        raise ScenarioError(VARY_SOURCE, problems)
    points = math.prod(len(f.values) for f in factors)
    if points > MAX_POINTS:
        raise ScenarioError(VARY_SOURCE, [_too_many_points(points)])
    paths = [f.path for f in factors]
    return [dict(zip(paths, combo)) for combo in itertools.product(*(f.values for f in factors))]


def _too_many_points(points: int) -> str:
    return f"the grid has {points:,} points (the product of the value counts); at most {MAX_POINTS:,}"


# --------------------------------------------------------------------------------------------
# Labels and keys


def describe_point(point: Mapping[str, Value]) -> str:
    """A point as ``path=value,path=value`` text, values as the user would write them."""
    return ",".join(f"{path}={show_value(value)}" for path, value in point.items())


def point_label(point: Mapping[str, Value]) -> str:
    """A readable, file-name-safe name of a point, e.g.
    ``load.checkout.rate=40,services.payment.replicas=2`` (``base`` for the empty point).

    Floats keep their shortest exact text (``0.1``, ``40.0``), so different values never share a
    label; characters that cannot appear in file names (``/ \\ : * ? " < > |``) become ``_``.
    """
    if not point:
        return "base"
    return _UNSAFE.sub("_", describe_point(point))


def content_key(payload: Mapping[str, Any]) -> str:
    """A stable key of plain data: the first 16 hex digits of the SHA-256 of its canonical JSON
    (sorted keys, no spaces). Mapping order does not matter; any changed value does."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def point_key(
    resolved: Mapping[str, Any] | BaseModel, seed: int | None, replication: int, topology: str
) -> str:
    """A stable key of one run: :func:`content_key` of the resolved scenario, seed, replication
    and topology.

    ``resolved`` is the validated scenario as plain data, e.g.
    ``scenario.model_dump(mode="json", by_alias=True)`` (a pydantic model is dumped that way), so
    that ``2`` and ``2.0`` written in two files give the same key. The key says nothing about the
    simulator's version: add it to ``resolved`` where results made by other code must not be
    reused.
    """
    if isinstance(resolved, BaseModel):
        resolved = resolved.model_dump(mode="json", by_alias=True)
    return content_key({"scenario": resolved, "seed": seed, "replication": replication, "topology": topology})


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
        raise ValueError(f"must be a list of values or VALUES text ({_VALUES_HINT}), not {given(value)}")
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
        except GridError as exc:
            raise ValueError(str(exc)) from None
        if problems:
            raise ValueError("; ".join(problems))
        points = math.prod(len(_values(v)) if isinstance(v, str) else len(v) for v in vary.values())
        if points > MAX_POINTS:
            raise ValueError(_too_many_points(points))
        return vary


def factors_from_spec(spec: SweepSpec) -> list[Factor]:
    """The factors of a sweep described in a scenario file, in the file's order."""
    factors = []
    for path, values in spec.vary.items():
        parsed = parse_values(values) if isinstance(values, str) else list(values)
        factors.append(Factor(path, tuple(parsed)))
    return factors
