"""Step runners: where one attempt of one step is executed, and how it is awaited.

The driver decides when an attempt starts, caps it (``max_concurrency``), times it out
and retries it; a runner only executes it. Today's one, :class:`LocalRunner`, awaits
async callables on the run's loop and runs sync ones in worker threads.
"""

from __future__ import annotations

import abc
import functools
import inspect
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from anyio import CapacityLimiter

from ..bridge import to_thread
from ._plan import StepCall

if TYPE_CHECKING:
    from ._engine import EngineRunner

__all__ = ("LocalRunner", "StepRunner")


class StepRunner(abc.ABC):
    """Executes attempts of steps somewhere, for one run.

    :meth:`run` is awaited in a task of the run: cancelling that task (a timeout, a
    failing sibling, the caller) must make it return at once, after cancelling the
    attempt, or abandoning it where it cannot be interrupted.
    """

    __slots__ = ()

    #: Attempts this runner executes at once away from the loop; the driver keeps no
    #: more than this many of them waiting on it.
    capacity: int

    @abc.abstractmethod
    def on_loop(self, call: StepCall) -> bool:
        """Whether attempts of ``call`` run on the run's loop itself, rather than away
        from it (within :attr:`capacity`)."""

    @abc.abstractmethod
    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Execute one attempt of ``call`` with ``kwargs``; return its output or raise
        its exception."""

    @abc.abstractmethod
    def cancelled_how(self, call: StepCall) -> str:
        """What cancelling an attempt of ``call`` does, for messages: e.g. ``"it was
        cancelled"``."""

    def refuses(self, call: StepCall) -> str | None:
        """Why this runner cannot execute ``call`` (e.g. it cannot be pickled), or
        ``None``; asked when the workflow is validated, before anything runs."""
        return None

    def submits_ahead(self, call: StepCall) -> EngineRunner[Any] | None:
        """The engine runner that executes ``call`` and takes attempts whose inputs are
        other attempts' outputs, still running (see :mod:`._ahead`), or ``None``: this
        runner's attempts start once their inputs are known."""
        return None

    def runs_elsewhere(self, call: StepCall) -> bool:
        """Whether attempts of ``call`` run on workers this runner hands them to (worker
        processes, an engine's workers), their errors' tracebacks from there kept as text
        in their causes. The local frames of such an error are then
        this runner's machinery only, which may hold the engine's tasks: the run drops
        those tracebacks when it ends, so a result kept for its errors keeps nothing
        alive on the engine."""
        return False


class LocalRunner(StepRunner):
    """Async callables awaited on the run's loop; sync ones in worker threads.

    A sync step runs through :func:`agentbridge.to_thread` with
    ``abandon_on_cancel=True`` (a blocking call cannot be interrupted: on cancellation
    the run moves on and the thread finishes on its own), under a limiter of
    ``max_threads`` tokens if given. Without one, the bridge's rules apply, nested
    limiters included, so ``ab.run_sync`` inside a step comes back to this loop and
    nested runs cannot starve each other. Made on the run's loop.

    :param max_threads: worker threads the run may use at once
    """

    __slots__ = ("capacity", "threads")

    def __init__(self, max_threads: int | None = None) -> None:
        self.threads = CapacityLimiter(max_threads) if max_threads else None
        self.capacity = int(
            (self.threads or anyio.to_thread.current_default_thread_limiter()).total_tokens
        )

    def on_loop(self, call: StepCall) -> bool:
        """Whether ``call`` is async."""
        return call.is_async

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Await an async callable here; run a sync one in a worker thread (and await
        what it returns if that is awaitable)."""
        if call.is_async:
            return await call.fn(**kwargs)
        result = await to_thread(
            functools.partial(call.fn, **kwargs), limiter=self.threads, abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            result = await result
        return result

    def cancelled_how(self, call: StepCall) -> str:
        """An async step is cancelled; a sync step's thread is abandoned."""
        return "it was cancelled" if call.is_async else "its thread was abandoned"
