"""``run_sync``: run a coroutine to completion where :func:`~._route.route` says.

A call on a portal (rules 1 and 3) is a :class:`~._calls.Call` handed to the portal's
loop, waited for with its timeout, the cancel grace and Ctrl-C in mind; a call from a
worker thread (rule 2) goes back to its host loop, one nesting level deeper.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable
from inspect import CO_COROUTINE
from types import CoroutineType, FunctionType, MethodType
from typing import Any, TypeVar, overload

from .._exceptions import BridgeTimeoutError, BridgeUsageError, NotAwaitableError, PortalClosedError
from ._affinity import affinity_error
from ._calls import Call, close_awaitable, interpreter_exit
from ._inflight import report_stall
from ._loops import is_cancellation, running_library
from ._portals import BorrowedLoop, PortalHost, PortalManager
from ._route import DEFAULT_OPTIONS, CallOptions, route
from ._settings import (
    Policy,
    blocking_wait,
    current_defaults,
    resolve_cancel_grace,
    resolve_timeout,
)
from ._threads import HostLoop, reentry_depth

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
    **unexpected: Any,
) -> Any:
    """Run the coroutine function ``fn(*args)`` to completion and return its result.

    Works from any synchronous code: a script, any thread, a worker thread spawned by
    an event loop (the coroutine then runs on that loop), and even a thread whose own
    loop is running (the coroutine then runs on another thread while this one waits).
    See :doc:`/routing` for the rules.

    ``fn`` may also be an awaitable passed alone: ``run_sync(client.get(url))``.
    Keyword arguments are not forwarded to ``fn`` (the bridge's own options are
    keywords, and would shadow ``fn``'s): pass them with :func:`functools.partial`.

    :param fn: a coroutine function, or an awaitable
    :param args: positional arguments for ``fn``
    :param timeout: seconds before the coroutine is cancelled (default from
        :func:`~agentbridge.configure` or ``AGENTBRIDGE_SYNC_TIMEOUT``; none if unset);
        ``math.inf`` for no deadline, whatever the default
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
    :raises BridgeUsageError: for a keyword argument that is not one of the above
    :raises BridgeTimeoutError: if ``timeout`` expired (the coroutine was cancelled)
    :raises BlockingCallError: if a loop is running here and the policy is ``"raise"``
    :raises ConfigurationError: for an invalid option or environment variable
    :raises KeyboardInterrupt: on Ctrl-C, after the coroutine was cancelled and given
        the cancel grace period to clean up

    .. versionadded:: 0.1
    """
    if unexpected:
        _close_if_coroutine(fn)
        raise BridgeUsageError(_unexpected_keywords_message(fn, unexpected))
    try:
        if (
            timeout is None
            and backend is None
            and backend_options is None
            and on_running_loop is None
            and manager is None
        ):
            return run_with(DEFAULT_OPTIONS, fn, args)  # the common case: no keyword call
        options = CallOptions.of(
            timeout=timeout,
            backend=backend,
            backend_options=backend_options,
            on_running_loop=on_running_loop,
            manager=manager,
        )
        return run_with(options, fn, args)
    except BaseException:
        # Invalid options, or a Ctrl-C on entry to run_with, before its own try: then
        # a coroutine passed in was never started. (One run_with handed over has been
        # run, cancelled or closed by now.)
        if inspect.iscoroutine(fn):
            _close_unstarted(fn)
        raise


def run_with(options: CallOptions, fn: Any, args: tuple[Any, ...]) -> Any:
    """:func:`run_sync` with its options already checked and frozen."""
    # One try covers the whole hand-off, so that a Ctrl-C landing anywhere in it is
    # turned into a cancellation. Python delivers a signal only on entry to a function
    # or after a call into C returns, so the state the handler reads (host, call,
    # call.target) is always stored before the next point where one can land.
    host: PortalHost | None = None
    call: Call[Any] | None = None
    try:
        defaults = current_defaults()
        timeout = options.timeout
        limit = defaults.timeout if timeout is None else resolve_timeout(timeout, defaults)
        where = route(options, defaults, fn)
        if not isinstance(where, PortalHost):
            if limit is None and (
                (type(fn) is FunctionType and fn.__code__.co_flags & CO_COROUTINE)
                or _only_makes_a_coroutine(fn)
            ):
                # The hot path of a server's threadpool: a coroutine function back to
                # the worker's host loop, which calls it, as from_thread.run(fn) does.
                depth = reentry_depth.set(reentry_depth.get() + 1)  # see _run_on_host_loop
                try:
                    return where.run_async(fn, args, None)
                finally:
                    reentry_depth.reset(depth)
            return _run_on_host_loop(where, _awaitable_of(fn, args), limit)
        host = where
        call = Call(None, limit)
        _bind(call, fn, args)
        host.submit(call)
        return _wait_for(host, call, limit, defaults.stall_warning)
    except BaseException as exc:
        if call is None or (call.target is None and not call.started):
            # Nothing was handed over: an awaitable passed in is ours to close.
            _close_if_coroutine(fn)
        elif isinstance(exc, KeyboardInterrupt):
            assert host is not None
            _cancel_and_wait(host, call)
        if host is not None and call is not None:
            _raise_named(exc, host)
        if isinstance(exc, PortalClosedError) and _exiting_off_the_main_thread():
            # A daemon thread at interpreter exit, whether its call was waiting or
            # new: raising would only print a traceback from a thread the interpreter
            # is about to freeze. Stay parked, quietly.
            threading.Event().wait()
        raise


def _raise_named(exc: BaseException, host: PortalHost) -> None:
    """Raise what ``exc``, the outcome of a call on ``host``, means, if it means more."""
    if isinstance(host, BorrowedLoop) and is_cancellation(exc):
        # Nobody else holds the call's task: the loop cancelled it as it shut down.
        raise PortalClosedError(
            f"the event loop of {host.name!r} cancelled the call: it is shutting down"
        ) from exc
    named = affinity_error(exc, host.name)
    if named is not None:
        raise named


def _exiting_off_the_main_thread() -> bool:
    return interpreter_exit.in_progress and threading.get_ident() != threading.main_thread().ident


def _bind(call: Call[Any], fn: Any, args: tuple[Any, ...]) -> None:
    """Give ``call`` what it runs; a coroutine function is only called in the loop.

    Calling one runs none of its code, and deferring the call leaves no coroutine in
    this thread for a Ctrl-C to orphan (a C callable such as ``functools.partial``
    returns through a point where Python delivers signals).
    """
    if _only_makes_a_coroutine(fn):
        call.args = args
        call.target = fn
    else:
        call.target = _awaitable_of(fn, args)


def _only_makes_a_coroutine(fn: Any) -> bool:
    """Whether ``fn`` is (a partial of) an ``async def`` function or bound method."""
    while type(fn) is functools.partial:
        fn = fn.func
    if type(fn) is MethodType:
        fn = fn.__func__
    return type(fn) is FunctionType and bool(fn.__code__.co_flags & CO_COROUTINE)


def _close_if_coroutine(fn: object) -> None:
    """Close a coroutine the call refused, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(fn):
        fn.close()


def _unexpected_keywords_message(fn: object, unexpected: dict[str, Any]) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    keywords = ", ".join(f"{key}=" for key in unexpected)
    first = next(iter(unexpected))
    return (
        f"run_sync() got keyword arguments it does not take: {keywords}. It passes only "
        f"positional arguments to {name}: its own options (timeout=, backend=, ...) are "
        f"keywords too, and would shadow {name}'s. Bind them with functools.partial: "
        f"run_sync(functools.partial({name}, {first}=...), *args)"
    )


def _awaitable_of(fn: Any, args: tuple[Any, ...]) -> Awaitable[Any]:
    if not callable(fn):
        return _awaitable_alone(fn, args)
    result = fn(*args)
    _check_result(fn, result)
    return result  # type: ignore[no-any-return]


def _awaitable_alone(fn: Any, args: tuple[Any, ...]) -> Awaitable[Any]:
    if inspect.isawaitable(fn):
        if not args:
            return fn
        close_awaitable(fn)
        raise NotAwaitableError(
            f"run_sync() got the awaitable {fn!r} and positional arguments too: an "
            f"awaitable is already called and takes none. Pass the coroutine "
            f"function and its arguments, run_sync(fn, *args), or the awaitable "
            f"alone, run_sync(fn(*args))"
        )
    if inspect.isasyncgen(fn):
        raise NotAwaitableError(
            f"run_sync() got the async generator {fn.__qualname__}(), which is "
            f"iterated, not awaited; iterate it with agentbridge.iterate_sync(...)"
        )
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


def _run_on_host_loop(host_loop: HostLoop, awaitable: Awaitable[T], limit: float | None) -> T:
    # One nesting level deeper (see to_thread): from_thread.run runs the task in a copy
    # of this thread's context, so the depth is set here, around the call, rather than
    # by a wrapper coroutine on the loop (an extra frame and object per call).
    depth = reentry_depth.set(reentry_depth.get() + 1)
    try:
        if limit is None:
            # No deadline to enforce: the host loop's own cancel scopes already reach the
            # task (from_thread.run attaches it to the worker's scope), and Ctrl-C never
            # lands in a worker thread, so a Call and its cancel scope would be dead weight.
            # (The same holds for the hot path in run_with, which has no awaitable.)
            result: T = host_loop.run(_given, awaitable)
            return result
        call: Call[T] = Call(awaitable, limit)
        try:
            result = host_loop.run(call.execute)
        except BaseException:
            call.fail(concurrent.futures.CancelledError())
            raise
        return result
    except BaseException:
        _close_unstarted(awaitable)
        raise
    finally:
        reentry_depth.reset(depth)


def _given(awaitable: Awaitable[T]) -> Awaitable[T]:
    """``awaitable`` itself: what the host loop awaits, without a wrapper coroutine."""
    return awaitable


def _close_unstarted(awaitable: Awaitable[Any]) -> None:
    if not inspect.iscoroutine(awaitable) or (
        inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED
    ):
        close_awaitable(awaitable)


def _wait_for(host: PortalHost, call: Call[T], limit: float | None, stall: float | None) -> T:
    """The outcome of a submitted ``call``, waiting at most its timeout plus the grace,
    and logging a stall warning once if it waits longer than ``stall`` seconds."""
    future = call.future
    wait = None if limit is None else limit + resolve_cancel_grace()
    if stall is not None and (wait is None or stall < wait):
        try:
            return future.result(stall)
        except concurrent.futures.TimeoutError:  # not the built-in one before 3.11
            if future.done():
                raise
        report_stall(host, call)
        wait = None if wait is None else wait - stall
    if wait is None:
        return future.result()
    try:
        return future.result(blocking_wait(wait))
    except concurrent.futures.TimeoutError:
        if future.done():
            raise
    assert limit is not None, "only a call with a deadline stops waiting"
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
        concurrent.futures.wait([call.future], timeout=blocking_wait(resolve_cancel_grace()))
    except KeyboardInterrupt:
        pass  # a second Ctrl-C stops waiting for cleanup
