"""Reading scenario files: YAML in, a validated :class:`Scenario` out, or one clear error.

Every problem is reported as ``file: field.path: what is wrong`` so that a user can find it without
a traceback. PyYAML silently keeps the last of two equal keys; this loader refuses duplicates (and
keys that are lists or mappings), naming the field path, and refuses infinite or NaN numbers.

It also refuses what would make reading itself fail or run away (:mod:`sim.scenario.limits`):
anything but a regular file (a FIFO or ``/dev/zero`` would block or never end), files over
10 MB, lists and mappings nested more than 50 deep (PyYAML and pydantic recurse, and would fail
with a RecursionError), and documents of more than 100,000 values once their aliases are
expanded (an "alias bomb" of a kilobyte would keep validation busy for minutes). And it refuses
the surprises of YAML 1.1, which PyYAML implements: ``12:30:00`` is the base-60 number 45000,
``010`` the octal number 8, and ``2024-01-02`` a date; a scenario wants seconds written as plain
numbers, and text that looks like these must be quoted.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from sim.scenario.broker import Broker
from sim.scenario.costs import Costs
from sim.scenario.distributions import DIST_NAMES, _checked_path
from sim.scenario.errors import ScenarioError, field_path, given
from sim.scenario.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from sim.scenario.models import TOPOLOGY_KINDS, Fault, Parallel, Scenario, Topology

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_LONGEST_INT = 100
"""Characters of the longest whole number accepted (every bound is below 2^63, 19 digits);
Python refuses to convert more than 4,300 digits at all."""


class _TooDeep(Exception):
    """Raised while composing a YAML document nested beyond MAX_DEPTH, before PyYAML's recursive
    composer hits Python's recursion limit."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested more than MAX_DEPTH levels deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _base60(text: str) -> float:
    """The number PyYAML reads from sexagesimal text such as ``12:30:00`` (45000)."""
    sign = -1.0 if text.startswith("-") else 1.0
    value = 0.0
    for part in text.lstrip("+-").replace("_", "").split(":"):
        value = value * 60 + float(part)
    return sign * value


def _scalar_problem(node: yaml.ScalarNode, path: str) -> str | None:
    """A plain scalar that YAML 1.1 reads as something other than what it looks like."""
    line = node.start_mark.line + 1
    where = path or "(top level)"
    text = node.value
    if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in text:
        number = f"{_base60(text):g}"
        return (
            f"{where}: {text} is read by YAML as the base-60 number {number}; write seconds as a plain "
            f"number (e.g. {number}), or quote it if it is text (line {line})"
        )
    if node.tag == _INT_TAG and _OCTAL.fullmatch(text):
        return (
            f"{where}: {text} is read by YAML as an octal number ({int(text.replace('_', ''), 8)}); "
            f"write it without the leading 0, or quote it if it is text (line {line})"
        )
    if node.tag == _INT_TAG and len(text) > _LONGEST_INT:
        return f"{where}: a number of {len(text)} characters is too long (line {line})"
    if node.tag == _TIMESTAMP_TAG:
        return (
            f"{where}: {text} is read by YAML as a date, which no field takes (quote it if it is text) "
            f"(line {line})"
        )
    return None


def _key_problems(node: yaml.Node, path: str, seen: set[int]) -> Iterator[str]:
    """Duplicate keys, keys that are not plain scalars and scalars that YAML 1.1 misreads
    (:func:`_scalar_problem`), with the field path of each."""
    if id(node) in seen:  # an alias of a node already checked (or a recursive structure)
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        problem = _scalar_problem(node, path)
        if problem is not None:
            yield problem
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _key_problems(item, field_path(path, i), seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                yield from _key_problems(value_node, path, seen)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                what = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                yield f"{path or '(top level)'}: a key must be a plain name, not a {what} (line {line})"
                continue
            here = field_path(path, key_node.value)
            problem = _scalar_problem(key_node, here)
            if problem is not None:
                yield problem
            ident = (key_node.tag, key_node.value)
            if ident in first:
                yield f"{here}: duplicate key (lines {first[ident]} and {line})"
            else:
                first[ident] = line
            yield from _key_problems(value_node, here, seen)


# --- the shape of a document: depth and size with aliases expanded ------------------------------


def _node_children(node: Any) -> list[tuple[Any, Any]]:
    """(label, child) pairs of a YAML node; a mapping's keys count as values of their own
    (label None), a merge key's values keep the mapping's path (label None)."""
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[Any, Any]] = []
        for key, value in node.value:
            label = (
                key.value
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"
                else None
            )
            out += [(None, key), (label, value)]
        return out
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


