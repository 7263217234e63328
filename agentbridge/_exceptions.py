"""The exception hierarchy of agentbridge.

Every error agentbridge raises on purpose derives from :class:`AgentBridgeError`,
and most also derive from the built-in type a caller would already catch::

    AgentBridgeError
    ├── ConfigurationError (ValueError)         bad backend name, option or variable
    ├── BridgeError                             a sync/async crossing went wrong
    │   ├── NotAwaitableError (TypeError)       an async slot got something not async
    │   ├── AsyncCallableError (TypeError)      a blocking slot got an async callable
    │   ├── BridgeUsageError (TypeError)        an argument the bridge does not take
    │   ├── AlreadyEnteredError (RuntimeError)  a sync_context() entered twice
    │   ├── BlockingCallError (RuntimeError)    a blocking call was refused in a loop
    │   ├── BridgeTimeoutError (TimeoutError)
    │   ├── PortalClosedError (RuntimeError)    the portal stopped before the call ended
    │   └── LoopAffinityError (RuntimeError)    an object of another event loop was used
    └── WorkflowError
        ├── WorkflowValidationError (ValueError)  the workflow or its inputs are invalid
        ├── ExpressionError (ValueError)          a ${...} expression is malformed or misses
        ├── StepFailedError                       a step failed; the cause is its error
        ├── StepTimeoutError (TimeoutError)       a step did not finish within its timeout
        ├── WorkflowTimeoutError (TimeoutError)   the whole run did not finish in time
        ├── RunnerError (RuntimeError)            a step runner could not run an attempt
        │   └── WorkerCrashedError                its worker process died mid-step
        └── StoreError                            a run store could not be read or written
            ├── StoreBusyError                    another process held the store too long
            ├── RunOwnershipError                 another process owns the run
            └── ResumeError (ValueError)          the run cannot be resumed as asked

Cancellation and :exc:`KeyboardInterrupt` are never wrapped: they cross the bridge
as themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = (
    "AgentBridgeError",
    "AlreadyEnteredError",
    "AsyncCallableError",
    "BlockingCallError",
    "BlockingCallWarning",
    "BridgeError",
    "BridgeTimeoutError",
    "BridgeUsageError",
    "ConfigurationError",
    "ExpressionError",
    "LoopAffinityError",
    "NotAwaitableError",
    "PortalClosedError",
    "Problem",
    "ResumeError",
    "RunOwnershipError",
    "RunnerError",
    "StepFailedError",
    "StepTimeoutError",
    "StoreBusyError",
    "StoreError",
    "WorkerCrashedError",
    "WorkflowError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
)


class PartialResult(Protocol):
    """What a failed or timed-out run had done: a :class:`~agentbridge.WorkflowResult`.

    Typed by its shape so that this module, which every layer imports, imports none of
    them: the exceptions of a run carry the runtime's result without depending on it.
    """

    @property
    def workflow(self) -> str:
        """The workflow's name."""

    @property
    def run_id(self) -> str:
        """The run's id."""

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs produced before the run ended."""

    @property
    def steps(self) -> Mapping[str, Any]:
        """Every step's :class:`~agentbridge.StepResult`, by step id."""

    @property
    def error(self) -> BaseException | None:
        """What ended the run."""

    @property
    def succeeded(self) -> bool:
        """Whether every step succeeded (never, for a result carried by an exception)."""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable data."""


class AgentBridgeError(Exception):
    """Base class of every exception agentbridge raises on purpose.

    .. versionadded:: 0.1
    """


class ConfigurationError(AgentBridgeError, ValueError):
    """A backend name, backend option, policy or environment variable is invalid.

    The message names the offending value, where it came from (argument or
    environment variable) and the values that would be accepted.

    .. versionadded:: 0.1
    """


class BridgeError(AgentBridgeError):
    """Base class of errors raised while crossing between sync and async code.

    .. versionadded:: 0.1
    """


class NotAwaitableError(BridgeError, TypeError):
    """An entry point that runs async code was given something that is not async.

    :func:`agentbridge.run_sync` given a plain function or an async generator,
    :func:`agentbridge.iterate_sync` given a regular iterable,
    :func:`agentbridge.sync_context` given a regular context manager. The message names
    the object and the entry point to use instead.

    .. versionadded:: 0.1
    """


class AsyncCallableError(BridgeError, TypeError):
    """An entry point that runs blocking code was given an async callable.

    The mirror of :class:`NotAwaitableError`: :func:`agentbridge.to_thread` or
    :func:`agentbridge.asyncify` given a coroutine function, a partial of one or an
    object with an ``async def __call__``. Awaiting it directly is the fix; the
    message names the callable.

    .. versionadded:: 0.1
    """


class BridgeUsageError(BridgeError, TypeError):
    """A bridge function was called with an argument it does not take.

    For example a keyword argument meant for the function that
    :func:`agentbridge.run_sync` runs: the bridge's own options are keyword arguments
    too, so the message names the keyword and :func:`functools.partial`.

    .. versionadded:: 0.1
    """


class AlreadyEnteredError(BridgeError, RuntimeError):
    """A :func:`agentbridge.sync_context` object was entered a second time.

    Each one wraps a single use of its async context manager: make a new one.

    .. versionadded:: 0.1
    """


class BlockingCallError(BridgeError, RuntimeError):
    """A blocking bridge call was made from a thread whose event loop is running,
    and the ``on_running_loop`` policy is ``"raise"``.

    .. versionadded:: 0.1
    """


class BlockingCallWarning(RuntimeWarning):
    """Emitted when a blocking bridge call is made from a thread whose event loop is
    running and the ``on_running_loop`` policy is ``"warn"``.

    The call still completes (on another thread), but it blocks the caller's event
    loop for its whole duration.

    .. versionadded:: 0.1
    """


class BridgeTimeoutError(BridgeError, TimeoutError):
    """A bridged call did not finish within its ``timeout``.

    The coroutine was cancelled (its ``finally`` blocks and ``async with`` exits ran)
    before this was raised, unless :attr:`abandoned` is true, in which case the
    coroutine ignored the cancellation for longer than the grace period and was left
    running.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, timeout: float, abandoned: bool = False) -> None:
        super().__init__(message)
        #: The timeout, in seconds, that expired.
        self.timeout = timeout
        #: True if the coroutine did not finish its cleanup within the grace period.
        self.abandoned = abandoned


