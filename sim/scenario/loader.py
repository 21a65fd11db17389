"""Reading scenario files: YAML in, a validated :class:`Scenario` out, or one clear error.

Every problem is reported as ``file: field.path: what is wrong`` so that a user can find it without
a traceback. PyYAML silently keeps the last of two equal keys; this loader refuses duplicates (and
keys that are lists or mappings), naming the field path, and refuses infinite or NaN numbers.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.scenario.distributions import DIST_NAMES
from sim.scenario.errors import ScenarioError, field_path, given
from sim.scenario.models import TOPOLOGY_KINDS, Parallel, Scenario


def _key_problems(node: yaml.Node, path: str, seen: set[int]) -> Iterator[str]:
    """Duplicate keys and keys that are not plain scalars, with the field path of each."""
    if id(node) in seen:  # an alias of a node already checked (or a recursive structure)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
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
            ident = (key_node.tag, key_node.value)
            if ident in first:
                yield f"{here}: duplicate key (lines {first[ident]} and {line})"
            else:
                first[ident] = line
            yield from _key_problems(value_node, here, seen)


def _parse_yaml(text: str, source: str) -> Any:
    """One YAML document as plain data (None when empty); raise :class:`ScenarioError` if bad."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = list(_key_problems(node, "", set()))
        if problems:
            raise ScenarioError(source, problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    finally:
        loader.dispose()


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` on any problem."""
    path = Path(path)
    return scenario_from_dict(read_scenario_data(path), source=str(path), base_dir=path.parent)


def read_scenario_data(path: str | Path) -> dict[str, Any]:
    """A scenario file as plain data, before validation (``name`` defaults to the file's stem)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc}"]) from None
    data = _parse_yaml(text, source)
    if data is None:
        raise ScenarioError(source, ["the file is empty"])
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the top level must be a mapping of fields"])
    data.setdefault("name", path.stem)
    return data


def scenario_from_dict(
    data: Mapping[str, Any], source: str = "<scenario>", base_dir: str | Path = "."
) -> Scenario:
    """Validate a scenario given as plain data (as parsed from YAML)."""
    problems = list(_value_problems(data, "", set()))
    if problems:
        raise ScenarioError(source, problems)
    try:
        scenario = Scenario.model_validate(dict(data), context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ScenarioError(source, _pydantic_problems(exc)) from None
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


_UNION_TAGS = set(DIST_NAMES) | {"step-service", "step-parallel", "branch-service", "branch-sequence"}


def _format_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or str(part).startswith(("function-", "list[", "nullable[")):
            continue
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
_TYPE_ERRORS = re.compile(r"_type$|_parsing$|^int_from_float$|^literal_error$")


def _field_names() -> set[str]:
    """Every field name (by alias) of the scenario language, for "did you mean" hints."""
    from pydantic import BaseModel

    from sim.scenario import distributions, engine, models

    names: set[str] = set()
    for module in (models, distributions, engine):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                names.update(f.alias or n for n, f in obj.model_fields.items())
    return names


@functools.cache
def _bool_fields() -> frozenset[str]:
    """Names of the yes/no fields of the scenario language."""
    from pydantic import BaseModel

    from sim.scenario import distributions, engine, models

    names: set[str] = set()
    for module in (models, distributions, engine):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                names.update(f.alias or n for n, f in obj.model_fields.items() if f.annotation is bool)
    return frozenset(names)


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(_field_names()), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        msg = err["msg"]
        if loc and loc[-1] == "[key]":  # a mapping key of the wrong type, e.g. ``1:`` for a name
            line = f"{_format_path(loc[:-2])}: the name {given(loc[-2])} must be a string (quote it)"
            if line not in problems:
                problems.append(line)
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown field" + _suggestion(str(loc[-1]))
        for pattern, repl in _MESSAGES:
            msg, n = pattern.subn(repl, msg)
            if n:
                break
        if _TYPE_ERRORS.search(err["type"]):
            msg += f", not {given(err['input'])}"
        line = f"{_format_path(loc)}: {msg}"
        if line not in problems:
            problems.append(line)
    return problems


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
    components = set(s.services) | {"orchestrator", "orchestrator.store", "broker"}
    engines = [t.orchestrator for t in s.topologies.values() if t.orchestrator is not None]
    most_shards = max((e.shards for e in engines), default=1)
    for i, fault in enumerate(s.faults):
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
            and fault.replicas > s.services[fault.target].replicas
        ):
            yield f"faults[{i}].replicas: {fault.target!r} has only {s.services[fault.target].replicas}"
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
        if kind != "hybrid" and topo.asynchronous:
            yield f"topologies.{tname}.asynchronous: only a hybrid has asynchronous steps"
        seen: set[str] = set()
        for i, svc in enumerate(topo.asynchronous):
            if svc in seen:
                yield f"topologies.{tname}.asynchronous[{i}]: {svc!r} is listed twice"
            seen.add(svc)
            if svc not in used:
                yield f"topologies.{tname}.asynchronous[{i}]: {svc!r} is not a step of any workflow"
