"""What the Dask and Ray runners share: a life cycle started off the loop, and attempts
submitted, awaited and cancelled through an engine's blocking client on any loop.

Both engines' asyncio-style clients fail on trio, so a runner uses the blocking one:
the attempt is submitted from a worker thread (pickling and the engine's bookkeeping
never block the run's loop), its outcome is fetched in a thread of the engine's own
when it is done, and that thread wakes the run's loop through the bridge's thread-safe
scheduler. Cancelling the awaiting task cancels the engine's task too, before the step
is recorded: queued work never starts.
"""

from __future__ import annotations

import abc
import contextvars
import threading
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
from anyio import CancelScope, get_cancelled_exc_class

from .._distribution import install_hint
from .._exceptions import ConfigurationError, RunnerError
from ..bridge._loops import thread_safe_scheduler
from ._plan import StepCall
from ._runner import StepRunner
from ._worker import Unpicklable

__all__ = ("EngineRunner", "RemoteTraceback")

Handle = TypeVar("Handle")

#: The least default capacity of an engine runner.
MIN_CAPACITY = 64

#: What cancelling the current task's last engine attempt did, for its step's result.
_cancelled_how: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentbridge_engine_cancelled_how", default=None
)


class RemoteTraceback(Exception):
    """The traceback of an exception raised on an engine's worker, as text."""

    def __str__(self) -> str:
        return str(self.args[0])


class EngineRunner(StepRunner, Generic[Handle]):
    """A runner on a distributed engine: started once (off the loop), used by many runs
    from any thread and loop, closed by its owner. Subclasses say how to open and shut
    the engine, submit one attempt, learn its outcome and cancel it."""

    __slots__ = ("__weakref__", "_lock", "_state", "capacity", "capacity_hint")

    #: The engine's name, for messages.
    engine: str
    #: The extra that installs it.
    extra: str

    def __init__(self, capacity: int | None) -> None:
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ConfigurationError(
                f"capacity must be a whole number, 1 or more, or None; got {capacity!r}"
            )
        self.capacity_hint = capacity
        #: Attempts a run keeps waiting on the engine at once: the ``capacity`` given,
        #: else four per worker slot the engine had when it started (at least
        #: :data:`MIN_CAPACITY`). More than it has slots: the engine queues them, and
        #: ships the next as soon as a slot frees, without a round trip to the run.
        self.capacity = capacity or 1
        self._lock = threading.Lock()
        self._state = "new"

    def __enter__(self: Any) -> Any:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect to the engine, or start one of the runner's own; blocks until it is
        up (from a loop, call it in a worker thread: ``await
        anyio.to_thread.run_sync(runner.start)``). Starting twice does nothing.

        :raises RunnerError: if the engine cannot be reached or started, or the runner
            was closed
        """
        with self._lock:
            if self._state == "started":
                return
            if self._state == "closed":
                raise RunnerError(f"this {self.engine} runner was closed; make a new one")
            try:
                slots = self._open()
            except ImportError as exc:
                raise RunnerError(
                    f"the {self.engine} runner needs its extra ({exc}): {install_hint(self.extra)}"
                ) from None
            if self.capacity_hint is None:
                self.capacity = max(MIN_CAPACITY, 4 * slots)
            self._state = "started"

    def close(self) -> None:
        """Shut down what :meth:`start` started (a cluster or session of the runner's
        own; a connection only, for an engine it connected to). Attempts running then
        fail; closing twice does nothing."""
        with self._lock:
            started, self._state = self._state == "started", "closed"
            if started:
                self._shutdown()

    def on_loop(self, call: StepCall) -> bool:
        """Never: every attempt runs on the engine."""
        return False

    def refuses(self, call: StepCall) -> str | None:
        """Why ``call`` cannot run on the engine: an agent step, or a callable that
        cannot be pickled (with cloudpickle, as the engine does)."""
        try:
            import cloudpickle
        except ImportError:
            return f"the {self.engine} runner needs its extra: {install_hint(self.extra)}"
        if call.step.kind == "agent":
            return f"an agent step cannot run on a {self.engine} runner; it stays in this process"
        try:
            cloudpickle.dumps(call.fn)
        except Exception as exc:
            return (
                f"its {call.step.kind} {call.step.target_name} cannot be pickled to a "
                f"{self.engine} worker ({type(exc).__name__}: {exc})"
            )
        return None

    def cancelled_how(self, call: StepCall) -> str:
        """What cancelling this task's last attempt of ``call`` did to its engine task."""
        return _cancelled_how.get() or f"its {self.engine} task was cancelled"

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Submit one attempt off the loop, await its outcome without a thread, and
        cancel the engine's task if this is cancelled."""
        key = f"{call.step.id}-{uuid.uuid4().hex}"  # never deduplicated, never cached
        _cancelled_how.set(None)
        woken = anyio.Event()
        schedule = thread_safe_scheduler()
        box: list[tuple[bool, Any]] = []

        def done(finished: object) -> None:
            # In a thread of the engine's: fetching the outcome may block here.
            try:
                box.append((True, self._outcome(call, finished)))
            except BaseException as exc:
                box.append((False, exc))
            try:
                schedule(woken.set)
            except RuntimeError:  # the run's loop has ended: nobody waits any more
                pass

        # Shielded: once submitted, the handle is ours to cancel.
        with CancelScope(shield=True):
            handle = await anyio.to_thread.run_sync(self._submit_checked, call, kwargs, key, done)
        try:
            await woken.wait()
        except get_cancelled_exc_class():
            with CancelScope(shield=True):
                how = await anyio.to_thread.run_sync(self._cancel, handle)
            _cancelled_how.set(how)
            raise
        ok, value = box[0]
        if not ok:
            raise value
        if isinstance(value, Unpicklable):
            raise RunnerError(
                f"step {call.step.id!r} returned a value that cannot be pickled back from "
                f"its {self.engine} worker ({value.why}); return plain data"
            )
        return value.value

    def _submit_checked(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        key: str,
        done: Callable[[object], None],
    ) -> Handle:
        state = self._state
        if state != "started":
            fix = "make a new one" if state == "closed" else "call its start() first"
            raise RunnerError(
                f"step {call.step.id!r}: the {self.engine} runner was "
                f"{'closed' if state == 'closed' else 'never started'}; {fix}"
            )
        try:
            handle = self._submit(call, kwargs, key)
        except RunnerError:
            raise
        except Exception as exc:
            raise RunnerError(
                f"step {call.step.id!r}: {self.engine} could not take the attempt "
                f"({type(exc).__name__}: {exc}); check that its inputs can be pickled and "
                f"the engine is reachable"
            ) from None
        self._when_done(handle, done)
        return handle

    @abc.abstractmethod
    def _open(self) -> int:
        """Connect or start the engine; the worker slots it has."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Undo :meth:`_open`."""

    @abc.abstractmethod
    def _submit(self, call: StepCall, kwargs: dict[str, Any], key: str) -> Handle:
        """Hand one attempt to the engine under the unique ``key``."""

    @abc.abstractmethod
    def _when_done(self, handle: Handle, callback: Callable[[object], None]) -> None:
        """Have the engine call ``callback`` in a thread of its own once ``handle`` is
        done, with what :meth:`_outcome` reads the outcome from."""

    @abc.abstractmethod
    def _outcome(self, call: StepCall, finished: Any) -> Any:
        """The output of a done attempt, or raise its exception as the step's own (or a
        :class:`RunnerError`); may block."""

    @abc.abstractmethod
    def _cancel(self, handle: Handle) -> str:
        """Cancel the attempt on the engine (blocking); what that did, for messages."""