class PortalClosedError(BridgeError, RuntimeError):
    """The portal running a call was closed before the call finished.

    .. versionadded:: 0.1
    """


class LoopAffinityError(BridgeError, RuntimeError):
    """A call used an object bound to another event loop (asyncio's "attached to a
    different loop", "is bound to a different event loop", "Event loop is closed").

    Raised in place of the original error, whose type it also derives from when that is
    not :exc:`RuntimeError` (a class made on the fly, cached per type), so existing
    handlers still catch it; the original is its ``__cause__``. The message names the
    portal the call ran on and the three fixes: a shared portal
    (:func:`~agentbridge.open_portal`), the process portal scope, and
    :func:`~agentbridge.loop_local`.

    .. versionadded:: 0.3
    """


class WorkflowError(AgentBridgeError):
    """Base class of errors raised by the workflow runtime.

    .. versionadded:: 0.1
    """


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow, as listed by :class:`WorkflowValidationError`.

    .. versionadded:: 0.1
    """

    #: What is wrong, and how to fix it.
    message: str
    #: The id of the step it concerns, if any.
    step_id: str | None = None
    #: The line of the workflow file it comes from, if the workflow was read from YAML.
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.step_id is not None:
            where.append(f"step {self.step_id!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class WorkflowValidationError(WorkflowError, ValueError):
    """A workflow, or the inputs of a run, is invalid; nothing was run.

    Every problem found is listed at once, in :attr:`problems`, each with the step id
    and file line it concerns.

    .. versionadded:: 0.1
    """

    def __init__(self, problems: Iterable[Problem], *, source: str | None = None) -> None:
        #: Every problem found, in the order of the workflow.
        self.problems: tuple[Problem, ...] = tuple(problems)
        #: Where the workflow came from: a file path, ``"<string>"``, or ``None``.
        self.source = source
        origin = f" in {source}" if source else ""
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''}{origin}:"
        super().__init__("\n  ".join([header, *map(str, self.problems)]))


class ExpressionError(WorkflowError, ValueError):
    """A ``${...}`` expression is malformed, or names a field or index that is not there.

    A malformed expression is reported by :class:`WorkflowValidationError` when the
    workflow is built; one that misses at run time makes its step fail with this as
    the cause.

    .. versionadded:: 0.1
    """


class StepFailedError(WorkflowError):
    """A step of a workflow failed, so the run failed.

    The step's own exception is the ``__cause__``; :attr:`result` holds what the run
    had done by then.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, step_id: str, result: PartialResult) -> None:
        super().__init__(message)
        #: The id of the step that failed first.
        self.step_id = step_id
        #: The partial result of the run: every step's status, output and error.
        self.result = result


