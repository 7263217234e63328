"""Reading workflows from YAML and from mappings, with every problem reported at once.

YAML text is read into plain data by :mod:`._yaml` (safe tags only, duplicate keys
refused, the line of every part kept beside the data); a mapping is copied into plain
data by :mod:`._data`. Both count what they read against the same
:class:`~._limits.LoadLimits`, and the same code here then builds the model from that
data, so every loader finds the same problems.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from .._exceptions import Problem, WorkflowValidationError
from ._data import DataRefused, copy_data
from ._limits import Budget, LimitExceeded, LoadLimits, quote
from ._model import KINDS, InputSpec, Step, Workflow, check_structure, checked_workflow
from ._names import is_name
from ._yaml import Lines, YamlRefused, read_yaml

__all__ = ("read_file", "workflow_from_file", "workflow_from_mapping", "workflow_from_yaml")

_WORKFLOW_KEYS: Final = frozenset({"name", "description", "inputs", "steps", "outputs"})
_STEP_KEYS: Final = frozenset(
    {
        "id",
        *KINDS,
        "inputs",
        "depends_on",
        "timeout",
        "retries",
        "retry_delay",
        "runner",
        "version",
        "persist",
        "retry_on",
        "for_each",
        "max_concurrency",
        "when",
        "description",
    }
)


def _kind(value: object) -> str:
    """The kind of a value read from YAML, as a workflow author would name it."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def workflow_from_file(
    path: str | os.PathLike[str], *, limits: LoadLimits | None = None
) -> Workflow:
    """Read and build the workflow in the YAML file at ``path``."""
    source = os.fspath(path)
    if "\n" in source and not os.path.exists(source):
        raise WorkflowValidationError(
            [
                Problem(
                    "from_yaml takes the path of a file, and this looks like YAML text; "
                    "read text with agentbridge.Workflow.from_yaml_string(text)"
                )
            ],
            source="<string>",
        )
    budget = Budget(limits)
    return _from_text(read_file(source, budget, "the workflow file"), source, budget)


