"""The state of one run, with no I/O: what is ready, what ended how, and the result.

Nothing here awaits, sleeps or touches a loop; the driver does all of that and tells
the state what happened. So every decision of a run (which steps become ready, when
fail-fast stops it, whether a failed attempt is retried, what the result says) can be
checked step by step without running anything, and a run can start from outcomes
recorded elsewhere (a ``seed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from time import perf_counter
from typing import Any, NoReturn

from .._exceptions import (
    ExpressionError,
    Problem,
    StepTimeoutError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)
from ..integrations import StepOutput
from ..workflow import Step
from ._plan import Plan
from ._results import RunStatus, StepResult, StepStatus, WorkflowResult

__all__ = ("NOT_RETRIED", "RunState", "StepAttempts")

#: What a step without ``retry_on:`` never retries: errors another attempt with the same
#: inputs would only repeat (a bad call, bad data or a validation error such as
#: pydantic's ``ValidationError``, which is a ``ValueError``; a missing key or attribute).
NOT_RETRIED: tuple[type[Exception], ...] = (
    TypeError,
    ValueError,
    LookupError,
    AttributeError,
    NameError,
    NotImplementedError,
)


# How a step that did not succeed can end without failing the run: stopped by something
# else, or skipped by its condition.
_NOT_FAILURES = (StepStatus.CANCELLED, StepStatus.SKIPPED)
_SUCCEEDED = StepStatus.SUCCEEDED


class StepAttempts:
    """One step's attempts as they happen: counts them, decides on retries, and makes
    the step's result. Its clock starts when it is made, before the first attempt."""

    __slots__ = ("_start", "attempts", "retry_on", "started_at", "step")

    def __init__(self, step: Step, retry_on: tuple[type[Exception], ...] | None = None) -> None:
        self.step = step
        #: The exception types retried (``None``: all but :data:`NOT_RETRIED`).
        self.retry_on = retry_on
        #: Attempts begun so far.
        self.attempts = 0
        self.started_at = datetime.now(timezone.utc)
        self._start = perf_counter()

    def begin(self) -> int:
        """Count a new attempt; its number, from 1."""
        self.attempts += 1
        return self.attempts

    def retry_delay(self, error: BaseException | None = None) -> float | None:
        """Seconds to wait before the next attempt, now that the current one failed
        (with ``error``), or ``None`` if the step has no retries left or ``error`` is not
        worth retrying (see :attr:`retry_on`). The delay doubles each time."""
        if self.attempts > self.step.retries:
            return None
        if error is not None and not self.retries(error):
            return None
        # Doubling is exact in binary floating point: the same as doubling each time.
        return self.step.retry_delay * float(2 ** (self.attempts - 1))

    def retries(self, error: BaseException) -> bool:
        """Whether a failure with ``error`` is worth another attempt."""
        if self.retry_on is None:
            return not isinstance(error, NOT_RETRIED)
        return isinstance(error, self.retry_on)

    def skipped(self) -> StepResult:
        """The result of a step whose ``when`` condition is false: it never started."""
        return StepResult(self.step.id, self.step.kind, StepStatus.SKIPPED)

    def failed(self, error: BaseException) -> StepResult:
        """The result of a step that ends with ``error``: timed out if it is this step's
        own timeout, failed otherwise."""
        timed_out = isinstance(error, StepTimeoutError) and error.step_id == self.step.id
        return self.ended(StepStatus.TIMED_OUT if timed_out else StepStatus.FAILED, error)

    def ended(
        self, status: StepStatus, error: BaseException | None, output: Any = None
    ) -> StepResult:
        """The step's result, ended now with ``status``; an ``output`` that is a
        :class:`~agentbridge.integrations.StepOutput` gives the output and the usage."""
        step = self.step
        usage = None
        if isinstance(output, StepOutput):
            output, usage = output.output, output.usage
        return StepResult(
            step.id,
            step.kind,
            status,
            output,
            self.attempts,
            self.started_at,
            perf_counter() - self._start,
            error,
            usage=usage,
        )