class StepTimeoutError(WorkflowError, TimeoutError):
    """A step did not finish within its ``timeout``.

    An async step was cancelled; a sync step cannot be interrupted, so its worker
    thread was abandoned and finishes on its own.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, step_id: str, timeout: float) -> None:
        super().__init__(message)
        #: The id of the step.
        self.step_id = step_id
        #: The step's timeout, in seconds.
        self.timeout = timeout


class WorkflowTimeoutError(WorkflowError, TimeoutError):
    """A whole run did not finish within the ``timeout`` given to it; it was cancelled.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, timeout: float, result: PartialResult) -> None:
        super().__init__(message)
        #: The run's timeout, in seconds.
        self.timeout = timeout
        #: The partial result: steps still running when time ran out are ``cancelled``.
        self.result = result


class RunnerError(WorkflowError, RuntimeError):
    """A step runner could not execute an attempt, or bring its outcome back: e.g. a
    step's inputs, output or exception that cannot be pickled across to or from a
    worker process, or a runner that was closed.

    The attempt fails with it (and is retried if the step has retries left); a
    traceback from the worker is its ``__cause__``, as text.

    .. versionadded:: 0.2
    """


class WorkerCrashedError(RunnerError):
    """The worker process running an attempt died before it finished (``os._exit``, a
    signal, running out of memory). The runner replaces its pool of workers, so later
    attempts and runs can use it.

    .. versionadded:: 0.2
    """


class StoreError(WorkflowError):
    """A run store could not be read or written: its file is corrupt, locked or from a
    newer agentbridge, or a value in it is not what agentbridge writes there.

    The message names the store and the fix. Nothing read from a store is ever turned
    into an object: at worst a tampered store gives this error.

    .. versionadded:: 0.3
    """


class StoreBusyError(StoreError):
    """A run store stayed locked by another process's transaction for longer than the
    store waits (its ``busy_timeout``). Nothing was written; trying again later may
    succeed. A durable run whose write meets it keeps its batch and tries again while
    its lease lasts, and raises it only then.

    .. versionadded:: 0.3
    """


class RunOwnershipError(StoreError):
    """Another process owns the run (its lease has not expired), or this process lost
    the run's lease while it ran, so it stopped and wrote nothing more.

    .. versionadded:: 0.3
    """


class ResumeError(StoreError, ValueError):
    """A run cannot be resumed as asked: no run has that id, or the workflow or the
    inputs changed so that its stored results mean nothing for this run. The message
    says what changed; use a new run id to start over.

    .. versionadded:: 0.3
    """
