"""The entry points: :class:`Runtime`, :class:`Executor`, :func:`run_workflow` and
:func:`run_workflow_async`.

The runtime is async at heart. Every sync entry point is one
:func:`agentbridge.run_sync` call around its async twin, so it behaves the same in
every host the bridge supports. A run given its own ``timeout=`` enforces it itself
and tells the bridge "no deadline" (``timeout=math.inf``), so the bridge's default
timeout never cuts it short; a run without one is bounded by that default, like any
other blocking call. One run, one loop: all async steps of a run execute
on the loop that drives it (the caller's for the async API, the bridge's for the sync
API), so steps can share loop-bound clients.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import (
    Problem,
    StepFailedError,
    WorkflowValidationError,
)
from ..bridge import BackendSpec, iterate_sync, run_sync, sync_context
from ..workflow import (
    LoadLimits,
    Registry,
    Workflow,
    check_allow_imports,
    check_registry,
    resolve_retry_on,
    resolve_targets,
)
from ._driver import execute
from ._events import Event
from ._options import RunOptions
from ._plan import Plan
from ._results import RunStatus, WorkflowResult
from ._routes import RoutedRunner, check_runners, route_steps
from ._runner import LocalRunner, StepRunner

__all__ = ("Executor", "Runtime", "WorkflowLike", "run_workflow", "run_workflow_async")

#: What the entry points accept as a workflow: a :class:`~agentbridge.Workflow`, a
#: mapping shaped like a workflow file, or the path of a YAML file.
WorkflowLike = Workflow | Mapping[str, Any] | str | os.PathLike[str]


def load_workflow(workflow: object, limits: LoadLimits | None = None) -> Workflow:
    """``workflow`` as a :class:`Workflow`, read or built (within ``limits``) if needed."""
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, Mapping):
        return Workflow.from_dict(workflow, limits=limits)
    if isinstance(workflow, str) and "\n" in workflow:
        raise WorkflowValidationError(
            [
                Problem(
                    "a str workflow is the path of a YAML file, and this looks like YAML "
                    "text; build it with agentbridge.Workflow.from_yaml_string(text)"
                )
            ]
        )
    if isinstance(workflow, str | os.PathLike):
        return Workflow.from_yaml(workflow, limits=limits)
    raise WorkflowValidationError(
        [
            Problem(
                f"a workflow must be an agentbridge.Workflow, a mapping or the path of a "
                f"YAML file, got {type(workflow).__name__}"
            )
        ]
    )


class Executor:
    """One workflow bound to the callables of its steps, ready to run many times.

    Building it loads the workflow (if given as a mapping or path) and resolves every
    step through ``registry``, so a bad name fails here, before anything runs.

    :param workflow: a :class:`~agentbridge.Workflow`, a mapping or a YAML file path
    :param registry: where step names resolve (default: the default registry)
    :param backend: the bridge backend for the sync API when a portal is used:
        ``"asyncio"``, ``"trio"`` or ``"uvloop"`` (default from the bridge settings);
        checked here
    :param max_threads: worker threads one run may use for sync steps at once
        (default: the bridge's thread pool rules; see :func:`agentbridge.to_thread`)
    :param max_concurrency: steps of one run that may execute at once (default: no
        limit beyond the dependencies)
    :param allow_imports: module prefixes whose ``"module:attr"`` paths steps may name
    :param fail_fast: stop the run at the first failing step (default); if false,
        branches that do not depend on a failed step run to the end
    :param limits: the most a workflow file or mapping may hold when it is loaded
        here (default: :class:`~agentbridge.LoadLimits` ())
    :param runners: runners by the names steps give in ``runner:``, such as
        ``{"cpu": ab.ProcessRunner(max_workers=4)}``; ``thread`` and ``process`` are
        built in (see :class:`~agentbridge.ProcessRunner`). The caller owns them:
        closing them is the caller's job.
    :raises WorkflowValidationError: if the workflow is invalid, a name does not
        resolve, a step names an unknown runner or one that cannot run it
    :raises ConfigurationError: for an invalid option

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        workflow: WorkflowLike,
        registry: Registry | None = None,
        *,
        backend: str | None = None,
        max_threads: int | None = None,
        max_concurrency: int | None = None,
        allow_imports: Iterable[str] = (),
        fail_fast: bool = True,
        limits: LoadLimits | None = None,
        runners: Mapping[str, StepRunner] | None = None,
    ) -> None:
        self._backend = _check_backend(backend)
        checked = check_runners(runners)
        self._options = RunOptions(
            max_threads=max_threads, max_concurrency=max_concurrency, fail_fast=fail_fast
        )
        self._workflow = load_workflow(workflow, limits)
        targets = resolve_targets(self._workflow, registry, allow_imports)
        retry_on = resolve_retry_on(self._workflow, registry, allow_imports)
        self._plan = Plan(self._workflow, targets, retry_on)
        self._routes = route_steps(self._plan, checked)

    @property
    def workflow(self) -> Workflow:
        """The workflow this executor runs."""
        return self._workflow

    def run(
        self, inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the workflow from synchronous code, in any host, and return its result.

        :param inputs: values for the workflow's declared inputs
        :param timeout: seconds before the whole run is cancelled; without it, the
            bridge's default timeout (:func:`agentbridge.configure`,
            ``AGENTBRIDGE_SYNC_TIMEOUT``) bounds the call, if one is set
        :raises StepFailedError: if a step failed (the step's exception is the cause)
        :raises WorkflowTimeoutError: if ``timeout`` expired
        :raises BridgeTimeoutError: if ``timeout`` was not given and the bridge's default
            timeout expired
        :raises WorkflowValidationError: for missing or unknown inputs; nothing ran
        :raises KeyboardInterrupt: on Ctrl-C, after the running steps were cancelled
        """
        options = self._options.with_timeout(timeout)
        run = functools.partial(self._run_bound, self._plan.bind_inputs(inputs), options)
        return run_sync(run, backend=self._backend, timeout=_bridge_timeout(options.timeout))

    async def run_async(
        self, inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the workflow on the calling task's loop (asyncio or trio).

        Takes the arguments and raises the exceptions of :meth:`run`; cancelling the
        caller cancels every running step.
        """
        return await self._run_bound(
            self._plan.bind_inputs(inputs), self._options.with_timeout(timeout)
        )

    def stream(
        self, inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> AsyncIterator[Event]:
        """Run the workflow on the calling task's loop, yielding its events as they happen.

        The last event is :class:`~agentbridge.RunFinished`, whose result says how the
        run ended: a stream does not raise for a failed step. Stopping early cancels
        the run; close the stream when you do (``contextlib.aclosing``).

        :raises WorkflowValidationError: for missing or unknown inputs, before any event
        """
        return self._stream(self._plan.bind_inputs(inputs), self._options.with_timeout(timeout))

    def stream_sync(
        self, inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Iterator[Event]:
        """The events of a run, from synchronous code, through the bridge.

        Works in every host, like :meth:`run`. Stopping early cancels the run; close
        the iterator when you do (``contextlib.closing``). Without ``timeout``, the
        bridge's default timeout, if set, bounds the wait for each event.

        :raises WorkflowValidationError: for missing or unknown inputs, before any event
        """
        return self._stream_sync(
            self._plan.bind_inputs(inputs), self._options.with_timeout(timeout)
        )

    async def _run_bound(self, values: dict[str, Any], options: RunOptions) -> WorkflowResult:
        result = await execute(self._plan, values, options, runner=self._runner(options))
        if result.status is RunStatus.SUCCEEDED:
            return result
        error = result.error
        failed = next((step for step in result.steps.values() if step.error is error), None)
        if failed is None:
            assert error is not None
            raise error
        target = self._plan.calls[failed.step_id].step.target_name
        how = failed.status.value.replace("_", " ")
        if failed.attempts:
            how += f" after {failed.attempts} attempt{'s' if failed.attempts != 1 else ''}"
        else:
            how += " before its first attempt"
        raise StepFailedError(
            f"step {failed.step_id!r} ({failed.kind} {target}) {how}: "
            f"{type(error).__name__}: {error}",
            step_id=failed.step_id,
            result=result,
        ) from error

    # A consumer that stops early closes the generator, raising GeneratorExit at the
    # yield. Returning there leaves the event channel normally, which cancels the run;
    # letting an exception into the channel's task group would wrap it in a group, so
    # the sync stream also carries errors of the bridge out of the channel first.

    async def _stream(self, values: dict[str, Any], options: RunOptions) -> AsyncIterator[Event]:
        async with self._events(values, options) as events:
            async for event in events:
                try:
                    yield event
                except GeneratorExit:
                    return

    def _stream_sync(self, values: dict[str, Any], options: RunOptions) -> Iterator[Event]:
        with (
            sync_context(self._events(values, options), backend=self._backend) as events,
            iterate_sync(
                events, backend=self._backend, timeout=_bridge_timeout(options.timeout)
            ) as items,
        ):
            while True:
                try:
                    event = next(items)
                except StopIteration:
                    return
                except BaseException as exc:  # e.g. BridgeTimeoutError, KeyboardInterrupt
                    failure = exc
                    break
                try:
                    yield event
                except GeneratorExit:
                    return
        raise failure

    @asynccontextmanager
    async def _events(
        self, values: dict[str, Any], options: RunOptions
    ) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        send, receive = anyio.create_memory_object_stream[Event](math.inf)
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._feed, send, values, options)
            try:
                with receive:
                    yield receive
            finally:
                task_group.cancel_scope.cancel()

    async def _feed(
        self, send: MemoryObjectSendStream[Event], values: dict[str, Any], options: RunOptions
    ) -> None:
        def emit(event: Event) -> None:
            try:
                send.send_nowait(event)
            except anyio.BrokenResourceError:
                pass  # the consumer stopped listening; the run is being cancelled

        with send:
            await execute(self._plan, values, options, emit=emit, runner=self._runner(options))

    def _runner(self, options: RunOptions) -> StepRunner | None:
        """The run's runner, made on its loop: ``None`` (the driver's default) unless
        some step names a runner of its own."""
        if not self._routes:
            return None
        return RoutedRunner(LocalRunner(options.max_threads), self._routes)


class Runtime:
    """Reusable configuration for running many workflows.

    Takes the options of :class:`Executor`; each call builds an executor for the
    workflow it is given.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        backend: str | None = None,
        max_threads: int | None = None,
        max_concurrency: int | None = None,
        allow_imports: Iterable[str] = (),
        fail_fast: bool = True,
        limits: LoadLimits | None = None,
        runners: Mapping[str, StepRunner] | None = None,
    ) -> None:
        self._registry = check_registry(registry)
        self._allow_imports = check_allow_imports(allow_imports)
        RunOptions(max_threads=max_threads, max_concurrency=max_concurrency, fail_fast=fail_fast)
        self._options: dict[str, Any] = {
            "backend": _check_backend(backend),
            "max_threads": max_threads,
            "max_concurrency": max_concurrency,
            "allow_imports": self._allow_imports,
            "fail_fast": fail_fast,
            "limits": limits,
            "runners": check_runners(runners),
        }

    @property
    def registry(self) -> Registry:
        """The registry step names resolve through."""
        return self._registry

    def executor(self, workflow: WorkflowLike) -> Executor:
        """An :class:`Executor` for ``workflow`` with this runtime's options."""
        return Executor(workflow, self._registry, **self._options)

    def validate(self, workflow: WorkflowLike) -> Workflow:
        """Load ``workflow`` and check every name resolves, without running anything.

        :raises WorkflowValidationError: listing every problem
        """
        return self.executor(workflow).workflow

    def run(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` from synchronous code; see :meth:`Executor.run`."""
        return self.executor(workflow).run(inputs, timeout=timeout)

    async def run_async(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` on the calling task's loop; see :meth:`Executor.run_async`."""
        return await self.executor(workflow).run_async(inputs, timeout=timeout)

    def stream(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[Event]:
        """The events of a run, as an async iterator; see :meth:`Executor.stream`."""
        return self.executor(workflow).stream(inputs, timeout=timeout)

    def stream_sync(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[Event]:
        """The events of a run, from sync code; see :meth:`Executor.stream_sync`."""
        return self.executor(workflow).stream_sync(inputs, timeout=timeout)


def run_workflow(
    workflow: WorkflowLike,
    inputs: Mapping[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    backend: str | None = None,
    timeout: float | None = None,
    allow_imports: Iterable[str] = (),
    runners: Mapping[str, StepRunner] | None = None,
) -> WorkflowResult:
    """Run a workflow from synchronous code, in any host, and return its result.

    Works from a script, any thread, a worker thread of a running loop (the run goes
    back to that loop), a FastAPI route, a notebook cell and a trio program. Takes
    the options of :class:`Executor`.

    :raises StepFailedError: if a step failed (the step's exception is the cause)
    :raises WorkflowTimeoutError: if ``timeout`` expired
    :raises WorkflowValidationError: if the workflow or the inputs are invalid

    .. versionadded:: 0.1
    """
    executor = Executor(
        workflow, registry, backend=backend, allow_imports=allow_imports, runners=runners
    )
    return executor.run(inputs, timeout=timeout)


async def run_workflow_async(
    workflow: WorkflowLike,
    inputs: Mapping[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    timeout: float | None = None,
    allow_imports: Iterable[str] = (),
    runners: Mapping[str, StepRunner] | None = None,
) -> WorkflowResult:
    """Run a workflow on the calling task's loop, asyncio or trio.

    Takes the arguments and raises the exceptions of :func:`run_workflow`.

    .. versionadded:: 0.1
    """
    executor = Executor(workflow, registry, allow_imports=allow_imports, runners=runners)
    return await executor.run_async(inputs, timeout=timeout)


def _check_backend(backend: str | None) -> str | None:
    if backend is not None:
        BackendSpec.named(backend)  # raises ConfigurationError for a bad name, now
    return backend


def _bridge_timeout(run_timeout: float | None) -> float | None:
    """What the bridge's timeout is for a run: none if the run enforces its own (the
    two would otherwise race under one name), else the bridge's default."""
    return None if run_timeout is None else math.inf