class RunState:
    """What one run knows: the outputs and results so far, what waits on what, and the
    first failure.

    :param plan: the bound workflow
    :param inputs: the run's bound inputs (see :meth:`Plan.bind_inputs`)
    :param fail_fast: whether the first failure stops the run
    :param seed: results recorded elsewhere, by step id, taken as this run's: those
        steps are done and their dependents are released. Only succeeded results can
        be seeded, and a seeded step's dependencies must be seeded too (its output was
        made from theirs).
    :raises WorkflowValidationError: for a seed that does not fit the plan
    """

    __slots__ = (
        "_ready",
        "_waiting",
        "fail_fast",
        "failure",
        "inputs",
        "outputs",
        "plan",
        "results",
    )

    def __init__(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        *,
        fail_fast: bool = True,
        seed: Mapping[str, StepResult] | None = None,
    ) -> None:
        self.plan = plan
        self.inputs = inputs
        self.fail_fast = fail_fast
        #: Every succeeded step's output, by step id.
        self.outputs: dict[str, Any] = {}
        #: Every ended step's result, by step id.
        self.results: dict[str, StepResult] = {}
        #: What the first failing step raised.
        self.failure: BaseException | None = None
        self._waiting = dict(plan.indegree)
        if seed:
            self._ready = self._seed(seed)
        else:
            self._ready = list(plan.roots)

    def _seed(self, seed: Mapping[str, StepResult]) -> list[str]:
        # One pass that takes each seeded result, checked as it goes (a resume seeds
        # every step it reuses), and one that finds the ready steps; the first result
        # that does not fit is said by _refuse.
        plan = self.plan
        calls, dependents, waiting = plan.calls, plan.dependents, self._waiting
        results, outputs = self.results, self.outputs
        for step_id, result in seed.items():
            if step_id not in calls or result.step_id != step_id or result.status is not _SUCCEEDED:
                self._refuse(seed)
            results[step_id] = result
            outputs[step_id] = result.output
            for dependent in dependents[step_id]:
                waiting[dependent] -= 1
        ready = []
        for step in plan.workflow.steps:
            step_id = step.id
            # A step waits on each of its dependencies once, so a seeded one still
            # waiting has a dependency that is not seeded.
            if waiting[step_id]:
                if step_id in seed:
                    self._refuse(seed)
            elif step_id not in seed:
                ready.append(step_id)
        return ready

    def _refuse(self, seed: Mapping[str, StepResult]) -> NoReturn:
        """Raise for every seeded result that does not fit the plan."""
        plan = self.plan
        problems = []
        for step_id, result in seed.items():
            call = plan.calls.get(step_id)
            if call is None:
                known = ", ".join(plan.calls)
                problems.append(
                    Problem(f"a seeded result names no step of the workflow ({known})", step_id)
                )
            elif result.step_id != step_id or result.status is not StepStatus.SUCCEEDED:
                problems.append(
                    Problem(
                        f"a seeded result must be a succeeded result of this step, got a "
                        f"{result.status.value} result of step {result.step_id!r}; leave it "
                        f"out so the step runs again",
                        step_id,
                    )
                )
            else:
                missing = [dep for dep in call.step.depends_on if dep not in seed]
                if missing:
                    problems.append(
                        Problem(
                            f"a seeded step needs its dependencies seeded too, and "
                            f"{', '.join(map(repr, missing))} are not; leave it out so it "
                            f"runs again from theirs",
                            step_id,
                        )
                    )
        raise WorkflowValidationError(problems, source=plan.workflow.source)

    def waiting(self, step_id: str) -> int:
        """How many of ``step_id``'s dependencies have not succeeded yet."""
        return self._waiting[step_id]

    def take_ready(self) -> list[str]:
        """The steps ready when the run starts, in the workflow's order; given once."""
        ready, self._ready = self._ready, []
        return ready

    def record(self, result: StepResult) -> list[str] | None:
        """Record how a step ended; the dependents that this makes ready, or ``None``
        once the run is stopping (a step failed and the run fails fast).

        A step that did not succeed releases none of its dependents, and is the run's
        failure if it is the first (a cancelled step is not a failure: something else
        stopped the run; nor is a step its condition skipped).
        """
        step_id = result.step_id
        self.results[step_id] = result
        if result.status is StepStatus.SUCCEEDED:
            self.outputs[step_id] = result.output
        elif self.failure is None and result.status not in _NOT_FAILURES:
            self.failure = result.error
        if self.failure is not None and self.fail_fast:
            return None
        if result.status is not StepStatus.SUCCEEDED:
            return []
        ready = []
        waiting = self._waiting
        for dependent in self.plan.dependents[step_id]:
            waiting[dependent] -= 1
            if not waiting[dependent]:
                ready.append(dependent)
        return ready

    def ended_status(self) -> RunStatus:
        """How a run that ran to its end (neither cancelled nor timed out) ended."""
        return RunStatus.FAILED if self.failure is not None else RunStatus.SUCCEEDED

    def result(
        self,
        status: RunStatus,
        *,
        run_id: str,
        started_at: datetime,
        duration: float,
        timeout: float | None = None,
    ) -> WorkflowResult:
        """The run's result, ended with ``status``: steps that never ended are skipped.

        A declared output that cannot be evaluated fails the run. A timed-out run's
        error is a :class:`WorkflowTimeoutError` that carries this result; a cancelled
        run has none.
        """
        workflow = self.plan.workflow
        error = None if status is RunStatus.CANCELLED else self.failure
        outputs = self._outputs()
        if isinstance(outputs, ExpressionError):
            status, error, outputs = RunStatus.FAILED, outputs, {}
        results = self.results
        steps = {
            step.id: results.get(step.id) or StepResult(step.id, step.kind, StepStatus.SKIPPED)
            for step in workflow.steps
        }
        result = WorkflowResult(
            workflow.name, status, outputs, steps, started_at, duration, error, run_id=run_id
        )
        if status is RunStatus.TIMED_OUT:
            # The error carries the result it ends, so it is made once the result exists.
            assert timeout is not None
            error = WorkflowTimeoutError(
                f"workflow {workflow.name!r} did not finish within its timeout of {timeout:g} s "
                f"and was cancelled; pass a larger timeout= if it needs longer",
                timeout=timeout,
                result=result,
            )
            object.__setattr__(result, "error", error)
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
