"""One bridged call: the coroutine, how to cancel it, its timeout and its result.

A :class:`Call` is created in the calling thread and executed as a task on the target
event loop; the calling thread waits on :attr:`Call.future`. Keeping the call's state
in one object is what lets a caller cancel a call that is already running (Ctrl-C),
and lets a portal fail every call it can no longer run.

Cancellation goes through an anyio cancel scope, never a bare ``Task.cancel()``:
only a scope respects the shielded cleanup (``CancelScope(shield=True)``) that the
coroutine may run in its ``finally`` blocks.
"""

from __future__ import annotations

import concurrent.futures
import inspect
from _thread import get_ident
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, Generic, Literal, TypeVar

from anyio import current_time

from .._exceptions import BridgeTimeoutError, PortalClosedError
from ._loops import is_cancellation, native_cancel_scope

T = TypeVar("T")

_Reason = Literal["cancelled", "timeout", "closed"]


class _Exit:
    #: Set by the atexit hook before it closes the portals. Apart from the main thread
    #: (running later atexit hooks), only daemon threads can still be waiting for a
    #: call then, and the interpreter is about to freeze them.
    in_progress = False


interpreter_exit = _Exit()


class CallCancelled(BaseException):
    """Delivered to a caller whose own cancel request (Ctrl-C) stopped the call."""


class Call(Generic[T]):
    """The state shared by the thread that waits for a call and the loop that runs it."""

    __slots__ = (
        "_cancel",
        "_reason",
        "args",
        "awaiting",
        "caller",
        "future",
        "on_finish",
        "shut_down",
        "since",
        "started",
        "target",
        "task",
        "timeout",
    )

    def __init__(self, awaitable: Awaitable[T] | None, timeout: float | None) -> None:
        #: What the call awaits: an awaitable, or (with :attr:`args`) a coroutine
        #: function that the loop calls. ``None`` until bound, and once run or failed.
        self.target: Any = awaitable
        #: The arguments for a coroutine function :attr:`target`; ``None`` otherwise.
        self.args: tuple[Any, ...] | None = None
        self._cancel: Callable[[], object] | None = None
        self._reason: _Reason | None = None
        self.started = False
        #: Set by the host just before its loop's own cancellation reaches the call.
        self.shut_down = False
        self.timeout = timeout
        #: Called (in the loop thread) when :meth:`run` is done, whatever the outcome.
        self.on_finish: Callable[[Call[T]], object] | None = None
        #: The task running the call on an asyncio portal, held while it runs.
        self.task: Any = None
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        # For the stall warning and dump_calls(): who waits, since when, on what. (C
        # calls with no Python frame: a few tens of ns on every call.)
        self.caller = get_ident()
        self.since = monotonic()
        #: What the call is awaiting, once started: the root of its await stack.
        self.awaiting: object = None

    async def execute(self) -> T:
        """Await the call on the current loop, enforcing its timeout; raise its outcome."""
        # started first: a caller interrupted now must see the call as handed over.
        self.started = True
        target, self.target = self.target, None
        assert target is not None, "a Call runs once"
        if self._reason is not None:
            if self.args is None:
                close_awaitable(target)
            raise self._outcome_exception()
        with native_cancel_scope() as scope:
            self._cancel = scope.cancel
            if self.timeout is not None:
                scope.deadline = current_time() + self.timeout
            try:
                awaitable = target if self.args is None else target(*self.args)
                self.awaiting = awaitable
                result: T = await awaitable
                return result
            finally:
                self._cancel = None
        if self._reason is None:
            self._reason = "timeout"  # the scope's deadline passed
        raise self._outcome_exception()

    async def run(self) -> None:
        """Run :meth:`execute` as a portal task, delivering its outcome to :attr:`future`.

        Nothing the coroutine raises escapes this task (a ``BaseException`` from one call
        must never take the shared portal down), except the portal's own cancellation
        of the task as it shuts down, which is re-raised after the caller has been told.

        A cancellation exception is the shutdown only if the host has set
        :attr:`shut_down` first. Any other is the coroutine's own
        outcome (it awaited a task that someone else cancelled, or raised one itself) and
        reaches the caller like any exception. On trio a ``Cancelled`` can only come
        from a cancel scope: the call's own scope absorbs its own, so one that reaches
        here unmarked was caught and re-raised by the coroutine.
        """
        # The bookkeeping of on_finish runs before the caller is told: once woken, the
        # caller needs the GIL this thread holds, so work done after the outcome is
        # delivered lands on the caller's critical path.
        try:
            result = await self.execute()
        except BaseException as exc:
            if self.on_finish is not None:
                self.on_finish(self)
            if self.shut_down and is_cancellation(exc):
                self.fail(PortalClosedError("the portal was closed while the call was running"))
                raise
            self._deliver_exception(exc)
        else:
            if self.on_finish is not None:
                self.on_finish(self)
            if not self.future.done():
                self.future.set_result(result)

    def cancel_in_loop(self, reason: _Reason = "cancelled") -> None:
        """Cancel the call for ``reason``; call it in the loop thread that runs it."""
        if self._reason is None:
            self._reason = reason
        if self._cancel is not None:
            self._cancel()

    def fail(self, exc: BaseException) -> None:
        """Complete the call with ``exc`` unless it already has an outcome."""
        target, self.target = self.target, None
        if target is not None and self.args is None:
            close_awaitable(target)
        self._deliver_exception(exc)

    def _outcome_exception(self) -> BaseException:
        if self._reason == "timeout":
            assert self.timeout is not None
            return BridgeTimeoutError(
                f"the call did not finish within its timeout of {self.timeout:g} s and "
                f"was cancelled; raise the timeout= argument (or AGENTBRIDGE_SYNC_TIMEOUT) "
                f"if it needs longer",
                timeout=self.timeout,
            )
        if self._reason == "closed":
            return PortalClosedError("the portal was closed while the call was running")
        return CallCancelled()

    def _deliver_exception(self, exc: BaseException) -> None:
        if not self.future.done():
            try:
                self.future.set_exception(exc)
            except concurrent.futures.InvalidStateError:  # pragma: no cover - lost race
                pass


def close_awaitable(awaitable: object) -> None:
    """Close an awaitable that will never run, so Python does not warn it was never awaited.

    Anything else is left alone: a ``close`` method of a non-awaitable belongs to its owner.
    """
    if inspect.isawaitable(awaitable):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
