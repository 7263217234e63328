"""Worker threads: offloading blocking code, and finding the loop that spawned a thread."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

from ._loops import worker_thread_portal

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

__all__ = ("check_cancelled", "to_thread")

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

    :param fn: a blocking callable; pass keyword arguments with :func:`functools.partial`
    :param limiter: the capacity limiter to borrow a thread token from
    :param abandon_on_cancel: if ``True``, a cancelled caller stops waiting at once and
        the thread is left to finish on its own; if ``False`` (default), cancellation
        waits for ``fn`` to return
    :return: whatever ``fn`` returns

    .. versionadded:: 0.1
    """
    if limiter is None:
        depth = reentry_depth.get()
        if depth:
            limiter = _limiter_for_depth(depth)
    return await anyio.to_thread.run_sync(
        fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel
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
    worker_thread_portal()


class HostLoop:
    """The running loop that spawned the current worker thread, and how to reach it."""

    __slots__ = ("run", "run_sync")

    def __init__(self, run: Callable[..., Any], run_sync: Callable[..., Any]) -> None:
        #: Runs a coroutine function on the host loop and blocks until it returns.
        self.run = run
        #: Runs a plain function in the host loop thread and blocks until it returns.
        self.run_sync = run_sync


_ANYIO_HOST = HostLoop(anyio.from_thread.run, anyio.from_thread.run_sync)
_trio_loop: HostLoop | None = None


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
    portal = worker_thread_portal(trio_first=kind == "trio")
    if portal is None or threading.get_ident() == threading.main_thread().ident:
        # The main thread is never a loop's worker, but it can look like one: a child
        # forked in a worker thread runs on in that thread, made its main thread, with
        # the thread-locals that said it was a worker and no loop behind them.
        _role.kind = "plain"
        return None
    if portal is anyio.from_thread:
        return _ANYIO_HOST
    _role.kind = "trio"
    return _trio_host(portal)


def _trio_host(portal: Any) -> HostLoop:
    global _trio_loop
    if _trio_loop is None:
        _trio_loop = HostLoop(portal.run, portal.run_sync)
    return _trio_loop
