"""The scheduler: runs a workflow's steps on the current loop as their dependencies finish.

There are no rounds. When a step succeeds, each dependent whose last dependency that
was is started at once, in the run's task group, so a fast branch never waits for a
slow sibling. Async steps are awaited on the run's loop; sync steps run through
:func:`agentbridge.to_thread`, so the bridge inside them comes back to this loop.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from time import perf_counter
from types import MappingProxyType
from typing import Any

import anyio
import anyio.to_thread
from anyio import CapacityLimiter, get_cancelled_exc_class

from .._exceptions import (
    ExpressionError,
    Problem,
    StepTimeoutError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)
from ..bridge import to_thread
from ..workflow import Step, Workflow
from ._events import Event, RunFinished, RunStarted, StepFinished, StepRetrying, StepStarted
from ._results import RunStatus, StepResult, StepStatus, WorkflowResult

__all__ = ("Plan", "RunOptions", "execute")

Emit = Callable[[Event], object]


@dataclass(frozen=True)
class RunOptions:
    """How a run may use threads and concurrency; validated by the runtime."""

    max_threads: int | None = None
    max_concurrency: int | None = None
    fail_fast: bool = True


class _StepCall:
    __slots__ = ("fn", "is_async", "step")

    def __init__(self, step: Step, fn: Callable[..., Any]) -> None:
        self.step = step
        self.fn = fn
        self.is_async = _is_async_callable(fn)


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class Plan:
    """A workflow bound to the callables of its steps: built once, run many times."""

    __slots__ = ("calls", "dependents", "indegree", "roots", "workflow")

    def __init__(self, workflow: Workflow, targets: Mapping[str, Callable[..., Any]]) -> None:
        self.workflow = workflow
        self.calls = {step.id: _StepCall(step, targets[step.id]) for step in workflow.steps}
        self.dependents: dict[str, list[str]] = {step.id: [] for step in workflow.steps}
        self.indegree = {step.id: len(step.depends_on) for step in workflow.steps}
        for step in workflow.steps:
            for dependency in step.depends_on:
                self.dependents[dependency].append(step.id)
        self.roots = [step.id for step in workflow.steps if not step.depends_on]

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


async def execute(
    plan: Plan,
    inputs: Mapping[str, Any],
    options: RunOptions,
    *,
    timeout: float | None = None,
    emit: Emit | None = None,
) -> WorkflowResult:
    """Run ``plan`` on the current loop and return its result; never raises for a step.

    Cancellation of the caller propagates (after every running step is recorded as
    cancelled and, with ``emit``, :class:`RunFinished` is reported).
    """
    return await _Run(plan, inputs, options, emit).execute(timeout)


class _Run:
    def __init__(
        self, plan: Plan, inputs: Mapping[str, Any], options: RunOptions, emit: Emit | None
    ) -> None:
        self.plan = plan
        self.name = plan.workflow.name
        self.inputs = inputs
        self.fail_fast = options.fail_fast
        self.emit = emit
        self.outputs: dict[str, Any] = {}
        self.results: dict[str, StepResult] = {}
        self.waiting = dict(plan.indegree)
        self.failure: BaseException | None = None
        self.threads = CapacityLimiter(options.max_threads) if options.max_threads else None
        self.slots = CapacityLimiter(options.max_concurrency) if options.max_concurrency else None
        self.task_group: anyio.abc.TaskGroup | None = None
        self.sync_queue: deque[str] = deque()
        self.sync_runners = 0
        self.sync_runner_limit = (
            self.threads or anyio.to_thread.current_default_thread_limiter()
        ).total_tokens

    async def execute(self, timeout: float | None) -> WorkflowResult:
        started_at = datetime.now(timezone.utc)
        start = perf_counter()
        if self.emit is not None:
            self.emit(RunStarted(self.name, inputs=MappingProxyType(dict(self.inputs))))
        try:
            with anyio.move_on_after(timeout) as deadline:
                async with anyio.create_task_group() as self.task_group:
                    for step_id in self.plan.roots:
                        self._start(step_id)
        except get_cancelled_exc_class():
            self._finish_run(RunStatus.CANCELLED, started_at, start, None)
            raise
        if deadline.cancelled_caught:
            status = RunStatus.TIMED_OUT
        elif self.failure is not None:
            status = RunStatus.FAILED
        else:
            status = RunStatus.SUCCEEDED
        return self._finish_run(status, started_at, start, self.failure, timeout)

    def _finish_run(
        self,
        status: RunStatus,
        started_at: datetime,
        start: float,
        error: BaseException | None,
        timeout: float | None = None,
    ) -> WorkflowResult:
        outputs = self._outputs()
        if isinstance(outputs, ExpressionError):
            status, error, outputs = RunStatus.FAILED, outputs, {}
        steps = {
            step.id: self.results.get(step.id) or StepResult(step.id, step.kind, StepStatus.SKIPPED)
            for step in self.plan.workflow.steps
        }
        result = WorkflowResult(
            self.name, status, outputs, steps, started_at, perf_counter() - start, error
        )
        if status is RunStatus.TIMED_OUT:
            # The error carries the result it ends, so it is made once the result exists.
            assert timeout is not None
            error = WorkflowTimeoutError(
                f"workflow {self.name!r} did not finish within its timeout of {timeout:g} s "
                f"and was cancelled; pass a larger timeout= if it needs longer",
                timeout=timeout,
                result=result,
            )
            object.__setattr__(result, "error", error)
        if self.emit is not None:
            self.emit(RunFinished(self.name, result=result))
        return result

    def _outputs(self) -> dict[str, Any] | ExpressionError:
        workflow = self.plan.workflow
        if not workflow.outputs:
            return {
                step.id: self.outputs[step.id] for step in workflow.steps if step.id in self.outputs
            }
        try:
            return workflow.evaluate_outputs(self.inputs, self.outputs)
        except ExpressionError as exc:
            return exc

    async def _run_step(self, step_id: str, *, runner: bool = False) -> None:
        # The first dependent a step makes ready runs next in this same task, the others
        # start through _start: a chain then costs no task spawns at all. A runner of
        # sync steps takes only sync steps along, so it never waits on an async one.
        next_id: str | None = step_id
        while next_id is not None:
            result = await self._execute_step(self.plan.calls[next_id])
            done = next_id
            self._record(result)
            if result.status is not StepStatus.SUCCEEDED:
                if self.failure is None:
                    self.failure = result.error
                if self.fail_fast:
                    assert self.task_group is not None
                    self.task_group.cancel_scope.cancel()
                return
            self.outputs[done] = result.output
            if self.failure is not None and self.fail_fast:
                return  # the run is stopping: start nothing new
            next_id = None
            for dependent in self._ready_dependents(done):
                if next_id is None and not (runner and self.plan.calls[dependent].is_async):
                    next_id = dependent
                else:
                    self._start(dependent)

    def _start(self, step_id: str) -> None:
        assert self.task_group is not None
        if self.plan.calls[step_id].is_async:
            self.task_group.start_soon(self._run_step, step_id)
            return
        # Sync steps wait in a queue for a few runner tasks, no more than there are
        # thread tokens: more could only wait for a token, and starting a task costs a
        # fifth of a whole offload.
        self.sync_queue.append(step_id)
        if self.sync_runners < self.sync_runner_limit:
            self.sync_runners += 1
            self.task_group.start_soon(self._run_sync_steps)

    async def _run_sync_steps(self) -> None:
        try:
            while self.sync_queue:
                await self._run_step(self.sync_queue.popleft(), runner=True)
        finally:
            self.sync_runners -= 1

    def _ready_dependents(self, step_id: str) -> list[str]:
        ready = []
        waiting = self.waiting
        for dependent in self.plan.dependents[step_id]:
            waiting[dependent] -= 1
            if not waiting[dependent]:
                ready.append(dependent)
        return ready

    def _record(self, result: StepResult) -> None:
        self.results[result.step_id] = result
        if self.emit is not None:
            self.emit(
                StepFinished(self.name, step_id=result.step_id, kind=result.kind, result=result)
            )

    async def _execute_step(self, call: _StepCall) -> StepResult:
        step = call.step
        started_at = datetime.now(timezone.utc)
        start = perf_counter()
        attempt = 0
        delay = step.retry_delay
        # Without a cap or a timeout an attempt is the bare call: two frames fewer.
        call_once = self._call if self.slots is None and step.timeout is None else self._bounded
        try:
            while True:
                try:
                    kwargs = step.evaluate_inputs(self.inputs, self.outputs)
                except ExpressionError as exc:
                    return self._ended(step, StepStatus.FAILED, attempt, started_at, start, exc)
                attempt += 1
                if self.emit is not None:
                    self.emit(
                        StepStarted(self.name, step_id=step.id, kind=step.kind, attempt=attempt)
                    )
                try:
                    output = await call_once(call, kwargs)
                except Exception as exc:
                    if attempt <= step.retries:
                        if self.emit is not None:
                            self.emit(
                                StepRetrying(
                                    self.name,
                                    step_id=step.id,
                                    kind=step.kind,
                                    attempt=attempt,
                                    error=exc,
                                    delay=delay,
                                )
                            )
                        await anyio.sleep(delay)
                        delay *= 2
                        continue
                    timed_out = isinstance(exc, StepTimeoutError) and exc.step_id == step.id
                    status = StepStatus.TIMED_OUT if timed_out else StepStatus.FAILED
                    return self._ended(step, status, attempt, started_at, start, exc)
                return self._ended(
                    step, StepStatus.SUCCEEDED, attempt, started_at, start, None, output
                )
        except get_cancelled_exc_class():
            self._record(self._ended(step, StepStatus.CANCELLED, attempt, started_at, start, None))
            raise

    @staticmethod
    def _ended(
        step: Step,
        status: StepStatus,
        attempts: int,
        started_at: datetime,
        start: float,
        error: BaseException | None,
        output: Any = None,
    ) -> StepResult:
        return StepResult(
            step.id, step.kind, status, output, attempts, started_at, perf_counter() - start, error
        )

    async def _bounded(self, call: _StepCall, kwargs: dict[str, Any]) -> Any:
        """One attempt under the run's concurrency cap and the step's timeout."""
        timeout = call.step.timeout
        async with self.slots or nullcontext():
            if timeout is None:
                return await self._call(call, kwargs)
            with anyio.move_on_after(timeout):
                return await self._call(call, kwargs)
        what = "its thread was abandoned" if not call.is_async else "it was cancelled"
        raise StepTimeoutError(
            f"step {call.step.id!r} did not finish within its timeout of {timeout:g} s; {what}",
            step_id=call.step.id,
            timeout=timeout,
        )

    async def _call(self, call: _StepCall, kwargs: dict[str, Any]) -> Any:
        if call.is_async:
            return await call.fn(**kwargs)
        # A blocking call cannot be interrupted: on cancellation or timeout the run moves
        # on at once and the thread finishes on its own.
        result = await to_thread(
            functools.partial(call.fn, **kwargs), limiter=self.threads, abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            result = await result
        return result
