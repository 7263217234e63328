"""Submitting ahead: a step handed to its engine before the steps it depends on ended.

A step on Dask or Ray otherwise starts once the driver learns that its upstream ended:
a round trip engine to driver to engine per step of a chain, where the raw engine
hands each future to the next submission. When an attempt of a step begins on an
engine runner, each dependent that qualifies is submitted at once, the upstream's
task as an argument the engine resolves on the worker (:func:`~._worker.call_ahead`),
and its dependents in turn, up to the runner's capacity.

A dependent qualifies when every dependency that has not succeeded yet is a step
whose attempt is on that same runner object now, and its inputs read those steps only
as whole ``${steps.ID.output...}`` paths (:meth:`~agentbridge.Step.passed_outputs`:
no ``when:``, no ``for_each``). Everything else it reads is evaluated on the driver
first. The driver still treats the step as today: it starts it (its ``StepStarted``,
its clock, its timeout, its inputs checked on the driver) once its dependencies
succeeded, and then awaits the task submitted ahead instead of submitting one
(:meth:`take`). An upstream attempt that fails, times out or is cancelled drops the
tasks submitted ahead of it (the engine fails a task whose argument failed without
calling it, and the runner cancels it too); so does the end of the run, for those
never taken. A step's retry submits anew, and its dependents ahead of it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import ExpressionError
from ._plan import Passed, StepCall
from ._results import StepStatus
from ._runner import StepRunner
from ._state import RunState

if TYPE_CHECKING:
    from ._engine import EngineRunner, Pending
    from ._worker import Places

__all__ = ("SubmitAhead",)


class _Ahead:
    """A task submitted ahead, until the driver takes it or drops it."""

    __slots__ = ("engine", "pending", "upstream")

    def __init__(self, engine: EngineRunner[Any], pending: Pending, upstream: set[str]) -> None:
        self.engine = engine
        self.pending = pending
        #: The steps whose attempts it takes as arguments.
        self.upstream = upstream


class SubmitAhead:
    """One run's tasks submitted ahead, and the attempts they may follow. Used on the
    run's loop only, by the driver, never awaiting.

    :param state: the run's state (what succeeded so far)
    :param runner: the run's runner
    """

    __slots__ = ("_blocked", "_live", "_live_dependencies", "ahead", "runner", "state")

    def __init__(self, state: RunState, runner: StepRunner) -> None:
        self.state = state
        self.runner = runner
        #: The attempt of each step running on an engine now, by step id.
        self._live: dict[str, tuple[EngineRunner[Any], Pending]] = {}
        #: How many of each step's dependencies are in :attr:`_live`: a step qualifies
        #: only once they are all its dependencies not succeeded yet (counted, so a
        #: wide fan-in costs no scan of its dependencies per attempt that begins).
        self._live_dependencies: dict[str, int] = {}
        #: The tasks submitted ahead and not taken yet, by step id.
        self.ahead: dict[str, _Ahead] = {}
        #: Steps that qualified while their runner's capacity was used up, in order.
        self._blocked: dict[str, None] = {}

    def take(self, step_id: str) -> Pending | None:
        """The task submitted ahead for ``step_id``'s first attempt, now that it starts;
        ``None`` if there is none."""
        ahead = self.ahead.pop(step_id, None)
        if ahead is None:
            return None
        self._unblock()
        return ahead.pending

    def began(self, step_id: str, engine: EngineRunner[Any], pending: Pending) -> None:
        """An attempt of ``step_id`` is on ``engine``: submit the dependents that now
        qualify, and theirs."""
        self._enter(step_id, engine, pending)
        self._follow([step_id])

    def succeeded(self, step_id: str) -> None:
        """``step_id``'s attempt succeeded (its output is recorded next)."""
        self._leave(step_id)

    def failed(self, step_id: str) -> None:
        """``step_id``'s attempt failed, timed out or was cancelled: drop every task
        submitted ahead of it, and those submitted ahead of these."""
        self._leave(step_id)
        self._drop_after([step_id])
        self._unblock()

    def ended(self, step_id: str) -> None:
        """``step_id`` ended without taking its task submitted ahead (its condition,
        an input that could not be evaluated, the run stopping): drop it."""
        ahead = self.ahead.pop(step_id, None)
        if ahead is not None:
            self._leave(step_id)
            ahead.engine.drop(ahead.pending)
            self._drop_after([step_id])
            self._unblock()

    def close(self) -> None:
        """The run ended: drop every task never taken."""
        self._blocked.clear()
        ahead, self.ahead = self.ahead, {}
        for each in ahead.values():
            each.engine.drop(each.pending)
        self._live.clear()
        self._live_dependencies.clear()

    def _enter(self, step_id: str, engine: EngineRunner[Any], pending: Pending) -> None:
        if step_id not in self._live:
            counts = self._live_dependencies
            for dependent in self.state.plan.dependents[step_id]:
                counts[dependent] = counts.get(dependent, 0) + 1
        self._live[step_id] = (engine, pending)

    def _leave(self, step_id: str) -> None:
        if self._live.pop(step_id, None) is not None:
            counts = self._live_dependencies
            for dependent in self.state.plan.dependents[step_id]:
                counts[dependent] -= 1

    def _drop_after(self, step_ids: list[str]) -> None:
        while step_ids:
            failed = step_ids.pop()
            for step_id in self.state.plan.dependents[failed]:
                ahead = self.ahead.get(step_id)
                if ahead is not None and failed in ahead.upstream:
                    del self.ahead[step_id]
                    self._leave(step_id)
                    ahead.engine.drop(ahead.pending)
                    step_ids.append(step_id)

    def _unblock(self) -> None:
        blocked, self._blocked = self._blocked, {}
        for step_id in blocked:
            if self._submit(step_id):
                self._follow([step_id])

    def _follow(self, step_ids: list[str]) -> None:
        # A work list, not recursion: a chain is submitted as deep as capacity allows.
        dependents = self.state.plan.dependents
        while step_ids:
            for dependent in dependents[step_ids.pop()]:
                if self._submit(dependent):
                    step_ids.append(dependent)

    def _submit(self, step_id: str) -> bool:
        """Submit ``step_id`` ahead if it qualifies now; whether it was."""
        state = self.state
        passed = state.plan.passed[step_id]  # found once per plan, on first use
        if (
            passed is None
            or step_id in self._live
            or step_id in state.results
            or self._live_dependencies.get(step_id, 0) < state.waiting(step_id)
        ):
            return False
        call = state.plan.calls[step_id]
        engine = self.runner.submits_ahead(call)
        if engine is None:
            return False
        upstream: list[Pending] = []
        positions: dict[str, int] = {}
        results = state.results
        for dependency in call.step.depends_on:
            live = self._live.get(dependency)
            if live is not None and live[0] is engine:
                positions[dependency] = len(upstream)
                upstream.append(live[1])
                continue
            result = results.get(dependency)
            if result is None or result.status is not StepStatus.SUCCEEDED:
                return False  # it waits on something the engine does not have
        if not upstream:  # all done: the driver starts it as any step
            return False
        if len(self.ahead) >= engine.capacity:
            self._blocked[step_id] = None
            return False
        kwargs, places = self._inputs(call, passed, positions)
        if kwargs is None:  # the driver reports why when the step starts
            return False
        pending = engine.begin(call, kwargs, tuple(upstream), places)
        self.ahead[step_id] = _Ahead(engine, pending, set(positions))
        self._enter(step_id, engine, pending)
        return True

    def _inputs(
        self,
        call: StepCall,
        passed: Passed,
        positions: dict[str, int],
    ) -> tuple[dict[str, Any] | None, Places]:
        """The inputs evaluated here, and where the rest come from on the worker."""
        places = tuple(
            (name, positions[source], path)
            for name, (source, path) in passed.items()
            if source in positions
        )
        state = self.state
        try:
            kwargs = call.step.evaluate_inputs(
                state.inputs, state.outputs, leave_out={name for name, _, _ in places}
            )
        except ExpressionError:
            return None, ()
        return kwargs, places
