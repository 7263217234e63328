"""The immutable workflow model: :class:`Workflow`, :class:`Step` and :class:`InputSpec`.

Building a model validates it: a :class:`Step` checks its own fields, a
:class:`Workflow` checks how its steps fit together (unique ids, known references,
no cycles). Both raise :class:`~agentbridge.WorkflowValidationError` listing every
problem. Nothing here imports or runs anything a workflow names.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from .._exceptions import ExpressionError, Problem, WorkflowValidationError
from ..integrations import framework_of
from ._conditions import Condition, parse_condition
from ._data import tree_problem
from ._expressions import Binding, Each, Reference, compile_value, evaluate, references, walk
from ._limits import LoadLimits, quote
from ._names import is_name, is_step_id, step_id_problem

__all__ = (
    "KINDS",
    "InputSpec",
    "Step",
    "StepKind",
    "Workflow",
    "check_structure",
    "checked_workflow",
)

#: What a step calls: an agent, a plain function or a tool.
StepKind = Literal["agent", "function", "tool"]
KINDS: Final[tuple[StepKind, ...]] = get_args(StepKind)


@dataclass(frozen=True)
class InputSpec:
    """A declared input of a workflow.

    .. versionadded:: 0.1
    """

    #: The input's name, as used in ``${inputs.NAME}``.
    name: str
    #: Whether a run must give a value (true when no default was declared).
    required: bool = True
    #: The value used when a run gives none (``None`` for a required input).
    default: Any = None


@dataclass(frozen=True)
class Step:
    """One step of a workflow: what it calls, with which inputs, after which steps.

    ``depends_on`` holds the explicit dependencies and those implied by
    ``${steps.ID.output}`` references in ``inputs``, sorted.

    :raises WorkflowValidationError: if a field is invalid

    .. versionadded:: 0.1
    """

    #: A unique identifier within the workflow.
    id: str
    #: ``"agent"``, ``"function"`` or ``"tool"``.
    kind: StepKind
    #: A registry name, an import path (only with ``allow_imports``), or the callable.
    target: str | Callable[..., Any]
    #: Keyword arguments for the callable: literals or ``${...}`` expressions.
    inputs: Mapping[str, Any] = field(default_factory=dict)
    #: Ids of the steps that must finish before this one starts.
    depends_on: tuple[str, ...] = ()
    #: Seconds each attempt may take, or ``None`` for no limit.
    timeout: float | None = None
    #: How many times a failed or timed-out attempt is tried again.
    retries: int = 0
    #: Seconds before the first retry; each later retry waits twice as long.
    retry_delay: float = 0.0
    #: The line of the workflow file where the step is defined.
    line: int | None = field(default=None, compare=False)
    #: The name of the runner that executes the step (``"thread"``, ``"process"`` or
    #: one given to the runtime), or ``None`` for the default: async steps on the
    #: run's loop, sync steps in worker threads.
    runner: str | None = field(default=None, kw_only=True)
    #: The step's version, part of its input key in a durable run: change it when the
    #: step's code changes, so a resume runs it again. An int is kept as its text.
    version: str | None = field(default=None, kw_only=True)
    #: Whether a durable run stores the step's output (false for secrets or huge
    #: outputs: the step then runs again on every resume).
    persist: bool = field(default=True, kw_only=True)
    # --- the workflow language: what to retry, fan-out, conditions ---------------------
    #: The exception types (names, resolved when the workflow is validated) whose
    #: failures are retried, or ``None`` for the default: every exception but
    #: ``TypeError``, ``ValueError``, ``LookupError``, ``AttributeError``, ``NameError``
    #: and ``NotImplementedError``, which another attempt would only repeat.
    retry_on: tuple[str, ...] | None = field(default=None, kw_only=True)
    #: A ``${...}`` expression giving a list: the step then runs once per item, with
    #: ``${item}`` and ``${index}`` in its inputs, and its output is the list of the
    #: items' outputs, in order.
    for_each: str | None = field(default=None, kw_only=True)
    #: With ``for_each``: how many items may run at once (``None``: no limit but the
    #: run's).
    max_concurrency: int | None = field(default=None, kw_only=True)
    #: A condition on inputs and earlier outputs (see :mod:`._conditions`); when it is
    #: false the step is skipped, and so are its dependents.
    when: str | None = field(default=None, kw_only=True)
    _bindings: dict[str, Binding] = field(init=False, repr=False, compare=False)
    _items: Reference | None = field(init=False, repr=False, compare=False)
    _condition: Condition | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not is_step_id(self.id):
            problems.append(
                step_id_problem(self.id)
                if isinstance(self.id, str)
                else f"step id {quote(self.id)} must be a string, such as fetch_ticket"
            )
        if self.kind not in KINDS:
            problems.append(f"kind {quote(self.kind)} is not one of {', '.join(KINDS)}")
        if not (isinstance(self.target, str) and self.target) and not is_callable_target(
            self.kind, self.target
        ):
            problems.append(
                f"the {self.kind} must be a registry name or {callable_kind(self.kind)}, "
                f"got {quote(self.target)}"
            )
        if self.timeout is not None and not _positive_number(self.timeout):
            problems.append(
                f"timeout must be a positive number of seconds, got {quote(self.timeout)}"
            )
        if self.runner is not None and not _runner_name(self.runner):
            problems.append(
                f"runner must be the name of a runner (an identifier such as process), "
                f"got {quote(self.runner)}; addresses and import paths belong in the "
                f"runner object given to the runtime, not in the workflow"
            )
        version: object = self.version
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, str | int)
        ):
            problems.append(f"version must be a string or a whole number, got {quote(version)}")
        persist: object = self.persist
        if not isinstance(persist, bool):
            problems.append(f"persist must be true or false, got {quote(persist)}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            problems.append(f"retries must be a whole number, 0 or more, got {quote(self.retries)}")
        if not _positive_number(self.retry_delay, zero=True):
            problems.append(
                f"retry_delay must be a number of seconds, 0 or more, got {quote(self.retry_delay)}"
            )
        bindings: dict[str, Binding] = {}
        inputs: object = self.inputs  # checked although typed: not every caller type-checks
        if not isinstance(inputs, Mapping):
            problems.append(_inputs_problem(inputs))
        else:
            for name, value in inputs.items():
                if not is_name(name):
                    problems.append(f"input name {quote(name)} must be an identifier")
                    continue
                shape = tree_problem(value)
                if shape is not None:
                    problems.append(f"input {quote(name)} {shape}")
                    continue
                try:
                    bindings[name] = compile_value(value)
                except ExpressionError as exc:
                    problems.append(f"input {quote(name)}: {exc}")
        explicit = _string_tuple(self.depends_on, "depends_on", problems)
        retry_on = self._retry_on(problems)
        items = self._compile_for_each(problems)
        condition = self._compile_when(problems)
        if items is None:
            if any(ref.root in ("item", "index") for ref in references(bindings)):
                problems.append(
                    "${item} and ${index} are defined only in a step with for_each; add "
                    'for_each: "${...}" giving the list to run the step over'
                )
            if self.max_concurrency is not None:
                problems.append(
                    "max_concurrency limits the items of for_each, and this step has no "
                    "for_each; remove it, or use Runtime(max_concurrency=...) for the run"
                )
        if problems:
            raise WorkflowValidationError(
                Problem(message, self._problem_id(), self.line) for message in problems
            )
        object.__setattr__(self, "_bindings", bindings)
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_condition", condition)
        implied = {ref.name for ref in self.references() if ref.root == "steps"}
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))
        object.__setattr__(self, "depends_on", tuple(sorted({*explicit, *implied})))
        if self.timeout is not None:
            object.__setattr__(self, "timeout", float(self.timeout))
        object.__setattr__(self, "retry_delay", float(self.retry_delay))
        if isinstance(version, int):
            object.__setattr__(self, "version", str(version))
        object.__setattr__(self, "retry_on", retry_on)

    def _compile_for_each(self, problems: list[str]) -> Reference | None:
        value: object = self.for_each
        if value is None:
            return None
        if self.max_concurrency is not None and (
            isinstance(self.max_concurrency, bool)
            or not isinstance(self.max_concurrency, int)
            or self.max_concurrency < 1
        ):
            problems.append(
                f"max_concurrency must be a whole number, 1 or more, got "
                f"{quote(self.max_concurrency)}"
            )
        try:
            binding = compile_value(value) if isinstance(value, str) else None
        except ExpressionError as exc:
            problems.append(f"for_each: {exc}")
            return None
        if not isinstance(binding, Reference):
            problems.append(
                f"for_each must be one ${{...}} expression giving a list, such as "
                f'"${{steps.fetch.output.tickets}}", got {quote(value)}'
            )
            return None
        if binding.root in ("item", "index"):
            problems.append(f"for_each: {binding.text} names the items for_each gives")
            return None
        return binding

    def _compile_when(self, problems: list[str]) -> Condition | None:
        value: object = self.when
        if value is None:
            return None
        if not isinstance(value, str):
            problems.append(
                f'when must be a condition such as "${{inputs.notify}}" or '
                f"\"${{steps.classify.output}} == 'bug'\", got {quote(value)}"
            )
            return None
        try:
            return parse_condition(value)
        except ExpressionError as exc:
            problems.append(f"when: {exc}")
            return None

    def _retry_on(self, problems: list[str]) -> tuple[str, ...] | None:
        value: object = self.retry_on
        if value is None:
            return None
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, Mapping) or not isinstance(value, Iterable):
            problems.append(
                f"retry_on must be an exception type name or a list of them, such as "
                f"[TimeoutError, ConnectionError], got {quote(value)}"
            )
            return None
        names = tuple(value)
        for name in names:
            if not (isinstance(name, str) and _dotted_name(name)):
                problems.append(
                    f"retry_on entry {quote(name)} is not an exception type name; write a "
                    f"name such as TimeoutError, or an import path such as httpx:HTTPError"
                )
        return names

    def _problem_id(self) -> str | None:
        return self.id if isinstance(self.id, str) else None

    @property
    def target_name(self) -> str:
        """The registry name or import path, or the callable's qualified name."""
        if isinstance(self.target, str):
            return self.target
        return getattr(self.target, "__qualname__", None) or type(self.target).__qualname__

    def references(self) -> Iterator[Reference]:
        """Every ``${...}`` expression of the step: in its inputs, ``for_each`` and
        ``when``."""
        yield from references(self._bindings)
        if self._items is not None:
            yield self._items
        if self._condition is not None:
            yield self._condition.reference

    # --- read by the runtime: evaluating what the model compiled -----------------------

    def evaluate_inputs(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        each: Each | None = None,
        *,
        leave_out: Collection[str] = (),
    ) -> dict[str, Any]:
        """The keyword arguments of this step's callable, its ``${...}`` expressions
        evaluated against the run's ``inputs`` and the ``outputs`` of finished steps
        (and, for a ``for_each`` step, ``each``: the item and its index); without the
        inputs named in ``leave_out``.

        :raises ExpressionError: if an expression refers to something missing
        """
        # evaluate() of the bindings' dict, one call fewer for each input that is one
        # expression (most are): a resume evaluates every reused step's inputs.
        return {
            name: binding.resolve(inputs, outputs, each)
            if type(binding) is Reference
            else evaluate(binding, inputs, outputs, each)
            for name, binding in self._bindings.items()
            if name not in leave_out
        }

    def passed_outputs(self) -> dict[str, tuple[str, Callable[[Any], Any] | None]] | None:
        """The inputs whose value is exactly one ``${steps.ID.output...}`` expression:
        for each, the step it reads and a picklable function of that step's output
        giving the input's value (the same path walk as :meth:`evaluate_inputs`), or
        ``None`` for the whole output. A runtime may then hand such an input to a
        worker before the output exists.
        ``None`` if the step reads a step's output any other way (inside a string, a
        list or a mapping, or in ``for_each`` or ``when``)."""
        passed: dict[str, tuple[str, Callable[[Any], Any] | None]] = {}
        for name, binding in self._bindings.items():
            if isinstance(binding, Reference) and binding.root == "steps":
                path = functools.partial(walk, binding) if binding.path else None
                passed[name] = (binding.name, path)
            elif any(ref.root == "steps" for ref in references(binding)):
                return None
        if self._items is not None or self._condition is not None:
            return None
        return passed

    def evaluate_condition(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> bool:
        """Whether the step runs: its ``when`` condition (true without one).

        :raises ExpressionError: if the condition refers to something missing
        """
        if self._condition is None:
            return True
        try:
            return self._condition.holds(inputs, outputs)
        except ExpressionError as exc:
            raise ExpressionError(f"step {self.id!r}, when: {exc}") from None

    def evaluate_items(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[Any]:
        """The items a ``for_each`` step runs over (``[]`` for a step without one).

        :raises ExpressionError: if the expression misses, or gives something that is
            not a list (or tuple), naming the step
        """
        if self._items is None:
            return []
        try:
            items = self._items.resolve(inputs, outputs)
        except ExpressionError as exc:
            raise ExpressionError(f"step {self.id!r}, for_each: {exc}") from None
        if not isinstance(items, list | tuple):
            raise ExpressionError(
                f"step {self.id!r}: for_each {self._items.text} gave "
                f"{type(items).__name__} {_short(items)}, not a list; it must give the list of "
                f"items to run the step over"
            )
        return list(items)


@dataclass(frozen=True)
class Workflow:
    """A validated, immutable workflow: declared inputs, steps and outputs.

    Build one with :meth:`from_yaml`, :meth:`from_yaml_string`, :meth:`from_dict`, or
    directly from :class:`Step` objects. ``inputs`` may be given as a list of names
    (all required) or a mapping of names to :class:`InputSpec`.

    :raises WorkflowValidationError: listing every structural problem: duplicate ids,
        references to unknown steps or inputs, dependency cycles

    .. versionadded:: 0.1
    """

    #: The workflow's name.
    name: str
    #: The steps, in the order they were written.
    steps: tuple[Step, ...]
    #: The declared inputs, by name.
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    #: The declared outputs: names to literals or ``${...}`` expressions.
    outputs: Mapping[str, Any] = field(default_factory=dict)
    #: Where the workflow was read from: a file path, ``"<string>"`` or ``None``.
    source: str | None = field(default=None, compare=False)
    _output_bindings: Mapping[str, Binding] = field(init=False, repr=False, compare=False)
    _steps_by_id: Mapping[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "inputs", MappingProxyType(_input_specs(self.inputs)))
        object.__setattr__(self, "outputs", MappingProxyType(dict(self.outputs)))
        found = check_structure(self.name, self.steps, self.inputs, self.outputs)
        if found.problems:
            raise WorkflowValidationError(found.problems, source=self.source)
        self._index(found)

    def _index(self, found: Structure) -> None:
        object.__setattr__(self, "_steps_by_id", MappingProxyType(found.steps_by_id))
        object.__setattr__(self, "_output_bindings", MappingProxyType(found.output_bindings))

    @property
    def steps_by_id(self) -> Mapping[str, Step]:
        """The steps, by id."""
        return self._steps_by_id

    @classmethod
    def from_dict(
        cls,
        mapping: Mapping[str, Any],
        *,
        source: str | None = None,
        limits: LoadLimits | None = None,
    ) -> Workflow:
        """Build a workflow from a mapping shaped like a workflow file.

        In Python, a step's ``agent``, ``function`` or ``tool`` may be the callable
        itself instead of a registry name. The mapping is copied: later changes to it
        do not reach the workflow.

        :param limits: the most the mapping may hold (default: :class:`LoadLimits` ())
        :raises WorkflowValidationError: listing every problem found, including a
            mapping or list that contains itself, and a limit passed
        """
        from ._loading import workflow_from_mapping

        return workflow_from_mapping(mapping, source=source, limits=limits)

    @classmethod
    def from_yaml_string(
        cls, text: str, *, source: str | None = None, limits: LoadLimits | None = None
    ) -> Workflow:
        """Build a workflow from YAML text, read with safe loading only.

        :param limits: the most the text may hold (default: :class:`LoadLimits` ())
        :raises WorkflowValidationError: for malformed YAML, any tag that would build a
            Python object, a limit passed, and every problem :meth:`from_dict` finds,
            with file lines
        """
        from ._loading import workflow_from_yaml

        return workflow_from_yaml(text, source=source or "<string>", limits=limits)

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], *, limits: LoadLimits | None = None
    ) -> Workflow:
        """Read a workflow file (UTF-8 YAML, safe loading only).

        :param limits: the most the file may hold (default: :class:`LoadLimits` ())
        :raises WorkflowValidationError: if the file cannot be read or is invalid
        """
        from ._loading import workflow_from_file

        return workflow_from_file(path, limits=limits)

    def validate(self, registry: Any = None, *, allow_imports: Iterable[str] = ()) -> None:
        """Check that every step names something ``registry`` can resolve, and that its
        inputs fit the signature of what it resolves to (an unknown keyword, a missing
        required argument, a positional-only parameter).

        Nothing is imported unless ``allow_imports`` lists its module prefix.

        :param registry: an :class:`~agentbridge.Registry` (default: the default one)
        :param allow_imports: module prefixes that import paths may name
        :raises WorkflowValidationError: listing every name that does not resolve and
            every input that does not fit
        """
        from ._registry import resolve_targets

        resolve_targets(self, registry, allow_imports)

    # --- read by the runtime: evaluating what the model compiled -----------------------

    def evaluate_outputs(
        self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The declared outputs that can be evaluated from the run's ``inputs`` and the
        ``outputs`` of the steps that finished; an output referring to a step that did
        not finish is left out, so a partial run gives partial outputs.

        :raises ExpressionError: naming the output whose expression failed
        """
        values: dict[str, Any] = {}
        for name, binding in self._output_bindings.items():
            if all(ref.root == "inputs" or ref.name in outputs for ref in references(binding)):
                try:
                    values[name] = evaluate(binding, inputs, outputs)
                except ExpressionError as exc:
                    raise ExpressionError(f"output {name!r}: {exc}") from None
        return values


def checked_workflow(
    name: str,
    steps: Iterable[Step],
    inputs: Mapping[str, InputSpec],
    outputs: Mapping[str, Any],
    source: str | None,
    found: Structure,
) -> Workflow:
    """The workflow whose structure ``found`` holds, without checking it again.

    The loaders check the structure themselves, with what only they know (file lines,
    the steps left out for problems of their own), so building the model must not
    repeat the check: it is the largest part of validating a long workflow.
    """
    workflow = object.__new__(Workflow)
    values = {
        "name": name,
        "steps": tuple(steps),
        "inputs": MappingProxyType(dict(inputs)),
        "outputs": MappingProxyType(dict(outputs)),
        "source": source,
    }
    for key, value in values.items():
        object.__setattr__(workflow, key, value)
    workflow._index(found)
    return workflow


@dataclass
class Structure:
    """What :func:`check_structure` found: the problems, and the indexes it built."""

    problems: list[Problem]
    steps_by_id: dict[str, Step]
    output_bindings: dict[str, Binding]


def check_structure(
    name: object,
    steps: Iterable[object],
    inputs: Mapping[str, InputSpec],
    outputs: Mapping[str, Any],
    *,
    invalid_ids: Iterable[str] = (),
    output_lines: Mapping[str, int | None] | None = None,
) -> Structure:
    """Check how a workflow's steps, inputs and outputs fit together.

    ``invalid_ids`` names steps that exist but were left out for problems of their
    own, so that references to them are not reported as unknown as well;
    ``output_lines`` gives the file line of each output, where known.
    """
    found = Structure([], {}, {})
    problems, by_id = found.problems, found.steps_by_id
    if not isinstance(name, str) or not name.strip():
        problems.append(
            Problem(f"the workflow needs a name (a non-empty string), got {quote(name)}")
        )
    for step in steps:
        if not isinstance(step, Step):
            problems.append(Problem(f"steps must be Step objects, got {type(step).__name__}"))
        elif step.id in by_id:
            problems.append(
                Problem(
                    f"duplicate step id (first defined{_at(by_id[step.id].line)}); "
                    f"give every step a unique id",
                    step.id,
                    step.line,
                )
            )
        else:
            by_id[step.id] = step
    existing = {*by_id, *invalid_ids}
    known = _some(sorted(existing))
    for step in by_id.values():
        referenced = set()
        for ref in step.references():
            referenced.add(ref.name)
            problems.extend(_reference_problems(ref, inputs, existing, known, step))
        for dependency in step.depends_on:
            if dependency not in existing and dependency not in referenced:
                problems.append(
                    Problem(
                        f"depends_on names unknown step {quote(dependency)} (steps: {known})",
                        step.id,
                        step.line,
                    )
                )
    for output, value in outputs.items():
        line = (output_lines or {}).get(output)
        shape = tree_problem(value)
        if shape is not None:
            problems.append(Problem(f"output {quote(output)} {shape}", line=line))
            continue
        try:
            binding = found.output_bindings[output] = compile_value(value)
        except ExpressionError as exc:
            problems.append(Problem(f"output {quote(output)}: {exc}", line=line))
            continue
        for ref in references(binding):
            if ref.root in ("item", "index"):
                problems.append(
                    Problem(
                        f"output {quote(output)}: {ref.text} is defined only in the inputs "
                        f"of a step with for_each; name the step's output, the list",
                        line=line,
                    )
                )
            for problem in _reference_problems(ref, inputs, existing, known, None):
                problems.append(Problem(f"output {quote(output)}: {problem.message}", line=line))
    cycle = find_cycle(by_id)
    if cycle:
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(
            Problem(
                f"dependency cycle: {path}; remove one of these dependencies",
                cycle[0],
                by_id[cycle[0]].line,
            )
        )
    return found


def _reference_problems(
    ref: Reference,
    inputs: Mapping[str, InputSpec],
    existing: Collection[str],
    known: str,
    step: Step | None,
) -> Iterable[Problem]:
    step_id, line = (step.id, step.line) if step else (None, None)
    if ref.root == "inputs" and ref.name not in inputs:
        declared = _some(list(inputs))
        yield Problem(
            f"{ref.text} names undeclared input {quote(ref.name)} (declared inputs: {declared}); "
            f"add it to the workflow's inputs",
            step_id,
            line,
        )
    elif ref.root == "steps" and ref.name not in existing:
        yield Problem(
            f"{ref.text} names unknown step {quote(ref.name)} (steps: {known})", step_id, line
        )


def find_cycle(steps: Mapping[str, Step]) -> list[str]:
    """The step ids of one dependency cycle, in order, or ``[]`` if there is none."""
    visiting: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in steps:
        if state.get(start):
            continue
        stack = [(start, iter(steps[start].depends_on))]
        visiting.append(start)
        state[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in steps:
                    continue
                if state.get(child) == 1:
                    return visiting[visiting.index(child) :]
                if not state.get(child):
                    state[child] = 1
                    visiting.append(child)
                    stack.append((child, iter(steps[child].depends_on)))
                    break
            else:
                stack.pop()
                visiting.pop()
                state[node] = 2
    return []


def _input_specs(inputs: Any) -> dict[str, InputSpec]:
    if isinstance(inputs, Mapping):
        specs = {}
        for name, spec in inputs.items():
            specs[name] = spec if isinstance(spec, InputSpec) else InputSpec(name, False, spec)
        return specs
    return {name: InputSpec(name) for name in inputs}


def is_callable_target(kind: object, target: object) -> bool:
    """Whether ``target`` can be what a step of ``kind`` calls: an agent or a tool may
    also be an object of a supported agent framework, which the runtime adapts."""
    return (
        callable(target)
        or (kind == "agent" and callable(getattr(target, "run", None)))
        or (kind in _FRAMEWORK_KINDS and framework_of(target) is not None)
    )


def callable_kind(kind: object) -> str:
    """What a step of ``kind`` may call, in words."""
    if kind == "agent":
        return f"a callable, an object with a run() method, or {_FRAMEWORK_OBJECTS}"
    if kind in _FRAMEWORK_KINDS:
        return f"a callable or {_FRAMEWORK_OBJECTS}"
    return "a callable"


# The step kinds that may name an object of an agent framework, and those objects.
_FRAMEWORK_KINDS: Final = ("agent", "tool")
_FRAMEWORK_OBJECTS: Final = (
    "a pydantic-ai Agent, a LangChain Runnable or LangGraph graph, or an OpenAI Agents SDK Agent"
)


def _runner_name(value: object) -> bool:
    # ASCII only: a name is matched against the runtime's names as written.
    return isinstance(value, str) and value.isascii() and value.isidentifier()


def _dotted_name(name: str) -> bool:
    module, _, attribute = name.rpartition(":")
    parts = [*(module.split(".") if module else ()), *attribute.split(".")]
    return all(part.isidentifier() for part in parts)


def _positive_number(value: object, *, zero: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        seconds = float(value)  # an integer of 309 digits or more is too large for one
    except OverflowError:
        return False
    if math.isnan(seconds):
        return False
    return seconds >= 0 if zero else seconds > 0


def _string_tuple(value: object, name: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        problems.append(f"{name} must be a list of step ids, got {quote(value)}")
        return ()
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        problems.append(f"{name} must list step ids as strings, got {quote(bad)}")
        return ()
    return items


def _inputs_problem(inputs: object) -> str:
    """Why a step's ``inputs`` that are not a mapping are wrong, with the mapping meant."""
    if isinstance(inputs, list) and inputs and all(is_name(name) for name in inputs):
        example = ", ".join(f'{name}: "${{inputs.{name}}}"' for name in inputs[:3])
        return (
            f"a step's inputs are a mapping of argument names to values, not a list; "
            f"write inputs: {{{example}}} (the workflow's own inputs are the list at the "
            f"top level)"
        )
    kind = "a list" if isinstance(inputs, list) else type(inputs).__name__
    return (
        f"a step's inputs must be a mapping of argument names to values, such as "
        f'inputs: {{text: "${{inputs.text}}"}}, got {kind}'
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _some(names: list[str]) -> str:
    """A list of names for a message: the first ten, and how many more (a long workflow
    must not make every message, and so loading, grow with its size)."""
    shown = ", ".join(quote(name).strip("'") if len(name) > 80 else name for name in names[:10])
    more = f" and {len(names) - 10:,} more" if len(names) > 10 else ""
    return shown + more if names else "none"


def _at(line: int | None) -> str:
    return f" at line {line}" if line is not None else ""
