"""Reading workflows from YAML and from mappings, with every problem reported at once.

YAML is read with a safe loader that builds only plain data (so ``!!python/...`` tags
are refused before anything is constructed), rejects duplicate keys, and remembers
the line of every mapping so that problems can point into the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Final

import yaml

from .._exceptions import Problem, WorkflowValidationError
from ._model import KINDS, InputSpec, Step, Workflow, check_structure

__all__ = ("workflow_from_file", "workflow_from_mapping", "workflow_from_yaml")

_WORKFLOW_KEYS: Final = frozenset({"name", "description", "inputs", "steps", "outputs"})
_STEP_KEYS: Final = frozenset(
    {"id", *KINDS, "inputs", "depends_on", "timeout", "retries", "retry_delay", "description"}
)


class _LinedDict(dict[Any, Any]):
    """A mapping read from YAML, with the lines (1-based) where it and its keys start."""

    line: int | None = None
    key_lines: dict[Any, int]


class _LinedList(list[Any]):
    """A sequence read from YAML, with the line (1-based) where each item starts."""

    line: int | None = None
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """Safe loading, plus line numbers and duplicate-key detection."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[_LinedDict]:
    data = _LinedDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str) and key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key]})",
                key_node.start_mark,
            )
        if isinstance(key, str):
            seen[key] = key_node.start_mark.line + 1
    data.key_lines = seen
    data.update(loader.construct_mapping(node))


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Iterator[_LinedList]:
    data = _LinedList()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _kind(value: object) -> str:
    """The kind of a value read from YAML, as a workflow author would name it."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """``value`` without the line bookkeeping of the loader, so steps get plain data."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _line_of(container: object, key: Any, default: int | None) -> int | None:
    """The line of ``container[key]`` in the YAML file, if it came from one."""
    if isinstance(container, _LinedDict):
        return container.key_lines.get(key, default)
    if (
        isinstance(container, _LinedList)
        and isinstance(key, int)
        and key < len(container.item_lines)
    ):
        return container.item_lines[key]
    return default