def read_file(source: str, budget: Budget, what: str) -> str:
    """The UTF-8 text of the file at ``source``, within ``budget``'s size.

    :raises WorkflowValidationError: if it cannot be read, is too large or not UTF-8
    """
    try:
        with open(source, "rb") as file:
            # The size is checked before reading, and what is read bounded again, for a
            # file that grows or reports no size (a pipe).
            _check_size(budget, os.fstat(file.fileno()).st_size, source)
            raw = file.read(budget.limits.max_bytes + 1)
    except OSError as exc:
        raise WorkflowValidationError(
            [Problem(f"cannot read {what}: {exc.strerror or exc}")], source=source
        ) from None
    _check_size(budget, len(raw), source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowValidationError(
            [
                Problem(
                    f"cannot read {what}: it is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    line=raw.count(b"\n", 0, exc.start) + 1,
                )
            ],
            source=source,
        ) from None


def workflow_from_yaml(text: str, *, source: str, limits: LoadLimits | None = None) -> Workflow:
    """Parse ``text`` with safe loading and build the workflow it describes."""
    if not isinstance(text, str):
        raise WorkflowValidationError(
            [Problem(f"the YAML text must be a str, got {type(text).__name__}")], source=source
        )
    return _from_text(text, source, Budget(limits))


def _from_text(text: str, source: str, budget: Budget) -> Workflow:
    if text.isascii():  # O(1): most workflow files
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise WorkflowValidationError(
                [
                    Problem(
                        f"the text is not valid Unicode: {exc.reason}",
                        line=text.count("\n", 0, exc.start) + 1,
                    )
                ],
                source=source,
            ) from None
    _check_size(budget, size, source)
    try:
        data, lines = read_yaml(text, budget)
    except YamlRefused as exc:
        raise WorkflowValidationError([exc.problem], source=source) from None
    return _build(data, lines, budget, source)


def _check_size(budget: Budget, size: int, source: str) -> None:
    try:
        budget.size(size)
    except LimitExceeded as exc:
        raise WorkflowValidationError([Problem(str(exc))], source=source) from None


def workflow_from_mapping(
    data: object, *, source: str | None = None, limits: LoadLimits | None = None
) -> Workflow:
    """Build a workflow from ``data``, collecting every problem before raising."""
    budget = Budget(limits)
    try:
        copied = copy_data(data, budget)
    except DataRefused as exc:
        raise WorkflowValidationError([Problem(str(exc))], source=source) from None
    return _build(copied, Lines(), budget, source)


def _build(data: object, lines: Lines, budget: Budget, source: str | None) -> Workflow:
    if not isinstance(data, Mapping):
        kind = "an empty document" if data is None else _kind(data)
        raise WorkflowValidationError(
            [Problem(f"a workflow must be a mapping with name and steps, got {kind}")],
            source=source,
        )
    problems: list[Problem] = []
    line = lines.line(data)
    for key in data:
        if key not in _WORKFLOW_KEYS:
            problems.append(
                Problem(
                    f"unknown workflow key {quote(key)}; the keys are "
                    f"{', '.join(sorted(_WORKFLOW_KEYS))}",
                    line=lines.of(data, key, line),
                )
            )
    name = data.get("name")
    if name is None:
        problems.append(Problem("the workflow needs a name: add `name: ...`", line=line))
        name = "unnamed"
    elif not isinstance(name, str) or not name.strip():
        problems.append(
            Problem(
                f"the workflow's name must be a non-empty string, got {quote(name)}",
                line=lines.of(data, "name", line),
            )
        )
        name = "unnamed"
    inputs = _inputs(data.get("inputs"), problems, lines.of(data, "inputs", line), lines)
    outputs = data.get("outputs")
    if outputs is None:
        outputs = {}
    elif not isinstance(outputs, Mapping):
        problems.append(
            Problem(
                f"outputs must be a mapping of names to values, got {_kind(outputs)}",
                line=lines.of(data, "outputs", line),
            )
        )
        outputs = {}
    invalid_ids: list[str] = []
    raw_steps = data.get("steps")
    if isinstance(raw_steps, list):
        try:
            budget.steps(len(raw_steps))
        except LimitExceeded as exc:
            # Refused before building any step: the time a load takes stays bounded.
            raise WorkflowValidationError(
                [Problem(str(exc), line=lines.of(data, "steps", line))], source=source
            ) from None
    steps = _steps(raw_steps, problems, lines.of(data, "steps", line), invalid_ids, lines)
    # How the valid steps fit together is checked even when some are invalid, so that
    # one pass lists everything.
    found = check_structure(
        name,
        steps,
        inputs,
        outputs,
        invalid_ids=invalid_ids,
        output_lines={key: lines.of(outputs, key, None) for key in outputs},
    )
    problems.extend(found.problems)
    if problems:
        raise WorkflowValidationError(problems, source=source)
    return checked_workflow(name, steps, inputs, outputs, source, found)


def _inputs(
    raw: object, problems: list[Problem], line: int | None, lines: Lines
) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    if raw is None:
        return specs
    if isinstance(raw, Mapping):
        for name, spec in raw.items():
            if not _input_name_ok(name, problems, lines.of(raw, name, line)):
                continue
            if spec is None or spec == {}:
                specs[name] = InputSpec(name)
            elif isinstance(spec, Mapping) and set(spec) <= {"default", "description"}:
                if "default" in spec:
                    specs[name] = InputSpec(name, required=False, default=spec["default"])
                else:
                    specs[name] = InputSpec(name)
            else:
                problems.append(
                    Problem(
                        f"input {quote(name)} must be null (required) or a mapping such as "
                        f"{{default: 3}}, got {quote(spec)}",
                        line=lines.of(raw, name, line),
                    )
                )
        return specs
    if isinstance(raw, list):
        for position, name in enumerate(raw):
            item_line = lines.of(raw, position, line)
            if not _input_name_ok(name, problems, item_line):
                continue
            if name in specs:
                problems.append(Problem(f"input {quote(name)} is declared twice", line=item_line))
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
    if is_name(name):
        return True
    problems.append(Problem(f"input name {quote(name)} must be an identifier", line=line))
    return False


def _steps(
    raw: object, problems: list[Problem], line: int | None, invalid_ids: list[str], lines: Lines
) -> list[Step]:
    if raw is None:
        problems.append(Problem("the workflow needs steps: add a `steps:` list", line=line))
        return []
    if not isinstance(raw, list):
        problems.append(
            Problem(f"steps must be a list of step mappings, got {_kind(raw)}", line=line)
        )
        return []
    if not raw:
        problems.append(
            Problem(
                "the workflow has no steps: add at least one under steps:, such as "
                "`- {id: fetch, tool: fetch_ticket}`",
                line=line,
            )
        )
    steps = []
    for position, entry in enumerate(raw, start=1):
        step = _step(entry, position, problems, lines.of(raw, position - 1, line), lines)
        if step is not None:
            steps.append(step)
        elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            invalid_ids.append(entry["id"])
    return steps


def _step(
    entry: object, position: int, problems: list[Problem], line: int | None, lines: Lines
) -> Step | None:
    if not isinstance(entry, Mapping):
        problems.append(
            Problem(f"step {position} must be a mapping with an id, got {quote(entry)}", line=line)
        )
        return None
    line = lines.line(entry, line)
    step_id = entry.get("id")
    label = step_id if isinstance(step_id, str) else None
    own: list[str] = []
    if step_id is None:
        own.append(f"step {position} needs an id")
        step_id = f"step_{position}"
    for key in entry:
        if key not in _STEP_KEYS:
            own.append(
                f"unknown step key {quote(key)}; the keys are {', '.join(sorted(_STEP_KEYS))}"
            )
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
            inputs={} if entry.get("inputs") is None else entry["inputs"],
            depends_on=depends_on,
            timeout=entry.get("timeout"),
            retries=entry.get("retries", 0),
            retry_delay=entry.get("retry_delay", 0.0),
            line=line,
            runner=entry.get("runner"),
            version=entry.get("version"),
            persist=entry.get("persist", True),
            retry_on=entry.get("retry_on"),
            for_each=entry.get("for_each"),
            max_concurrency=entry.get("max_concurrency"),
            when=entry.get("when"),
        )
    except WorkflowValidationError as exc:
        problems.extend(exc.problems)
        return None
