"""The driver: the anyio loop that runs a plan, connecting its run state and its runner.

There are no rounds. When a step succeeds, each dependent whose last dependency that
was is started at once, in the run's task group, so a fast branch never waits for a
slow sibling. The :class:`~._state.RunState` decides what is ready and how the run
ends; the :class:`~._runner.StepRunner` executes each attempt; the driver owns the
tasks, the caps, the timeouts, the retry delays and the events.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from datetime import datetime, timezone
from time import perf_counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio import CapacityLimiter, get_cancelled_exc_class

from .._exceptions import ExpressionError, StepTimeoutError
from ._ahead import SubmitAhead
from ._context import StepContext, step_context
from ._events import Event, RunFinished, RunStarted, StepFinished, StepRetrying, StepStarted
from ._journal import Journal
from ._options import RunOptions
from ._plan import Plan, StepCall
from ._results import RunStatus, StepResult, StepStatus, WorkflowResult
from ._runner import LocalRunner, StepRunner
from ._state import RunState, StepAttempts

if TYPE_CHECKING:
    from ._engine import EngineRunner

__all__ = ("Emit", "execute")

Emit = Callable[[Event], object]

#: Steps started before the driver lets them run (a checkpoint, never a wait: a step
#: that blocks holds up no later batch). A wide fan-out of quick steps then never holds
#: more than about twice this many tasks at once. Small on purpose: a step's task is
#: about 35 objects the garbage collector tracks, so a batch fits in its youngest
#: generation (700 allocations by default) and its quick steps end, freed by reference
#: counting, before a collection finds them alive and promotes them; with 512, nearly
#: every task was promoted, and the full collections that followed scanned the whole
#: heap (a 50,000-step plan is about 260,000 objects), a cost per step that grew with
#: the run.
START_BATCH = 16


async def execute(
    plan: Plan,
    inputs: Mapping[str, Any],
    options: RunOptions,
    *,
    emit: Emit | None = None,
    runner: StepRunner | None = None,
    seed: Mapping[str, StepResult] | None = None,
    run_id: str | None = None,
    journal: Journal | None = None,
) -> WorkflowResult:
    """Run ``plan`` on the current loop and return its result; never raises for a step.

    :param runner: executes the attempts (default: a :class:`LocalRunner` with the
        options' ``max_threads``, made on this loop)
    :param seed: results recorded elsewhere, taken as this run's (see
        :class:`RunState`)
    :param run_id: the run's id, on its result and events (default: a new ``uuid4``
        hex string, or the journal's)
    :param journal: records the run in a store as it goes, and supplies the stored
        results of steps that need not run again

    Cancellation of the caller propagates (after every running step is recorded as
    cancelled and, with ``emit``, :class:`RunFinished` is reported).
    """
    reused: list[StepResult] = []
    if journal is not None:
        run_id = journal.run_id
        if seed is None:  # the stored steps that need not run again, reused at once
            seed = journal.seed(plan, inputs)
            reused = list(seed.values())
    state = RunState(plan, inputs, fail_fast=options.fail_fast, seed=seed)
    if runner is None:
        runner = LocalRunner(options.max_threads)
    run = _Run(state, runner, options, emit, run_id or uuid.uuid4().hex, journal, reused)
    if journal is None:
        return await run.execute()
    return await journal.recording(run.execute)


class _Run:
    def __init__(
        self,
        state: RunState,
        runner: StepRunner,
        options: RunOptions,
        emit: Emit | None,
        run_id: str,
        journal: Journal | None = None,
        reused: list[StepResult] | None = None,
    ) -> None:
        self.state = state
        self.calls = state.plan.calls
        self.name = state.plan.workflow.name
        self.run_id = run_id
        self.runner = runner
        self.options = options
        self.emit = emit
        self.journal = journal
        self.slots = CapacityLimiter(options.max_concurrency) if options.max_concurrency else None
        self.task_group: anyio.abc.TaskGroup | None = None
        self.queue: deque[str] = deque()
        self.queue_tasks = 0
        #: What became of each step's attempt its cancellation interrupted, by step id.
        self.cancelled_hows: dict[str, str] = {}
        #: Stored results reused before the run started, reported after RunStarted.
        self.reused = reused or []
        #: Whether steps may be submitted ahead to their engine (see :mod:`._ahead`):
        #: on a runner that may take them (a local run asks nothing per step), not in a
        #: durable run (a stored result may stand for a step), nor under a run cap (a
        #: task submitted ahead holds no slot).
        self.chains = (
            type(runner).submits_ahead is not StepRunner.submits_ahead
            and journal is None
            and self.slots is None
        )
        self.ahead = SubmitAhead(state, runner)

    async def execute(self) -> WorkflowResult:
        started_at = datetime.now(timezone.utc)
        start = perf_counter()
        if self.emit is not None:
            inputs = MappingProxyType(dict(self.state.inputs))
            self.emit(RunStarted(self.name, run_id=self.run_id, inputs=inputs))
            for result in self.reused:
                self._finished(result)
        try:
            with anyio.move_on_after(self.options.timeout) as deadline:
                try:
                    async with anyio.create_task_group() as self.task_group:
                        await self._start_all(self.state.take_ready())
                finally:
                    self.ahead.close()
        except get_cancelled_exc_class():
            self._finish(RunStatus.CANCELLED, started_at, start)
            raise
        if deadline.cancelled_caught:
            return self._finish(RunStatus.TIMED_OUT, started_at, start)
        return self._finish(self.state.ended_status(), started_at, start)

    def _finish(self, status: RunStatus, started_at: datetime, start: float) -> WorkflowResult:
        for ended in self.state.results.values():
            if ended.error is not None and self.runner.runs_elsewhere(self.calls[ended.step_id]):
                _drop_tracebacks(ended.error)
        result = self.state.result(
            status,
            run_id=self.run_id,
            started_at=started_at,
            duration=perf_counter() - start,
            timeout=self.options.timeout,
        )
        if self.journal is not None:
            self.journal.run_ended(result)
        if self.emit is not None:
            self.emit(RunFinished(self.name, run_id=self.run_id, result=result))
        return result

    async def _run_step(self, step_id: str, *, queued: bool = False) -> None:
        # The first dependent a step makes ready runs next in this same task, the others
        # start through _start: a chain then costs no task spawns at all. A task serving
        # the queue of steps away from the loop takes only such steps along, so it never
        # waits on a step that runs on the loop.
        next_id: str | None = step_id
        while next_id is not None:
            result = await self._execute_step(self.calls[next_id])
            ready = self._record(result)
            if ready is None:  # the run is stopping
                assert self.task_group is not None
                self.task_group.cancel_scope.cancel()
                return
            next_id = None
            for index, dependent in enumerate(ready):  # ready is a new list: ours
                if not (queued and self.runner.on_loop(self.calls[dependent])):
                    next_id = ready.pop(index)
                    break
            if ready:
                await self._start_all(ready)

    async def _start_all(self, step_ids: list[str]) -> None:
        # Only new tasks count towards a batch: a step queued away from the loop costs
        # no task, so a sync fan-out needs next to no checkpoints.
        spawned = 0
        for step_id in step_ids:
            if self._start(step_id):
                spawned += 1
                if not spawned % START_BATCH:  # let the started ones run, and end, first
                    await anyio.lowlevel.checkpoint()

    def _start(self, step_id: str) -> bool:
        """Start ``step_id`` in a task of its own or through the queue; whether that
        started a task."""
        assert self.task_group is not None
        if self.runner.on_loop(self.calls[step_id]):
            self.task_group.start_soon(self._run_step, step_id)
            return True
        # Steps away from the loop wait in a queue served by a few tasks, no more than
        # the runner's capacity: more could only wait for it, and starting a task costs
        # a fifth of a whole thread offload.
        self.queue.append(step_id)
        if self.queue_tasks < self.runner.capacity:
            self.queue_tasks += 1
            self.task_group.start_soon(self._run_queued_steps)
            return True
        return False

    async def _run_queued_steps(self) -> None:
        try:
            while self.queue:
                await self._run_step(self.queue.popleft(), queued=True)
        finally:
            self.queue_tasks -= 1

    def _record(self, result: StepResult) -> list[str] | None:
        if self.ahead.ahead:
            self.ahead.ended(result.step_id)
        if self.journal is not None:
            result = self.journal.ended(result, self.calls[result.step_id].step.persist)
        ready = self.state.record(result)
        if self.emit is not None:
            self._finished(result)
        return ready

    def _finished(self, result: StepResult) -> None:
        assert self.emit is not None
        run_id, step_id, kind = self.run_id, result.step_id, result.kind
        self.emit(StepFinished(self.name, run_id=run_id, step_id=step_id, kind=kind, result=result))

    async def _execute_step(self, call: StepCall) -> StepResult:
        step = call.step
        attempts = StepAttempts(step, call.retry_on)
        state = self.state
        try:
            try:
                if step.when is not None and not step.evaluate_condition(
                    state.inputs, state.outputs
                ):
                    return attempts.skipped()
                items = (
                    None
                    if step.for_each is None
                    else step.evaluate_items(state.inputs, state.outputs)
                )
                prepared = None
                if self.journal is not None:
                    stored, prepared = self._stored(call, items)
                    if stored is not None:
                        return stored
            except ExpressionError as exc:
                return attempts.ended(StepStatus.FAILED, exc)
            if items is not None:
                if self.journal is not None:  # a fan-out is recorded as one attempt
                    await self.journal.check_lease()
                    self.journal.started(step, 1)
                return await self._fan_out(call, attempts, items, prepared)
            return await self._attempts(call, attempts, kwargs=prepared)
        except get_cancelled_exc_class():
            result = attempts.ended(StepStatus.CANCELLED, None)
            how = self.cancelled_hows.pop(step.id, None)
            self._record(result if how is None else dataclasses.replace(result, cancelled_how=how))
            raise

    def _how(self, call: StepCall, result: StepResult) -> StepResult:
        """A timed-out ``result`` with what became of its attempt."""
        if result.status is StepStatus.TIMED_OUT:
            return dataclasses.replace(result, cancelled_how=self.runner.cancelled_how(call))
        return result

    def _stored(self, call: StepCall, items: list[Any] | None) -> tuple[StepResult | None, Any]:
        """The stored result that stands for running ``call``'s step now, if there is one: its
        input key covers every item's inputs for a ``for_each`` step. Else the inputs
        the key was made of, for the first attempt (of each item), so they are evaluated
        once; ``None`` if they cannot be: the attempts then fail as in any run."""
        assert self.journal is not None
        state, step = self.state, call.step
        try:
            if items is None:
                inputs: Any = step.evaluate_inputs(state.inputs, state.outputs)
            else:
                inputs = [
                    step.evaluate_inputs(state.inputs, state.outputs, (item, index))
                    for index, item in enumerate(items)
                ]
        except ExpressionError:
            return None, None
        return self.journal.reuse(call, inputs), inputs

    async def _attempts(
        self,
        call: StepCall,
        attempts: StepAttempts,
        each: tuple[Any, int] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> StepResult:
        """Attempts of one step (or of one item of it) until one succeeds, or the step
        has no retries left or the error is not worth one; ``kwargs``: the first
        attempt's inputs, if evaluated already (each retry evaluates them anew)."""
        step = call.step
        item = None if each is None else each[1]
        # Without a cap or a timeout an attempt is the bare call: two frames fewer.
        bare = self.slots is None and step.timeout is None
        while True:
            if kwargs is None:
                try:
                    kwargs = step.evaluate_inputs(self.state.inputs, self.state.outputs, each)
                except ExpressionError as exc:
                    return attempts.ended(StepStatus.FAILED, exc)
            journal = self.journal if each is None else None  # items: recorded as one
            if journal is not None:
                await journal.check_lease()
                journal.started(step, attempts.attempts + 1)
            attempt = attempts.begin()
            if self.emit is not None:
                self.emit(
                    StepStarted(
                        self.name,
                        run_id=self.run_id,
                        step_id=step.id,
                        kind=step.kind,
                        attempt=attempt,
                        item=item,
                    )
                )
            token = step_context.set(StepContext(self.run_id, step.id, attempt))
            engine = self.runner.submits_ahead(call) if self.chains and each is None else None
            try:
                if engine is not None:
                    output = await self._chained(call, engine, kwargs, attempt == 1, bare)
                elif bare:
                    output = await self.runner.run(call, kwargs)
                else:
                    output = await self._bounded(
                        call, item, functools.partial(self.runner.run, call, kwargs)
                    )
            except get_cancelled_exc_class():
                # Asked in this task, where the runner saw the cancellation.
                self.cancelled_hows[step.id] = self.runner.cancelled_how(call)
                raise
            except Exception as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    return self._how(call, attempts.failed(exc))
                if journal is not None:
                    journal.retrying(step, exc)
                if self.emit is not None:
                    self.emit(
                        StepRetrying(
                            self.name,
                            run_id=self.run_id,
                            step_id=step.id,
                            kind=step.kind,
                            attempt=attempt,
                            error=exc,
                            delay=delay,
                            item=item,
                        )
                    )
                kwargs = None
                await anyio.sleep(delay)
                continue
            finally:
                step_context.reset(token)
            return attempts.ended(StepStatus.SUCCEEDED, None, output)

    async def _fan_out(
        self,
        call: StepCall,
        attempts: StepAttempts,
        items: list[Any],
        prepared: list[dict[str, Any]] | None = None,
    ) -> StepResult:
        """A ``for_each`` step: each item's attempts, at most ``max_concurrency`` items
        at once; the first item that fails stops the others and fails the step. Its
        usage is the list of the items' usages, if any reported one. ``prepared``: each
        item's inputs for its first attempt, if evaluated already. In a durable run each
        item that succeeds is stored, and an item stored with the same inputs is not
        run again (its output taken, its usage ``None``)."""
        outputs: list[Any] = [None] * len(items)
        usages: list[Any] = [None] * len(items)
        failures: list[tuple[int, StepResult]] = []
        indexes = iter(range(len(items)))
        workers = call.step.max_concurrency or len(items)
        if not self.runner.on_loop(call):
            workers = min(workers, self.runner.capacity)  # more would only wait

        journal = self.journal
        step = call.step

        async def work(scope: anyio.CancelScope) -> None:
            for index in indexes:
                kwargs = None if prepared is None else prepared[index]
                key = None
                if journal is not None and kwargs is not None:
                    # Each item is stored on its own, so a resume runs only the items
                    # that did not succeed (or whose inputs changed).
                    key, stored = journal.item(call, index, kwargs)
                    if stored is not None:
                        outputs[index] = stored[0]
                        continue
                each = StepAttempts(step, call.retry_on)
                try:
                    result = await self._attempts(call, each, (items[index], index), kwargs)
                finally:
                    attempts.attempts += each.attempts
                if result.status is not StepStatus.SUCCEEDED:
                    failures.append((index, result))
                    scope.cancel()
                    return
                if key is not None:
                    assert journal is not None
                    journal.item_ended(step, index, key, result)
                outputs[index] = result.output
                usages[index] = result.usage

        async with anyio.create_task_group() as items_group:
            for _ in range(min(workers, len(items))):
                items_group.start_soon(work, items_group.cancel_scope)
        usage = usages if any(usage is not None for usage in usages) else None
        if not failures:
            return dataclasses.replace(
                attempts.ended(StepStatus.SUCCEEDED, None, outputs), usage=usage
            )
        index, failed = failures[0]
        ended = attempts.ended(failed.status, failed.error)
        return dataclasses.replace(ended, item=index, usage=usage)

    async def _chained(
        self,
        call: StepCall,
        engine: EngineRunner[Any],
        kwargs: dict[str, Any],
        first: bool,
        bare: bool,
    ) -> Any:
        """One attempt on an engine that takes dependents ahead: the task submitted
        ahead for a first attempt, if there is one, else a new one; with its
        dependents submitted ahead of it."""
        step_id = call.step.id
        pending = self.ahead.take(step_id) if first else None
        if pending is None:
            pending = engine.begin(call, kwargs)
        self.ahead.began(step_id, engine, pending)
        # Cancelled, the tasks submitted ahead of it are dropped before its own task is
        # cancelled: cancelling a Dask task that a dependent still wants does nothing,
        # and one that runs on and ends would start them.
        dropping = functools.partial(self.ahead.failed, step_id)
        wait = functools.partial(engine.wait, pending, dropping)
        try:
            output = await (wait() if bare else self._bounded(call, None, wait))
        except BaseException:
            self.ahead.failed(step_id)
            raise
        self.ahead.succeeded(step_id)
        return output

    async def _bounded(
        self, call: StepCall, item: int | None, run: Callable[[], Awaitable[Any]]
    ) -> Any:
        """One attempt (``run``) under the run's concurrency cap and the step's timeout."""
        timeout = call.step.timeout
        async with self.slots or nullcontext():
            if timeout is None:
                return await run()
            with anyio.move_on_after(timeout):
                return await run()
        what = f"step {call.step.id!r}" if item is None else f"item {item} of step {call.step.id!r}"
        raise StepTimeoutError(
            f"{what} did not finish within its timeout of {timeout:g} s; "
            f"{self.runner.cancelled_how(call)}",
            step_id=call.step.id,
            timeout=timeout,
        )


def _drop_tracebacks(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and the exceptions chained to it. A step's
    error from another process went through this process's runner machinery only (what
    its worker raised is text in its cause): those frames, and the frames that called
    them, hold the attempt's engine task, and a Dask future keeps its task and the tasks
    it depends on on the cluster for as long as anything holds it."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        chained = chain.pop()
        if chained is not None and id(chained) not in seen:
            seen.add(id(chained))
            chained.__traceback__ = None
            chain += (chained.__cause__, chained.__context__)
