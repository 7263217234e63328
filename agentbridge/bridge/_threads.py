"""Worker threads: offloading blocking code, and finding the loop that spawned a thread."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from _thread import get_ident
from collections.abc import Callable
from contextvars import ContextVar
from types import FunctionType
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from anyio.lowlevel import RunVar

from .._exceptions import AsyncCallableError
from ._loops import (
    HostLoop,
    anyio_worker_host,
    is_cancellation,
    running_library,
    thread_safe_scheduler,
    trio_worker_host,
)

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

__all__ = ("HostLoop", "check_cancelled", "to_thread")

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")

#: How many worker threads, each blocked waiting for the task it started, stand between
#: the current task and the top of its loop. ``to_thread`` picks its token pool by it.
reentry_depth: ContextVar[int] = ContextVar("agentbridge_reentry_depth", default=0)

# One token pool per nesting level, per event loop (see to_thread).
_nested_limiters: RunVar[dict[int, CapacityLimiter]] = RunVar("agentbridge_nested_limiters")


async def to_thread(
    fn: Callable[[Unpack[PosArgsT]], T],
    *args: Unpack[PosArgsT],
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> T:
    """Run the blocking function ``fn(*args)`` in a worker thread and return its result.

    The caller's context variables are visible in the worker thread. Inside it,
    :func:`~agentbridge.run_sync` (and every sync entry point built on it) runs
    coroutines back on *this* event loop, and :func:`check_cancelled` reports this
    task's cancellation.

    Without ``limiter``, top-level calls share anyio's default thread limiter (40
    threads). Code that reached this loop from a worker thread which is now blocked
    waiting for it draws from a separate pool for its nesting level, so a full pool of
    waiting threads can never starve the work they wait on.

    Whatever ``fn`` raises is raised here, with its traceback.

    Every way of cancelling the caller counts, anyio's cancel scopes and trio's as well
    as asyncio's own (``task.cancel()``, ``asyncio.timeout``, ``asyncio.wait_for``): the
    worker's :func:`check_cancelled` raises, and coroutines it sent back with
    :func:`~agentbridge.run_sync` are cancelled. On asyncio's own cancellation the
    caller then raises :exc:`asyncio.CancelledError` once ``fn`` has returned (at once
    with ``abandon_on_cancel``), or ``fn``'s exception if it raised one.

    :param fn: a blocking callable; pass keyword arguments with :func:`functools.partial`
    :param limiter: the capacity limiter to borrow a thread token from
    :param abandon_on_cancel: if ``True``, a cancelled caller stops waiting at once and
        the thread is left to finish on its own; if ``False`` (default), cancellation
        waits for ``fn`` to return
    :return: whatever ``fn`` returns
    :raises AsyncCallableError: if ``fn`` is a coroutine function (or a partial of one,
        or an object with an ``async def __call__``): await it directly instead

    .. versionadded:: 0.1
    """
    if is_async_callable(fn, generators=False):
        raise AsyncCallableError(async_callable_message("to_thread", fn))
    if limiter is None:
        depth = reentry_depth.get()
        if depth:
            limiter = _limiter_for_depth(depth)
    if running_library() == "trio":
        # trio has one kind of cancellation, its scopes', which anyio's helper honours.
        return await anyio.to_thread.run_sync(
            fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel
        )
    # On asyncio, anyio waits for the thread inside a shielded cancel scope, which holds
    # off only anyio's cancellation: a native task.cancel() goes through it, and the
    # caller resumed at once while fn ran on unseen. So the call runs inside a cancel
    # scope of ours, which anyio takes as the worker's scope: when a native cancellation
    # comes out, cancelling that scope makes the worker's check_cancelled raise and
    # cancels the coroutines it sent back; then, unless told to abandon the thread, the
    # caller waits for fn before passing the cancellation on. (Waiting in a child task
    # instead would cost half an offload again.)
    job = _Job(fn, args)
    with CancelScope() as scope:
        try:
            return await anyio.to_thread.run_sync(
                job.run, limiter=limiter, abandon_on_cancel=abandon_on_cancel
            )
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            # Cancelled while the scope is active, or it would reach nothing. The scope
            # then lets the exception through: it swallows only anyio's cancellations.
            scope.cancel()
            if not abandon_on_cancel:
                await job.wait_unless_unstarted()
            raise
    raise AssertionError("unreachable: the scope is cancelled only by the handler above")


class _Job:
    """``fn(*args)`` in a worker thread, and whether a cancelled caller must wait for it.

    Lock-free, as it runs for every offload: ``list.pop`` is atomic, so exactly one of
    the worker (starting ``fn``) and a cancelled caller (dropping a job not yet started)
    takes the start token; then the worker marks itself done before it looks for a
    waiter, and the caller sets its waiter before it looks at done, so at least one of
    them sees the other.
    """

    __slots__ = ("_args", "_done", "_fn", "_start", "_wake")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._start = [True]
        self._done = False
        self._wake: Callable[[], object] | None = None  # set once a cancelled caller waits

    def run(self) -> Any:
        try:
            self._start.pop()
        except IndexError:
            return None  # its caller was cancelled before it started: never run it
        try:
            return self._fn(*self._args)
        finally:
            self._done = True
            wake = self._wake
            if wake is not None:
                try:
                    wake()
                except RuntimeError:  # the loop has stopped: nobody is waiting any more
                    pass

    async def wait_unless_unstarted(self) -> None:
        """Wait until ``fn`` has returned, if it started; through any cancellation."""
        try:
            self._start.pop()
        except IndexError:
            pass  # it started
        else:
            return  # dropped: it will never start
        done = anyio.Event()
        self._wake = functools.partial(thread_safe_scheduler(), done.set)
        if self._done:
            return
        with CancelScope(shield=True):  # anyio's cancellation; asyncio's is looped over
            while not done.is_set():
                try:
                    await done.wait()
                except BaseException as exc:
                    if not is_cancellation(exc):
                        raise


def is_async_callable(fn: object, *, generators: bool = True) -> bool:
    """Whether ``fn`` is known to be async without calling it.

    A coroutine function, a partial of one, or an object with an ``async def
    __call__`` (the runtime's notion of an async step); with ``generators``, an async
    generator function too. Whatever a blocking callable *returns* is not looked at:
    the runtime awaits an awaitable that a sync step returns.
    """
    if inspect.iscoroutinefunction(fn) or (generators and inspect.isasyncgenfunction(fn)):
        return True
    # An object with an async __call__; a plain function's own __call__ never is, and
    # it is what almost every offload gets, so it is spared the second look.
    return type(fn) is not FunctionType and inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def async_callable_message(where: str, fn: object) -> str:
    """The message of :class:`AsyncCallableError` for ``where()`` given ``fn``."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__qualname__", None) or repr(target)
    kind = "an async generator function" if inspect.isasyncgenfunction(fn) else "async"
    fix = "iterate it with `async for` directly" if kind != "async" else "await it directly"
    return (
        f"{where}() runs blocking functions in a worker thread, but {name} is {kind}: "
        f"{fix}, in the calling task, instead"
    )


