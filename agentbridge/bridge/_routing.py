"""``run_sync``: the three routing rules that decide where a blocking call runs.

1. A thread with no running loop, not spawned by one: the thread's own portal.
2. A worker thread spawned by a running loop: that loop, with no new loop or thread.
3. A thread whose own loop is running: the thread's portal, in another thread, after
   the ``on_running_loop`` policy has allowed it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable
from inspect import CO_COROUTINE
from types import CoroutineType, FunctionType, MethodType
from typing import Any, TypeVar, overload

from .._exceptions import (
    BlockingCallError,
    BlockingCallWarning,
    BridgeTimeoutError,
    NotAwaitableError,
    PortalClosedError,
)
from ._calls import Call, close_awaitable, interpreter_exit
from ._loops import running_library
from ._portals import PortalHost, PortalManager, get_portal_manager
from ._settings import (
    Policy,
    resolve_backend,
    resolve_cancel_grace,
    resolve_policy,
    resolve_timeout,
)
from ._threads import HostLoop, host_loop_of_current_thread, reentry_depth

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

__all__ = ("is_async_context", "run_sync")

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")


def is_async_context() -> bool:
    """Return whether an asyncio or trio event loop is running in the calling thread.

    When this is true, blocking calls made here stop that loop for their duration;
    prefer the async API.

    .. versionadded:: 0.1
    """
    return running_library() is not None


@overload
def run_sync(
    fn: Callable[[Unpack[PosArgsT]], Awaitable[T]],
    /,
    *args: Unpack[PosArgsT],
    timeout: float | None = None,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> T: ...


@overload
def run_sync(
    fn: Awaitable[T],
    /,
    *,
    timeout: float | None = None,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> T: ...


def run_sync(  # type: ignore[misc]  # mypy cannot match *args to a TypeVarTuple overload
    fn: Any,
    /,
    *args: Any,
    timeout: float | None = None,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> Any:
    """Run the coroutine function ``fn(*args)`` to completion and return its result.

    Works from any synchronous code: a script, any thread, a worker thread spawned by
    an event loop (the coroutine then runs on that loop), and even a thread whose own
    loop is running (the coroutine then runs on another thread while this one waits).
    See :doc:`/routing` for the rules.

    ``fn`` may also be an awaitable passed alone: ``run_sync(client.get(url))``.
    Pass keyword arguments with :func:`functools.partial`.

    :param fn: a coroutine function, or an awaitable
    :param args: positional arguments for ``fn``
    :param timeout: seconds before the coroutine is cancelled (default from
        :func:`~agentbridge.configure` or ``AGENTBRIDGE_SYNC_TIMEOUT``; none if unset)
    :param backend: ``"asyncio"``, ``"trio"`` or ``"uvloop"`` for the portal, when one
        is used (default from :func:`~agentbridge.configure` or ``AGENTBRIDGE_BACKEND``);
        a worker thread always goes back to the loop that spawned it, whatever this says
    :param backend_options: options for :func:`anyio.run` when a portal is opened
    :param on_running_loop: what to do in a thread whose loop is running: ``"thread"``
        (run on another thread; the default), ``"warn"`` (the same, plus a
        :class:`~agentbridge.BlockingCallWarning`) or ``"raise"``
    :param manager: the :class:`~agentbridge.PortalManager` to use (default: the
        process-wide one)
    :return: the coroutine's return value
    :raises NotAwaitableError: if ``fn`` is neither a coroutine function nor an awaitable
    :raises BridgeTimeoutError: if ``timeout`` expired (the coroutine was cancelled)
    :raises BlockingCallError: if a loop is running here and the policy is ``"raise"``
    :raises ConfigurationError: for an invalid option or environment variable
    :raises KeyboardInterrupt: on Ctrl-C, after the coroutine was cancelled and given
        the cancel grace period to clean up

    .. versionadded:: 0.1
    """
    # One try covers the whole hand-off, so that a Ctrl-C landing anywhere in it is
    # turned into a cancellation. Python delivers a signal only on entry to a function
    # or after a call into C returns, so the state the handler reads (host, call,
    # call.target) is always stored before the next point where one can land.
    host: PortalHost | None = None
    call: Call[Any] | None = None
    try:
        limit = resolve_timeout(timeout)
        policy = None if on_running_loop is None else resolve_policy(on_running_loop)
        running = running_library()
        if running is not None:
            _apply_policy(policy or resolve_policy(None), running, fn)
        else:
            host_loop = host_loop_of_current_thread()
            if host_loop is not None:
                return _run_on_host_loop(host_loop, _awaitable_of(fn, args), limit)
        spec = resolve_backend(backend, backend_options)
        host = (manager or get_portal_manager()).host(spec)
        call = Call(None, limit)
        _bind(call, fn, args)
        host.submit(call)
        return _wait_for(host, call, limit)
    except BaseException as exc:
        if call is None or (call.target is None and not call.started):
            # Nothing was handed over: an awaitable passed in is ours to close.
            close_awaitable(fn)
        elif isinstance(exc, KeyboardInterrupt):
            assert host is not None
            _cancel_and_wait(host, call)
        if isinstance(exc, PortalClosedError) and _exiting_off_the_main_thread():
            # A daemon thread at interpreter exit, whether its call was waiting or
            # new: raising would only print a traceback from a thread the interpreter
            # is about to freeze. Stay parked, quietly.
            threading.Event().wait()
        raise


def _exiting_off_the_main_thread() -> bool:
    return interpreter_exit.in_progress and threading.get_ident() != threading.main_thread().ident


def _bind(call: Call[Any], fn: Any, args: tuple[Any, ...]) -> None:
    """Give ``call`` what it runs; a coroutine function is only called in the loop.

    Calling one runs none of its code, and deferring the call leaves no coroutine in
    this thread for a Ctrl-C to orphan (a C callable such as ``functools.partial``
    returns through a point where Python delivers signals).
    """
    if not callable(fn):
        call.target = _awaitable_alone(fn, args)
    elif _only_makes_a_coroutine(fn):
        call.args = args
        call.target = fn
    else:
        call.target = fn(*args)
        _check_result(fn, call.target)


def _only_makes_a_coroutine(fn: Any) -> bool:
    """Whether ``fn`` is (a partial of) an ``async def`` function or bound method."""
    while type(fn) is functools.partial:
        fn = fn.func
    if type(fn) is MethodType:
        fn = fn.__func__
    return type(fn) is FunctionType and bool(fn.__code__.co_flags & CO_COROUTINE)


def _awaitable_of(fn: Any, args: tuple[Any, ...]) -> Awaitable[Any]:
    if not callable(fn):
        return _awaitable_alone(fn, args)
    result = fn(*args)
    _check_result(fn, result)
    return result  # type: ignore[no-any-return]


def _awaitable_alone(fn: Any, args: tuple[Any, ...]) -> Awaitable[Any]:
    if not args and inspect.isawaitable(fn):
        return fn
    raise NotAwaitableError(
        f"run_sync() needs a coroutine function or an awaitable, got {fn!r} ({type(fn).__name__})"
    )


def _check_result(fn: Any, result: Any) -> None:
    """Raise :class:`NotAwaitableError` unless ``fn`` returned an awaitable."""
    if type(result) is CoroutineType or inspect.isawaitable(result):
        return
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if inspect.isasyncgen(result):
        result.aclose().close()
        raise NotAwaitableError(
            f"{name} is an async generator function; iterate it with "
            f"agentbridge.iterate_sync({name}(...)) instead of run_sync()"
        )
    raise NotAwaitableError(
        f"run_sync() expected {name} to return an awaitable, but calling it returned "
        f"{type(result).__name__}: {name} is a regular function. Call it directly, or "
        f"from async code offload it with `await agentbridge.to_thread({name}, ...)`"
    )


def _apply_policy(policy: Policy, running: str, fn: object) -> None:
    if policy == "thread":
        return
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    message = (
        f"a blocking run_sync() call was made from a thread whose {running} event loop "
        f"is running, which stops that loop until the call returns; await {name} "
        f"directly (or use the async API, e.g. run_workflow_async) instead"
    )
    if policy == "raise":
        raise BlockingCallError(message + " (this is an error because on_running_loop='raise')")
    warnings.warn(BlockingCallWarning(message), stacklevel=4)


def _run_on_host_loop(host_loop: HostLoop, awaitable: Awaitable[T], limit: float | None) -> T:
    reentered = _Reentry(awaitable)
    try:
        if limit is None:
            # No deadline to enforce: the host loop's own cancel scopes already reach the
            # task (from_thread.run attaches it to the worker's scope), and Ctrl-C never
            # lands in a worker thread, so a Call and its cancel scope would be dead weight.
            result: T = host_loop.run(reentered)
            return result
        call: Call[T] = Call(reentered(), limit)
        try:
            result = host_loop.run(call.execute)
        except BaseException:
            call.fail(concurrent.futures.CancelledError())
            raise
        return result
    except BaseException:
        reentered.close_unstarted()
        raise


class _Reentry:
    """Awaits a coroutine on its host loop one nesting level deeper (see ``to_thread``)."""

    __slots__ = ("_awaitable", "_started")

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self._awaitable = awaitable
        self._started = False

    async def __call__(self) -> Any:
        self._started = True
        reentry_depth.set(reentry_depth.get() + 1)
        return await self._awaitable

    def close_unstarted(self) -> None:
        if not self._started:
            close_awaitable(self._awaitable)


def _wait_for(host: PortalHost, call: Call[T], limit: float | None) -> T:
    """The outcome of a submitted ``call``, waiting at most its timeout plus the grace."""
    future = call.future
    if limit is None:
        return future.result()
    try:
        return future.result(limit + resolve_cancel_grace())
    except concurrent.futures.TimeoutError:  # not the built-in one before 3.11
        if future.done():
            raise
    host.call_soon(call.cancel_in_loop)
    raise BridgeTimeoutError(
        f"the call did not finish within its timeout of {limit:g} s, and it ignored "
        f"cancellation for the whole cancel grace period; it was left running on "
        f"its portal",
        timeout=limit,
        abandoned=True,
    )


def _cancel_and_wait(host: PortalHost, call: Call[Any]) -> None:
    """Cancel ``call``, submitted or not, and give it the grace period to clean up."""
    if call.future.done():
        return
    host.cancel(call)
    try:
        concurrent.futures.wait([call.future], timeout=resolve_cancel_grace())
    except KeyboardInterrupt:
        pass  # a second Ctrl-C stops waiting for cleanup
