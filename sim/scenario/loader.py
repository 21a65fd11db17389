"""Reading scenario files: YAML in, a validated :class:`Scenario` out, or one clear error.

Every problem is reported as ``file: field.path: what is wrong`` so that a user can find it without
a traceback. PyYAML silently keeps the last of two equal keys; this loader refuses duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.scenario.distributions import DIST_NAMES
from sim.scenario.models import TOPOLOGY_KINDS, Parallel, Scenario


class ScenarioError(Exception):
    """A scenario that cannot be used; ``problems`` holds one ``path: message`` line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` on any problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    if data is None:
        raise ScenarioError(source, ["the file is empty"])
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the top level must be a mapping of fields"])
    data.setdefault("name", path.stem)
    return scenario_from_dict(data, source=source, base_dir=path.parent)


def scenario_from_dict(
    data: Mapping[str, Any], source: str = "<scenario>", base_dir: str | Path = "."
) -> Scenario:
    """Validate a scenario given as plain data (as parsed from YAML)."""
    try:
        scenario = Scenario.model_validate(dict(data), context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ScenarioError(source, _pydantic_problems(exc)) from None
    problems = list(_reference_problems(scenario))
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
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


_MESSAGES = [
    (re.compile(r"^Input should be (.*)$"), r"must be \1"),
    (re.compile(r"^Value error, (.*)$"), r"\1"),
    (re.compile(r"^Assertion failed, (.*)$"), r"\1"),
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^Extra inputs are not permitted$"), "unknown field"),
    (
        re.compile(r"^Unable to extract tag using discriminator 'dist'$"),
        "needs a 'dist' (one of: " + ", ".join(DIST_NAMES) + ") or a bare number of seconds",
    ),
    (
        re.compile(r"^Input tag '(.*)' found using 'dist' does not match any of the expected tags.*$"),
        r"unknown dist '\1' (known: " + ", ".join(DIST_NAMES) + ")",
    ),
    (re.compile(r"^List should have at least 1 item after validation, not 0$"), "must not be empty"),
    (re.compile(r"^Dictionary should have at least 1 item after validation, not 0$"), "must not be empty"),
]


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        for pattern, repl in _MESSAGES:
            msg, n = pattern.subn(repl, msg)
            if n:
                break
        line = f"{_format_path(loc)}: {msg}"
        if line not in problems:
            problems.append(line)
    return problems


def _reference_problems(s: Scenario) -> Iterable[str]:
    """Cross-field checks: names that must resolve, windows that must fit."""
    if s.warmup >= s.duration:
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