def workflow_from_file(path: str | os.PathLike[str]) -> Workflow:
    """Read and build the workflow in the YAML file at ``path``."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkflowValidationError(
            [Problem(f"cannot read the workflow file: {reason}")], source=source
        ) from None
    return workflow_from_yaml(text, source=source)


def workflow_from_yaml(text: str, *, source: str) -> Workflow:
    """Parse ``text`` with safe loading and build the workflow it describes."""
    if not isinstance(text, str):
        raise WorkflowValidationError(
            [Problem(f"the YAML text must be a str, got {type(text).__name__}")], source=source
        )
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise WorkflowValidationError([_yaml_problem(exc)], source=source) from None
    return workflow_from_mapping(data, source=source)


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    if "could not determine a constructor for the tag" in problem:
        tag = problem.rsplit(" ", 1)[-1].strip("'")
        problem = (
            f"the YAML tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: "
            f"workflow files hold plain data only (strings, numbers, lists, mappings)"
        )
    elif mark is not None:
        problem = f"invalid YAML: {problem}"
    return Problem(problem, line=line)


def workflow_from_mapping(data: object, *, source: str | None = None) -> Workflow:
    """Build a workflow from ``data``, collecting every problem before raising."""
    if not isinstance(data, Mapping):
        kind = "an empty document" if data is None else _kind(data)
        raise WorkflowValidationError(
            [Problem(f"a workflow must be a mapping with name and steps, got {kind}")],
            source=source,
        )
    problems: list[Problem] = []
    line = getattr(data, "line", None)
    for key in data:
        if key not in _WORKFLOW_KEYS:
            problems.append(
                Problem(
                    f"unknown workflow key {key!r}; the keys are "
                    f"{', '.join(sorted(_WORKFLOW_KEYS))}",
                    line=_line_of(data, key, line),
                )
            )
    name = data.get("name")
    if name is None:
        problems.append(Problem("the workflow needs a name: add `name: ...`", line=line))
        name = "unnamed"
    elif not isinstance(name, str) or not name.strip():
        problems.append(
            Problem(
                f"the workflow's name must be a non-empty string, got {name!r}",
                line=_line_of(data, "name", line),
            )
        )
        name = "unnamed"
    inputs = _inputs(data.get("inputs"), problems, _line_of(data, "inputs", line))
    outputs = data.get("outputs") or {}
    if not isinstance(outputs, Mapping):
        problems.append(
            Problem(
                f"outputs must be a mapping of names to values, got {_kind(outputs)}",
                line=_line_of(data, "outputs", line),
            )
        )
        outputs = {}
    invalid_ids: list[str] = []
    steps = _steps(data.get("steps"), problems, _line_of(data, "steps", line), invalid_ids)
    # How the valid steps fit together is checked even when some are invalid, so that
    # one pass lists everything.
    found = check_structure(
        name,
        steps,
        inputs,
        outputs,
        invalid_ids=invalid_ids,
        output_lines={key: _line_of(outputs, key, None) for key in outputs},
    )
    problems.extend(found.problems)
    if problems:
        raise WorkflowValidationError(problems, source=source)
    return Workflow(name, tuple(steps), inputs, outputs, source)


def _inputs(raw: object, problems: list[Problem], line: int | None) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    if raw is None:
        return specs
    if isinstance(raw, Mapping):
        for name, spec in raw.items():
            if not _input_name_ok(name, problems, _line_of(raw, name, line)):
                continue
            if spec is None or spec == {}:
                specs[name] = InputSpec(name)
            elif isinstance(spec, Mapping) and set(spec) <= {"default", "description"}:
                if "default" in spec:
                    specs[name] = InputSpec(name, required=False, default=_plain(spec["default"]))
                else:
                    specs[name] = InputSpec(name)
            else:
                problems.append(
                    Problem(
                        f"input {name!r} must be null (required) or a mapping such as "
                        f"{{default: 3}}, got {spec!r}",
                        line=_line_of(raw, name, line),
                    )
                )
        return specs
    if isinstance(raw, list):
        for position, name in enumerate(raw):
            item_line = _line_of(raw, position, line)
            if not _input_name_ok(name, problems, item_line):
                continue
            if name in specs:
                problems.append(Problem(f"input {name!r} is declared twice", line=item_line))
            specs[name] = InputSpec(name)
        return specs
    problems.append(
        Problem(
            f"inputs must be a list of names or a mapping of names to {{default: ...}}, "
            f"got {_kind(raw)}",
            line=line,
        )
    )
    return specs


def _input_name_ok(name: object, problems: list[Problem], line: int | None) -> bool:
    if isinstance(name, str) and name.isidentifier():
        return True
    problems.append(Problem(f"input name {name!r} must be an identifier", line=line))
    return False


def _steps(
    raw: object, problems: list[Problem], line: int | None, invalid_ids: list[str]
) -> list[Step]:
    if raw is None:
        problems.append(Problem("the workflow needs steps: add a `steps:` list", line=line))
        return []
    if not isinstance(raw, list):
        problems.append(
            Problem(f"steps must be a list of step mappings, got {_kind(raw)}", line=line)
        )
        return []
    steps = []
    for position, entry in enumerate(raw, start=1):
        step = _step(entry, position, problems, _line_of(raw, position - 1, line))
        if step is not None:
            steps.append(step)
        elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            invalid_ids.append(entry["id"])
    return steps


def _step(entry: object, position: int, problems: list[Problem], line: int | None) -> Step | None:
    if not isinstance(entry, Mapping):
        problems.append(
            Problem(f"step {position} must be a mapping with an id, got {entry!r}", line=line)
        )
        return None
    line = getattr(entry, "line", line)
    step_id = entry.get("id")
    label = step_id if isinstance(step_id, str) else None
    own: list[str] = []
    if step_id is None:
        own.append(f"step {position} needs an id")
        step_id = f"step_{position}"
    for key in entry:
        if key not in _STEP_KEYS:
            own.append(f"unknown step key {key!r}; the keys are {', '.join(sorted(_STEP_KEYS))}")
    kinds = [kind for kind in KINDS if kind in entry]
    if len(kinds) != 1:
        found = "none" if not kinds else ", ".join(kinds)
        own.append(f"a step needs exactly one of agent, function or tool (found {found})")
    problems.extend(Problem(message, label, line) for message in own)
    if own:
        return None
    kind = kinds[0]
    depends_on = entry.get("depends_on", ())
    if isinstance(depends_on, str):
        depends_on = (depends_on,)
    try:
        return Step(
            id=step_id,
            kind=kind,
            target=entry[kind],
            inputs=entry.get("inputs") or {},
            depends_on=depends_on,
            timeout=entry.get("timeout"),
            retries=entry.get("retries", 0),
            retry_delay=entry.get("retry_delay", 0.0),
            line=line,
        )
    except WorkflowValidationError as exc:
        problems.extend(exc.problems)
        return None