def _limiter_for_depth(depth: int) -> CapacityLimiter:
    try:
        limiters = _nested_limiters.get()
    except LookupError:
        limiters = {}
        _nested_limiters.set(limiters)
    limiter = limiters.get(depth)
    if limiter is None:
        total = anyio.to_thread.current_default_thread_limiter().total_tokens
        limiter = limiters[depth] = CapacityLimiter(total)
    return limiter


def check_cancelled() -> None:
    """Raise the awaiting task's cancellation inside a worker thread, if it was cancelled.

    Call it now and then from long blocking code started with :func:`to_thread`,
    :func:`anyio.to_thread.run_sync` or :func:`trio.to_thread.run_sync`, so that a
    cancelled caller does not wait for the whole computation. Outside such a worker
    thread there is no awaiting task, and this returns without doing anything.

    If the awaiting task was cancelled, this raises the backend's cancellation
    exception (:exc:`asyncio.CancelledError` or :exc:`trio.Cancelled`).

    .. versionadded:: 0.1
    """
    if anyio_worker_host() is None:
        trio_worker_host()


class _ThreadRole(threading.local):
    # A class attribute is what every thread sees until it sets its own: reading it
    # raises nothing, where getattr(local, name, default) raises and catches an
    # AttributeError inside (about 1 us, on every call from a worker thread).
    #: What this thread was last found to be: ``"plain"``, neither kind of worker (a
    #: thread never becomes one later); ``"trio"``, a trio worker (ask trio first, as
    #: anyio's check would raise); ``""``, not known or an anyio worker.
    kind = ""


_role = _ThreadRole()


def host_loop_of_current_thread() -> HostLoop | None:
    """Return how to reach the loop whose worker thread this is, or ``None``.

    Only the loops' public APIs are consulted: anyio's ``check_cancelled`` (which
    knows anyio worker threads, and so Starlette's threadpool) and trio's (which knows
    ``trio.to_thread.run_sync`` threads). A thread found to be neither is remembered,
    since a thread that was not spawned by a loop never becomes one of its workers;
    a trio worker is remembered as such, so its next call asks trio first, and no
    check raises on the way.
    If the host task has been cancelled, its cancellation is raised here.
    """
    kind = _role.kind
    if kind == "plain":
        return None
    # The main thread is never a loop's worker, but it can look like one: a child forked
    # in a worker thread runs on in that thread, made its main thread, with the
    # thread-locals that said it was a worker and no loop behind them. So it is asked
    # first, before anything reads those thread-locals.
    if get_ident() == _main_ident:
        host = None
    elif kind == "":
        host = anyio_worker_host() or trio_worker_host()
    else:  # a trio worker last time: anyio's check would raise and catch inside
        host = trio_worker_host() or anyio_worker_host()
    if host is None:
        _role.kind = "plain"
    elif kind == "" and host.run is not anyio.from_thread.run:  # trio's own worker
        _role.kind = "trio"
    return host


#: The main thread's ident, kept up to date across fork (the forking thread becomes the
#: child's main thread): threading.main_thread().ident costs two Python calls, on every
#: call from a worker thread.
_main_ident = threading.main_thread().ident


def _main_thread_after_fork() -> None:
    global _main_ident
    _main_ident = threading.get_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_main_thread_after_fork)