def _data_children(value: Any) -> list[tuple[Any, Any]]:
    """(label, child) pairs of plain data (mappings, lists and tuples)."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    return []


def _shape_problem(
    root: Any, children: Callable[[Any], list[tuple[Any, Any]]], where: Callable[[Any, str], str]
) -> str | None:
    """Whether a document (YAML nodes or plain data) is too deep, too large once shared parts
    (aliases) are expanded, or contains itself; None if it is fine.

    Iterative, and linear in the number of distinct containers: every shared part is measured
    once (its expanded size and depth memoised), so a kilobyte alias bomb costs a kilobyte of work.
    ``where(node, path)`` says where a node is (its field path, and its line for YAML).
    """
    measured: dict[int, tuple[int, int]] = {}  # id → (values with aliases expanded, depth)
    open_: set[int] = set()  # containers whose parts are being measured: meeting one is a cycle
    stack: list[tuple[Any, str, bool]] = [(root, "", False)]
    while stack:
        node, path, done = stack.pop()
        kids = children(node)
        if not kids and not done:
            if isinstance(node, (yaml.Node, Mapping, list, tuple)):
                measured[id(node)] = (1, 1)
            continue
        key = id(node)
        if done:
            open_.discard(key)
            size = 1 + sum(measured[id(k)][0] if id(k) in measured else 1 for _, k in kids)
            depth = 1 + max(measured[id(k)][1] if id(k) in measured else 1 for _, k in kids)
            if size > MAX_NODES:
                return (
                    f"{where(node, path)}: holds more than {MAX_NODES:,} values once its aliases (*name) "
                    "are expanded; write it out without so many aliases"
                )
            measured[key] = (size, depth)
            continue
        if key in measured:
            continue
        if key in open_:
            return f"{where(node, path)}: contains itself (an alias inside its own anchor)"
        open_.add(key)
        stack.append((node, path, True))
        for label, kid in reversed(kids):  # in document order: a shared part is named where it first is
            stack.append((kid, path if label is None else field_path(path, label), False))
    depth = measured[id(root)][1] if id(root) in measured else 1
    if depth <= MAX_DEPTH:
        return None
    # Follow the deepest branch down to the first level beyond the limit, to say where it is.
    node, path = root, ""
    for _ in range(MAX_DEPTH):
        label, node = max(
            children(node), key=lambda lk: measured[id(lk[1])][1] if id(lk[1]) in measured else 1
        )
        path = path if label is None else field_path(path, label)
    return f"{where(node, path)}: lists and mappings nested more than {MAX_DEPTH} levels deep"


def _shorten(path: str, limit: int = 100) -> str:
    """A field path of at most about ``limit`` characters: its start and its end."""
    if len(path) <= limit:
        return path or "(top level)"
    return f"{path[: limit // 2 - 2]}...{path[-(limit // 2 - 1) :]}"


def _node_where(node: yaml.Node, path: str) -> str:
    return f"{_shorten(path)} (line {node.start_mark.line + 1})"


def _data_where(_value: Any, path: str) -> str:
    return _shorten(path)


def _reader_problem(exc: yaml.reader.ReaderError, text: str) -> str:
    """A character YAML does not allow (a control character), with its line and column."""
    if not isinstance(exc.character, int) or not 0 <= exc.position <= len(text):
        return f"invalid YAML: {exc.reason}"
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    return (
        f"invalid YAML: line {line}, column {column}: the control character #x{exc.character:02x} is "
        'not allowed (write it as an escape in a double-quoted string, e.g. "\\t")'
    )


def _parse_yaml(text: str, source: str) -> Any:
    """One YAML document as plain data (None when empty); raise :class:`ScenarioError` if bad."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks the characters: inside the try
        node = loader.get_single_node()
        if node is None:
            return None
        problem = _shape_problem(node, _node_children, _node_where)
        if problem is not None:
            raise ScenarioError(source, [problem])
        problems = list(_key_problems(node, "", set()))
        if problems:
            raise ScenarioError(source, problems)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise ScenarioError(source, [_reader_problem(exc, text)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    except _TooDeep as exc:
        raise ScenarioError(
            source,
            [f"(top level): lists and mappings nested more than {MAX_DEPTH} levels deep (line {exc.line})"],
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag on a bad value: !!int x
        raise ScenarioError(source, [f"invalid YAML: a value cannot be read ({_short(str(exc))})"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    """``text`` with control characters and line separators escaped (``\\r``, ``\\x1b``): a
    problem quotes names and values from the file, and must stay one line that cannot move the
    cursor or change colours of the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
    )


def _one_line_each(exc: ScenarioError) -> ScenarioError:
    return ScenarioError(exc.source, [_printable(p) for p in exc.problems])


def load_scenario(path: str | Path, *, allow_outside: bool = False) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` on any problem.

    Files that an empirical distribution names must lie in the scenario's folder unless
    ``allow_outside`` (see :class:`~sim.scenario.distributions.Empirical`).
    """
    path = Path(path)
    return scenario_from_dict(
        read_scenario_data(path), source=str(path), base_dir=path.parent, allow_outside=allow_outside
    )


def _read_text(path: Path, source: str) -> str:
    """The text of a regular file of at most MAX_FILE_BYTES. The file is opened without blocking
    and checked before it is read: a FIFO would block the open, ``/dev/zero`` never ends."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ScenarioError(source, ["file not found"]) from None
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError(source, ["is a folder, not a scenario file"])
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(source, ["is not a regular file (a pipe or a device cannot be a scenario)"])
        too_large = f"the file is larger than {MAX_FILE_BYTES // 1_000_000} MB"
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError(source, [too_large])
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError(source, [too_large])
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc}"]) from None
    finally:
        os.close(fd)


def read_scenario_data(path: str | Path) -> dict[str, Any]:
    """A scenario file as plain data, before validation (``name`` defaults to the file's stem)."""
    path = Path(path)
    source = str(path)
    text = _read_text(path, source)
    try:
        data = _parse_yaml(text, source)
    except ScenarioError as exc:
        raise _one_line_each(exc) from None
    if data is None:
        raise ScenarioError(source, ["the file is empty"])
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the top level must be a mapping of fields"])
    data.setdefault("name", path.stem)
    return data


def scenario_from_dict(
    data: Mapping[str, Any],
    source: str = "<scenario>",
    base_dir: str | Path = ".",
    *,
    allow_outside: bool = False,
) -> Scenario:
    """Validate a scenario given as plain data (as parsed from YAML).

    ``base_dir`` is the folder that file references (an empirical distribution's ``file``) are
    relative to; unless ``allow_outside``, they must not lead out of it. Every problem is one
    printable line: control characters in names and values are escaped.
    """
    try:
        return _validate(data, source, base_dir, allow_outside)
    except ScenarioError as exc:
        raise _one_line_each(exc) from None


def _with_prices(
    data: Mapping[str, Any], source: str, base_dir: Path, allow_outside: bool
) -> Mapping[str, Any]:
    """``data`` with every ``costs:`` that includes a prices file resolved into plain prices."""
    out = dict(data)
    if isinstance(out.get("costs"), Mapping):
        out["costs"] = _prices(out["costs"], "costs", source, base_dir, allow_outside)
    topologies = out.get("topologies")
    if isinstance(topologies, Mapping):
        resolved = {}
        for name, topo in topologies.items():
            if isinstance(topo, Mapping) and isinstance(topo.get("costs"), Mapping):
                where = f"topologies.{name}.costs"
                topo = {**topo, "costs": _prices(topo["costs"], where, source, base_dir, allow_outside)}
            resolved[name] = topo
        out["topologies"] = resolved
    return out


def _prices(
    costs: Mapping[str, Any], where: str, source: str, base_dir: Path, allow_outside: bool
) -> dict[str, Any]:
    """A ``costs:`` mapping with its ``include``d price lists (those it ``use``s, else all of
    them) merged under the prices it gives itself. A prices file maps list names to prices;
    two lists used together may not price the same thing."""
    include, use = costs.get("include"), costs.get("use")
    own = {k: v for k, v in costs.items() if k not in ("include", "use")}
    if include is None:
        if use is not None:
            raise ScenarioError(source, [f"{where}.use: names price lists of an include; give include"])
        return own
    if not isinstance(include, str):
        raise ScenarioError(source, [f"{where}.include: must be a file name"])
    try:
        path = _checked_path(base_dir, include, allow_outside)
    except ValueError as exc:
        raise ScenarioError(source, [f"{where}.include: {exc}"]) from None
    try:
        lists = _parse_yaml(_read_text(path, include), include)
    except ScenarioError as exc:  # (the problem is the include's: say where it is named)
        raise ScenarioError(source, [f"{where}.include: {include}: {p}" for p in exc.problems]) from None
    if not isinstance(lists, dict) or not all(isinstance(v, dict) for v in lists.values()):
        raise ScenarioError(include, ["a prices file maps price-list names to mappings of prices"])
    if use is None:
        use = list(lists)
    elif not isinstance(use, list) or not all(isinstance(u, str) for u in use):
        raise ScenarioError(source, [f"{where}.use: must be a list of price-list names"])
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems = []
    for name in use:
        if name not in lists:
            problems.append(f"{where}.use: {include} has no price list {name!r} (lists: {', '.join(lists)})")
            continue
        for key, value in lists[name].items():
            if key not in Costs.model_fields:
                problems.append(
                    f"{include}: {name}.{key}: not a price (prices: {', '.join(Costs.model_fields)})"
                )
            elif key == "services" and isinstance(value, dict):
                merged.setdefault("services", {}).update(value)
            elif key in merged:
                problems.append(f"{where}.use: {origin[key]!r} and {name!r} both give {key}: use one of them")
            else:
                merged[key], origin[key] = value, name
    if problems:
        raise ScenarioError(source, problems)
    if isinstance(own.get("services"), dict) and "services" in merged:
        own["services"] = {**merged["services"], **own["services"]}
    return {**merged, **own}


def _validate(data: Mapping[str, Any], source: str, base_dir: str | Path, allow_outside: bool) -> Scenario:
    problem = _shape_problem(data, _data_children, _data_where)
    if problem is not None:
        raise ScenarioError(source, [problem])
    data = _with_prices(data, source, Path(base_dir), allow_outside)
    problems = list(_value_problems(data, "", set()))
    if problems:
        raise ScenarioError(source, problems)
    try:
        scenario = Scenario.model_validate(
            dict(data), context={"base_dir": str(base_dir), "allow_outside": allow_outside}
        )
    except ValidationError as exc:
        raise ScenarioError(source, _pydantic_problems(exc, data)) from None
    problems = list(_reference_problems(scenario))
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _value_problems(value: Any, path: str, seen: set[int]) -> Iterator[str]:
    """Values no field accepts: infinite or NaN numbers (``.inf``, ``.nan``) and booleans outside
    the few yes/no fields (pydantic would otherwise read them as the numbers 0 and 1)."""
    if isinstance(value, bool):
        if path.rsplit(".", 1)[-1] not in _bool_fields():
            word = "true" if value else "false"
            yield f"{path or '(top level)'}: no field here takes {word} (quote it if it is a name)"
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            yield f"{path or '(top level)'}: must be a finite number, not {value}"
        return
    if not isinstance(value, (Mapping, list, tuple)) or id(value) in seen:
        return
    seen.add(id(value))
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    for key, item in items:
        yield from _value_problems(item, field_path(path, key), seen)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and (mark is None or cmark.line != mark.line):
        problem += f" ({context} at line {cmark.line + 1}, column {cmark.column + 1})"
    return f"invalid YAML: {where}{problem}"


_FAULT_TYPES = {get_args(kind.model_fields["type"].annotation)[0] for kind in get_args(get_args(Fault)[0])}
"""The ``type`` of every kind of fault (each also tags its member of the union)."""
_UNION_TAGS = (
    set(DIST_NAMES) | _FAULT_TYPES | {"step-service", "step-parallel", "branch-service", "branch-sequence"}
)
_MISSING = object()


def _is_tag(part: Any) -> bool:
    """Whether a part of a pydantic error location names a union member, not a field."""
    return part in _UNION_TAGS or str(part).startswith(
        ("function-", "list[", "nullable[", "constrained-", "literal[")
    )


def _child(node: Any, part: Any) -> Any:
    """``node[part]`` if the data has it, else _MISSING."""
    if isinstance(node, Mapping):
        try:
            return node.get(part, _MISSING)
        except TypeError:  # an unhashable part
            return _MISSING
    if isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _MISSING


def _format_path(loc: Iterable[Any], data: Any = _MISSING) -> str:
    """The field path of a pydantic error location. Parts that name union members (``normal``
    in ``latency.normal.sd``) are left out; where the data is known, a part that is a key of it
    is a field or a name even if it looks like a tag (a service called ``normal``)."""
    out = ""
    node = data
    for part in loc:
        child = _child(node, part)
        if child is _MISSING and _is_tag(part):
            continue
        node = child
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_DIST_HINT = "a bare number of seconds or a mapping with a 'dist' (one of: " + ", ".join(DIST_NAMES) + ")"

_MESSAGES = [
    (re.compile(r"^Input should be a valid dictionary or instance of .*$"), "must be a mapping of fields"),
    (
        re.compile(r"^Input should be a valid dictionary or object to extract fields from$"),
        f"must be {_DIST_HINT}",
    ),
    (re.compile(r"^Input should be a valid dictionary$"), "must be a mapping"),
    (re.compile(r"^Input should be a valid integer\b.*$"), "must be a whole number"),
    (re.compile(r"^Unable to parse input string as an integer\b.*$"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number\b.*$"), "must be a number"),
    (re.compile(r"^Input should be a valid (string|list)\b.*$"), r"must be a \1"),
    (re.compile(r"^Input should be (.*)$"), r"must be \1"),
    (re.compile(r"^Value error, (.*)$"), r"\1"),
    (re.compile(r"^Assertion failed, (.*)$"), r"\1"),
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^Extra inputs are not permitted$"), "unknown field"),
    (re.compile(r"^Unable to extract tag using discriminator 'dist'$"), f"must be {_DIST_HINT}"),
    (
        re.compile(r"^Input tag '(.*)' found using 'dist' does not match any of the expected tags.*$"),
        r"unknown dist '\1' (known: " + ", ".join(DIST_NAMES) + ")",
    ),
    (
        re.compile(r"^(List|Dictionary) should have at least 1 item after validation, not 0$"),
        "must not be empty",
    ),
    (re.compile(r"^String should have at least 1 character$"), "must not be empty"),
    (
        re.compile(r"^(List|Dictionary) should have at least (\d+) items after validation.*$"),
        r"must have at least \2 items",
    ),
]

# Errors about the kind of value given; the message then says what was given.
_TYPE_ERRORS = re.compile(r"_type$|_parsing$|^int_from_float$|^literal_error$|^finite_number$")

_LARGE_BOUND = 10_000
"""Upper bounds from this on are limits (sim.scenario.limits), written "at most 1,000,000,000"."""


def _bound_message(err: Any) -> str | None:
    """``must be at most 1,000,000,000, not 1e+308`` for a value above one of the limits."""
    bound = (err.get("ctx") or {}).get("le")
    if err["type"] != "less_than_equal" or not isinstance(bound, (int, float)) or bound < _LARGE_BOUND:
        return None
    shown = f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"
    return f"must be at most {shown}, not {given(err['input'])}"


def _field_names() -> set[str]:
    """Every field name (by alias) of the scenario language, for "did you mean" hints."""
    from pydantic import BaseModel

    from sim.scenario import broker, distributions, engine, models, retry

    names: set[str] = set()
    for module in (models, distributions, engine, broker, retry):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                names.update(f.alias or n for n, f in obj.model_fields.items())
    return names


@functools.cache
def _bool_fields() -> frozenset[str]:
    """Names of the yes/no fields of the scenario language."""
    from pydantic import BaseModel

    from sim.scenario import broker, distributions, engine, models, retry

    names: set[str] = set()
    for module in (models, distributions, engine, broker, retry):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                names.update(
                    f.alias or n
                    for n, f in obj.model_fields.items()
                    if f.annotation is bool
                    or (isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("flag"))
                )
    return frozenset(names)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _suggestion(key: str, required: Iterable[str] = ()) -> str:
    """A hint for an unknown field: a required field missing beside it that looks alike, else
    the closest field name of the language (never the unknown name itself, which may be a field
    of another block)."""
    close = difflib.get_close_matches(key, sorted(required), n=1, cutoff=0.75)
    if not close:
        names = sorted(_field_names() - {key})
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _pydantic_problems(exc: ValidationError, data: Any = _MISSING) -> list[str]:
    problems: list[str] = []
    errors = exc.errors(include_url=False)
    required: dict[tuple[Any, ...], list[str]] = {}
    for err in errors:
        if err["type"] == "missing" and err["loc"]:
            required.setdefault(tuple(err["loc"][:-1]), []).append(str(err["loc"][-1]))
    for err in errors:
        loc = err["loc"]
        msg = err["msg"]
        if loc and loc[-1] == "[key]":  # a mapping key of the wrong type, e.g. ``1:`` for a name
            line = f"{_format_path(loc[:-2], data)}: the name {given(loc[-2])} must be a string (quote it)"
            if line not in problems:
                problems.append(line)
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown field" + _suggestion(str(loc[-1]), required.get(tuple(loc[:-1]), ()))
        if (
            err["type"] == "literal_error"
            and _is_number(err["input"])
            and any(str(part).startswith("literal[") for part in loc)
        ):
            continue  # a number for "a number or 'auto'": the number's own error says what is wrong
        msg = _bound_message(err) or msg
        for pattern, repl in _MESSAGES:
            msg, n = pattern.subn(repl, msg)
            if n:
                break
        if _TYPE_ERRORS.search(err["type"]):
            msg += f", not {given(err['input'])}"
        line = f"{_format_path(loc, data)}: {msg}"
        if line not in problems:
            problems.append(line)
    return problems


def _queue_limit_problems(s: Scenario) -> Iterable[str]:
    """A service's ``queue_limit`` bounds the requests waiting for it: an engine's calls and
    tasks, or its queue in a queue broker. A log keeps every event until its retention, so no
    such limit applies to a service consumed from a log; one that applies in no topology at all
    is an error rather than silently ignored."""
    for name, svc in s.services.items():
        if svc.queue_limit is None:
            continue
        logs, applies = [], False
        for tname, topo in s.topologies.items():
            kind = topo.kind or tname
            consumed = kind == "choreography" or (
                kind == "hybrid"
                and (
                    name in topo.async_services
                    or any(
                        topo.coordination(w) == "choreography"
                        and any(name in stage for stage in _stage_services(wf.steps))
                        for w, wf in s.workflows.items()
                    )
                )
            )
            if consumed and (topo.broker or Broker()).kind == "log":
                logs.append(tname)
            elif kind in TOPOLOGY_KINDS:
                applies = True
        if logs and not applies:
            yield (
                f"services.{name}.queue_limit: {name!r} is only consumed from a log "
                f"({', '.join(logs)}), which keeps every event until its retention: the backlog is "
                "lag, not a full queue; remove the limit (or use a broker of kind queue)"
            )


def _stage_services(steps: list[Any]) -> list[list[str]]:
    """The services of each stage of a workflow."""
    stages = []
    for step in steps:
        if isinstance(step, Parallel):
            stages.append(
                [svc for branch in step.parallel for svc in ([branch] if isinstance(branch, str) else branch)]
            )
        else:
            stages.append([step])
    return stages


def _saga_problems(s: Scenario) -> Iterable[str]:
    """A pivot names one step of the workflows it applies to, and nothing after it may refuse
    for good (it is retried forward until it succeeds)."""
    scenario_pivot = s.saga.pivot
    used_anywhere = False
    for wname, wf in s.workflows.items():
        settings, where = (wf.saga, f"workflows.{wname}.saga.pivot") if wf.saga else (s.saga, "saga.pivot")
        pivot = settings.pivot
        if pivot is None:
            continue
        stages = _stage_services(wf.steps)
        found = [i for i, stage in enumerate(stages) for svc in stage if svc == pivot]
        if not found:
            if wf.saga is not None:
                yield f"{where}: {pivot!r} is not a step of workflow {wname!r}"
            continue
        used_anywhere = True
        if len(found) > 1:
            yield f"{where}: {pivot!r} is called {len(found)} times in {wname!r}; a pivot is one step"
            continue
        for later in stages[found[0] + 1 :]:
            for svc in later:
                if svc in s.services and s.services[svc].business_error_probability > 0:
                    yield (
                        f"{where}: {svc!r} comes after the pivot in workflow {wname!r}, where steps are "
                        "retried forward until they succeed, but it refuses for good "
                        "(business_error_probability)"
                    )
    if (
        scenario_pivot is not None
        and not used_anywhere
        and all(wf.saga is None for wf in s.workflows.values())
    ):
        yield f"saga.pivot: {scenario_pivot!r} is not a step of any workflow"


def _hybrid_problems(s: Scenario, tname: str, kind: str, topo: Topology) -> Iterable[str]:
    """A hybrid's settings name workflows and services of the scenario; its asynchronous
    services are steps of a workflow it orchestrates."""
    where = f"topologies.{tname}." + (
        "hybrid.asynchronous" if topo.hybrid and topo.hybrid.asynchronous else "asynchronous"
    )
    if kind != "hybrid":
        if topo.asynchronous:
            yield f"topologies.{tname}.asynchronous: only a hybrid has asynchronous steps"
        if topo.hybrid is not None:
            yield f"topologies.{tname}.hybrid: only a hybrid (kind: hybrid) has hybrid settings"
        return
    for wname in topo.hybrid.coordination if topo.hybrid else {}:
        if wname not in s.workflows:
            known = ", ".join(sorted(s.workflows))
            yield f"topologies.{tname}.hybrid.coordination.{wname}: no such workflow (workflows: {known})"
    orchestrated = {
        svc
        for wname, wf in s.workflows.items()
        if topo.coordination(wname) == "orchestration"
        for stage in _stage_services(wf.steps)
        for svc in stage
    }
    used = {svc for wf in s.workflows.values() for stage in _stage_services(wf.steps) for svc in stage}
    seen: set[str] = set()
    for i, svc in enumerate(topo.async_services):
        if svc in seen:
            yield f"{where}[{i}]: {svc!r} is listed twice"
        seen.add(svc)
        if svc not in used:
            yield f"{where}[{i}]: {svc!r} is not a step of any workflow"
        elif svc not in orchestrated:
            yield (
                f"{where}[{i}]: {svc!r} is only a step of choreographed workflows, which have no "
                "engine to go on without it"
            )


def _reference_problems(s: Scenario) -> Iterable[str]:
    """Cross-field checks: names that must resolve, windows that must fit."""
    if s.warmup != "auto" and s.warmup >= s.duration:
        yield f"warmup: must be less than duration ({s.duration:g} s)"
    if s.window is not None and s.window > s.duration:
        yield f"window: must not exceed duration ({s.duration:g} s)"
    known = ", ".join(sorted(s.services))
    used: set[str] = set()
    for wname, wf in s.workflows.items():
        for i, step in enumerate(wf.steps):
            if isinstance(step, Parallel):
                for j, branch in enumerate(step.parallel):
                    names = [branch] if isinstance(branch, str) else branch
                    if not names:
                        yield f"workflows.{wname}.steps[{i}].parallel[{j}]: a branch must not be empty"
                    for k, svc in enumerate(names):
                        where = f"workflows.{wname}.steps[{i}].parallel[{j}]"
                        where += "" if isinstance(branch, str) else f"[{k}]"
                        used.add(svc)
                        if svc not in s.services:
                            yield f"{where}: unknown service {svc!r} (known: {known})"
            else:
                used.add(step)
                if step not in s.services:
                    yield f"workflows.{wname}.steps[{i}]: unknown service {step!r} (known: {known})"
        if wname not in s.load:
            yield f"load: no load for workflow {wname!r}"
    for lname in s.load:
        if lname not in s.workflows:
            yield f"load.{lname}: no workflow named {lname!r} (known: {', '.join(sorted(s.workflows))})"
    for oname in s.objectives.workflows or {}:
        if oname not in s.workflows:
            choices = ", ".join(sorted(s.workflows))
            yield f"objectives.workflows.{oname}: no workflow named {oname!r} (known: {choices})"
    components = set(s.services) | {"orchestrator", "orchestrator.store", "broker"}
    engines = [t.orchestrator for t in s.topologies.values() if t.orchestrator is not None]
    most_shards = max((e.shards for e in engines), default=1)
    logs = [t.broker or Broker() for t in s.topologies.values() if (t.kind or "") != "orchestration"]
    logs = [b for b in logs if b.kind == "log"]
    most_partitions = max((b.partitions for b in logs), default=0)
    for i, fault in enumerate(s.faults):
        if fault.type == "outage" and fault.partitions is not None:
            if fault.target != "broker":
                yield f"faults[{i}].partitions: only an outage of the broker names partitions"
            elif not logs:
                yield f"faults[{i}].partitions: no topology has a log broker, whose partitions these would be"
            for j, part in enumerate(fault.partitions):
                if logs and part >= most_partitions:
                    yield (
                        f"faults[{i}].partitions[{j}]: no topology has partition {part} "
                        f"({most_partitions} at most)"
                    )
        if fault.type == "deploy":
            if fault.target not in s.services:
                yield f"faults[{i}].target: a deploy restarts a service, not {fault.target!r}"
            continue
        if fault.type == "outage" and fault.shards is not None:
            if fault.target != "orchestrator":
                yield f"faults[{i}].shards: only an outage of the orchestrator names shards"
            for j, shard in enumerate(fault.shards):
                if shard >= most_shards:
                    yield f"faults[{i}].shards[{j}]: no topology has shard {shard} ({most_shards} at most)"
        names = list(fault.between) if fault.type == "partition" else [fault.target]
        field = "between" if fault.type == "partition" else "target"
        known = ", ".join(sorted(components))
        for name in names:
            if name not in components:
                yield f"faults[{i}].{field}: unknown component {name!r} (known: {known})"
        if fault.type == "error_burst" and fault.target not in s.services:
            yield f"faults[{i}].target: an error burst needs a service, not {fault.target!r}"
        if fault.type == "partition" and "orchestrator.store" in fault.between:
            yield f"faults[{i}].between: the store talks only to its engine; give it an outage instead"
        if fault.type == "partition" and fault.between[0] == fault.between[1]:
            yield f"faults[{i}].between: needs two different components"
        if (
            fault.type == "capacity_loss"
            and fault.target in s.services
            and fault.replicas > s.services[fault.target].most_replicas
        ):
            most = s.services[fault.target].most_replicas
            yield f"faults[{i}].replicas: {fault.target!r} has at most {most}"
    yield from _queue_limit_problems(s)
    yield from _saga_problems(s)
    for tname, topo in s.topologies.items():
        kind = topo.kind or tname
        if kind not in TOPOLOGY_KINDS:
            yield (
                f"topologies.{tname}.kind: is required when the name is not one of "
                f"{', '.join(TOPOLOGY_KINDS)}"
            )
            continue
        if kind == "orchestration" and topo.broker is not None:
            yield f"topologies.{tname}.broker: an orchestration has no broker (use kind: hybrid)"
        if kind == "choreography" and topo.orchestrator is not None:
            yield f"topologies.{tname}.orchestrator: a choreography has no orchestrator"
        yield from _hybrid_problems(s, tname, kind, topo)
