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
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import (
    ConfigurationError,
    Problem,
    ResumeError,
    StepFailedError,
    StoreError,
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
from . import _json
from ._driver import execute
from ._events import Event, RunFinished, RunStarted, StepFinished
from ._journal import Journal, check_run_id
from ._options import RunOptions
from ._plan import Plan
from ._results import RunStatus, WorkflowResult
from ._routes import RoutedRunner, check_runners, route_steps
from ._runner import LocalRunner, StepRunner
from ._store import RunStore

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
    :param store: where runs are recorded as they go, such as
        ``ab.SqliteRunStore("runs.db")``, so a run given an existing ``run_id``
        resumes (see :doc:`/durable-runs`); the caller owns it
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
        store: RunStore | None = None,
    ) -> None:
        self._backend = _check_backend(backend)
        self._store = check_store(store)
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
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> WorkflowResult:
        """Run the workflow from synchronous code, in any host, and return its result.

        :param inputs: values for the workflow's declared inputs
        :param timeout: seconds before the whole run is cancelled; without it, the
            bridge's default timeout (:func:`agentbridge.configure`,
            ``AGENTBRIDGE_SYNC_TIMEOUT``) bounds the call, if one is set
        :param run_id: the run's id (default: a new ``uuid4`` hex string). With a
            store, an id already stored resumes that run: only the steps that need it
            run again (see :doc:`/durable-runs`)
        :raises StepFailedError: if a step failed (the step's exception is the cause)
        :raises WorkflowTimeoutError: if ``timeout`` expired
        :raises BridgeTimeoutError: if ``timeout`` was not given and the bridge's default
            timeout expired
        :raises WorkflowValidationError: for missing or unknown inputs; nothing ran
        :raises StoreError: if the store failed; :class:`~agentbridge.ResumeError` if
            the stored run has another workflow or inputs,
            :class:`~agentbridge.RunOwnershipError` if another process runs it
        :raises KeyboardInterrupt: on Ctrl-C, after the running steps were cancelled
        """
        options = self._options.with_timeout(timeout)
        run = functools.partial(self._run_bound, self._plan.bind_inputs(inputs), options, run_id)
        return run_sync(run, backend=self._backend, timeout=_bridge_timeout(options.timeout))

    async def run_async(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> WorkflowResult:
        """Run the workflow on the calling task's loop (asyncio or trio).

        Takes the arguments and raises the exceptions of :meth:`run`; cancelling the
        caller cancels every running step.
        """
        return await self._run_bound(
            self._plan.bind_inputs(inputs), self._options.with_timeout(timeout), run_id
        )

    def stream(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """Run the workflow on the calling task's loop, yielding its events as they happen.

        The last event is :class:`~agentbridge.RunFinished`, whose result says how the
        run ended: a stream does not raise for a failed step. An error that ends the
        stream (the store failed, a setting broke) is raised as itself, never wrapped
        in an exception group. Stopping early cancels the run; close the stream when
        you do (``contextlib.aclosing``).

        :raises WorkflowValidationError: for missing or unknown inputs, before any event
        """
        return self._stream(
            self._plan.bind_inputs(inputs), self._options.with_timeout(timeout), run_id
        )

    def stream_sync(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> Iterator[Event]:
        """The events of a run, from synchronous code, through the bridge.

        Works in every host, like :meth:`run`, and raises as :meth:`stream` does.
        Stopping early cancels the run; close the iterator when you do
        (``contextlib.closing``). Without ``timeout``, the bridge's default timeout, if
        set, bounds the wait for each event.

        :raises WorkflowValidationError: for missing or unknown inputs, before any event
        """
        return self._stream_sync(
            self._plan.bind_inputs(inputs), self._options.with_timeout(timeout), run_id
        )

    async def _open(self, values: dict[str, Any], run_id: str | None) -> Journal | None:
        """The run's journal if this executor has a store (the run claimed in it)."""
        if run_id is not None:
            check_run_id(run_id)
        if self._store is None:
            return None
        workflow = self._workflow
        source = workflow.source
        if source is not None and not source.startswith("<"):
            source = os.path.abspath(source)  # a resume may start in another directory
        return await Journal.open(self._store, run_id or uuid.uuid4().hex, workflow, source, values)

    async def _execute(
        self,
        values: dict[str, Any],
        options: RunOptions,
        run_id: str | None,
        journal: Journal | None,
        emit: Callable[[Event], None] | None = None,
    ) -> WorkflowResult:
        finished = None if journal is None else journal.result
        if finished is None:
            return await execute(
                self._plan,
                values,
                options,
                emit=emit,
                runner=self._runner(options),
                run_id=run_id,
                journal=journal,
            )
        if emit is not None:
            _replay(finished, values, emit)
        return finished

    async def _run_bound(
        self, values: dict[str, Any], options: RunOptions, run_id: str | None
    ) -> WorkflowResult:
        journal = await self._open(values, run_id)
        result = await self._execute(values, options, run_id, journal)
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
    # yield. Returning there leaves the event channel normally, which cancels the run.
    # An exception the channel's task group saw would come out wrapped in a group, so
    # the channel carries every error out of it and raises it alone, as run() would.

    async def _stream(
        self, values: dict[str, Any], options: RunOptions, run_id: str | None
    ) -> AsyncIterator[Event]:
        async with self._events(values, options, run_id) as events:
            async for event in events:
                try:
                    yield event
                except GeneratorExit:
                    return

    def _stream_sync(
        self, values: dict[str, Any], options: RunOptions, run_id: str | None
    ) -> Iterator[Event]:
        with (
            sync_context(self._events(values, options, run_id), backend=self._backend) as events,
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
        self, values: dict[str, Any], options: RunOptions, run_id: str | None
    ) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        journal = await self._open(values, run_id)
        send, receive = anyio.create_memory_object_stream[Event](math.inf)
        failures: list[Exception] = []
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._feed, send, values, options, run_id, journal, failures)
            try:
                with receive:
                    yield receive
            except Exception as exc:  # e.g. a setting the bridge read as the stream closed
                failures.append(exc)
            finally:
                task_group.cancel_scope.cancel()
        if failures:  # raised here, not in the task group, which would wrap it in a group
            raise failures[0]

    async def _feed(
        self,
        send: MemoryObjectSendStream[Event],
        values: dict[str, Any],
        options: RunOptions,
        run_id: str | None,
        journal: Journal | None,
        failures: list[Exception],
    ) -> None:
        def emit(event: Event) -> None:
            try:
                send.send_nowait(event)
            except anyio.BrokenResourceError:
                pass  # the consumer stopped listening; the run is being cancelled

        with send:
            try:
                await self._execute(values, options, run_id, journal, emit)
            except Exception as exc:  # e.g. the lease was lost, or the store failed
                failures.append(exc)

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
        store: RunStore | None = None,
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
            "store": check_store(store),
        }

    @property
    def registry(self) -> Registry:
        """The registry step names resolve through."""
        return self._registry

    @property
    def store(self) -> RunStore | None:
        """The store runs are recorded in, or ``None``.

        .. versionadded:: 0.3
        """
        store: RunStore | None = self._options["store"]
        return store

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
        run_id: str | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` from synchronous code; see :meth:`Executor.run`."""
        return self.executor(workflow).run(inputs, timeout=timeout, run_id=run_id)

    async def run_async(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` on the calling task's loop; see :meth:`Executor.run_async`."""
        return await self.executor(workflow).run_async(inputs, timeout=timeout, run_id=run_id)

    def stream(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """The events of a run, as an async iterator; see :meth:`Executor.stream`."""
        return self.executor(workflow).stream(inputs, timeout=timeout, run_id=run_id)

    def stream_sync(
        self,
        workflow: WorkflowLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> Iterator[Event]:
        """The events of a run, from sync code; see :meth:`Executor.stream_sync`."""
        return self.executor(workflow).stream_sync(inputs, timeout=timeout, run_id=run_id)

    def resume(
        self, run_id: str, workflow: WorkflowLike | None = None, *, timeout: float | None = None
    ) -> WorkflowResult:
        """Resume stored run ``run_id`` from synchronous code, with its stored inputs.

        Only what needs it runs again (see :doc:`/durable-runs`); a run that already
        succeeded returns its stored result and runs nothing.

        :param workflow: the workflow to run; default: the file the run was read from
            (its path is in the store; its step names resolve through this runtime's
            registry, as for any run)
        :raises ResumeError: if the store has no such run, or no file to read it from
        :raises StoreError: and every exception of :meth:`Executor.run`

        .. versionadded:: 0.3
        """
        store = self._needs_store()
        backend = self._options["backend"]
        inputs, source = run_sync(_stored_run, store, run_id, workflow, backend=backend)
        executor = self.executor(source)
        return executor.run(inputs, timeout=timeout, run_id=run_id)

    async def resume_async(
        self, run_id: str, workflow: WorkflowLike | None = None, *, timeout: float | None = None
    ) -> WorkflowResult:
        """Resume stored run ``run_id`` on the calling task's loop; see :meth:`resume`.

        .. versionadded:: 0.3
        """
        inputs, source = await _stored_run(self._needs_store(), run_id, workflow)
        executor = self.executor(source)
        return await executor.run_async(inputs, timeout=timeout, run_id=run_id)

    def _needs_store(self) -> RunStore:
        store = self.store
        if store is None:
            raise ConfigurationError(
                "resume needs a run store: make the runtime with "
                "agentbridge.Runtime(store=agentbridge.SqliteRunStore('runs.db'))"
            )
        return store


async def _stored_run(
    store: RunStore, run_id: str, workflow: WorkflowLike | None
) -> tuple[dict[str, Any], WorkflowLike]:
    """The inputs of stored run ``run_id``, and ``workflow`` or the file it was read
    from.

    :raises ResumeError: if there is no such run
    """
    check_run_id(run_id)
    stored = await store.get_run(run_id)
    if stored is None:
        raise ResumeError(
            f"there is no run {run_id!r} in {store!r}; list the runs with "
            f"`agentbridge runs list --store FILE`"
        )
    try:
        inputs = _json.load(stored.inputs)
    except ValueError:
        inputs = None
    if not isinstance(inputs, dict):
        raise StoreError(
            f"the stored inputs of run {run_id!r} are not a JSON mapping: the store was "
            f"modified outside agentbridge; start a new run"
        )
    if workflow is not None:
        return inputs, workflow
    if stored.source is None or stored.source.startswith("<"):
        raise ResumeError(
            f"run {run_id!r} was not read from a workflow file, so resuming it needs the "
            f"workflow: pass resume({run_id!r}, workflow)"
        )
    return inputs, stored.source


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


def check_store(store: object) -> RunStore | None:
    """``store``, checked to be a :class:`RunStore` or ``None``.

    :raises ConfigurationError: if it is something else
    """
    if store is None or isinstance(store, RunStore):
        return store
    raise ConfigurationError(
        f"store must be a run store such as agentbridge.SqliteRunStore('runs.db'), got "
        f"{type(store).__name__}"
    )


def _replay(
    result: WorkflowResult, inputs: Mapping[str, Any], emit: Callable[[Event], None]
) -> None:
    """The events of a run that had already finished: every step reused."""
    name, run_id = result.workflow, result.run_id
    emit(RunStarted(name, run_id=run_id, inputs=MappingProxyType(dict(inputs))))
    for step in result.steps.values():
        emit(StepFinished(name, run_id=run_id, step_id=step.step_id, kind=step.kind, result=step))
    emit(RunFinished(name, run_id=run_id, result=result))
