"""The plan: a workflow bound to the callables of its steps, built once, run many times."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import Problem, WorkflowValidationError
from ..integrations import adapt
from ..workflow import Step, Workflow
from ._keys import prefix

__all__ = ("Passed", "Plan", "StepCall")

#: A step's :meth:`~agentbridge.Step.passed_outputs`.
Passed = dict[str, tuple[str, Callable[[Any], Any] | None]]


class StepCall:
    """One step and the callable it resolved to (an agent framework's object adapted to
    an async callable)."""

    __slots__ = ("fn", "is_async", "key_prefix", "retry_on", "step")

    def __init__(
        self,
        step: Step,
        fn: Callable[..., Any],
        retry_on: tuple[type[Exception], ...] | None = None,
    ) -> None:
        #: The step.
        self.step = step
        #: What the step calls.
        self.fn = adapt(fn)
        #: The exception types of the step's ``retry_on:``, or ``None`` for the default.
        self.retry_on = retry_on
        #: Whether calling ``fn`` gives a coroutine to await (otherwise it blocks).
        self.is_async = _is_async_callable(self.fn)
        #: The start of the step's input keys in a durable run (see :mod:`._keys`).
        self.key_prefix = prefix(step)


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class Plan:
    """A workflow bound to the callables of its steps, and its graph in the shape a run
    walks it: each step's dependents, each step's number of dependencies, the roots."""

    __slots__ = ("_passed", "calls", "dependents", "indegree", "roots", "workflow")

    def __init__(
        self,
        workflow: Workflow,
        targets: Mapping[str, Callable[..., Any]],
        retry_on: Mapping[str, tuple[type[Exception], ...]] | None = None,
    ) -> None:
        self.workflow = workflow
        retry_on = retry_on or {}
        self.calls = {
            step.id: StepCall(step, targets[step.id], retry_on.get(step.id))
            for step in workflow.steps
        }
        self.dependents: dict[str, list[str]] = {step.id: [] for step in workflow.steps}
        self.indegree = {step.id: len(step.depends_on) for step in workflow.steps}
        for step in workflow.steps:
            for dependency in step.depends_on:
                self.dependents[dependency].append(step.id)
        self.roots = [step.id for step in workflow.steps if not step.depends_on]
        self._passed: dict[str, Passed | None] | None = None

    @property
    def passed(self) -> dict[str, Passed | None]:
        """Each step's :meth:`~agentbridge.Step.passed_outputs`, found on first use
        (by runs on a runner that submits ahead) and kept with the plan."""
        if self._passed is None:
            self._passed = {step.id: step.passed_outputs() for step in self.workflow.steps}
        return self._passed

    def bind_inputs(self, inputs: object) -> dict[str, Any]:
        """The run's inputs, with defaults filled in.

        :raises WorkflowValidationError: for a missing required input, an undeclared
            input, or inputs that are not a mapping
        """
        declared = self.workflow.inputs
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise WorkflowValidationError(
                [
                    Problem(
                        f"inputs must be a mapping of input names to values, got "
                        f"{type(inputs).__name__}"
                    )
                ],
                source=self.workflow.source,
            )
        problems = []
        names = ", ".join(declared) or "none"
        for name in inputs:
            if name not in declared:
                problems.append(Problem(f"unknown input {name!r}; the workflow declares: {names}"))
        values = {}
        for name, spec in declared.items():
            if name in inputs:
                values[name] = inputs[name]
            elif spec.required:
                problems.append(
                    Problem(f"missing required input {name!r}; pass it in inputs={{{name!r}: ...}}")
                )
            else:
                values[name] = spec.default
        if problems:
            raise WorkflowValidationError(problems, source=self.workflow.source)
        return values
