"""Portal handles: one chosen event loop, reachable from every thread.

A :class:`Portal` sends calls to one loop, whatever thread makes them, with everything
:func:`~agentbridge.run_sync` guarantees (the same :class:`~._calls.Call` path: a timeout
that cancels, Ctrl-C, tracebacks, context variables, no ``BaseException`` taking the loop
down). Two kinds:

* :func:`open_portal`: a loop in a daemon thread of its own, shared by every thread,
  closed by :meth:`Portal.close` (or ``with``), at interpreter exit, and reopened in a
  fork child, like the per-thread portals;
* :func:`current_portal`: the loop running the calling coroutine, so that threads it
  did not start as workers (``asyncio.to_thread``, ``run_in_executor``, threads of its
  own) can run coroutines on it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from anyio.lowlevel import RunVar

from .._exceptions import AsyncCallableError, BridgeUsageError, PortalClosedError
from ._adapters import (
    SyncContextManager,
    SyncIterator,
    blocking_wrapper,
    context_with,
    iterate_with,
)
from ._loops import running_library
from ._portals import BorrowedLoop, PortalHost, PortalManager, current_pid, get_portal_manager
from ._route import CallOptions
from ._routing import run_with
from ._settings import BackendSpec, blocking_wait, resolve_backend, resolve_cancel_grace
from ._threads import async_callable_message, is_async_callable

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

__all__ = ("Portal", "current_portal", "open_portal", "run_in_loop")

T = TypeVar("T")
P = ParamSpec("P")
PosArgsT = TypeVarTuple("PosArgsT")


class Portal:
    """A handle on one event loop that every thread can run coroutines on.

    Get one with :func:`open_portal` (a loop of its own, shared) or
    :func:`current_portal` (the loop running your coroutine). Its methods are those of
    the bridge's module functions, with the same guarantees, sent to this loop:
    :meth:`run_sync`, :meth:`iterate_sync`, :meth:`sync_context`, :meth:`syncify`, and
    :meth:`run_in_loop` for a plain function that must run in the loop's thread.

    Calling a method from the loop's own thread raises
    :class:`~agentbridge.BlockingCallError` (the call would wait for itself); once the
    loop has ended, or the portal is closed, calls raise
    :class:`~agentbridge.PortalClosedError`.

    .. versionadded:: 0.3
    """

    __slots__ = ("_closed", "_host", "_lock", "_manager", "_name", "_options", "_pid", "_spec")

    def __init__(
        self, host: PortalHost, *, manager: PortalManager | None = None, name: str = ""
    ) -> None:
        # Made by open_portal() (with the manager that reopens it after a fork) and by
        # current_portal(); not meant to be called directly.
        self._host = host
        self._spec = host.spec
        self._manager = manager
        self._name = name
        self._pid = current_pid()
        self._closed = False
        self._lock = threading.Lock()
        self._options = CallOptions(portal=self)

    @property
    def name(self) -> str:
        """The name of the thread the loop runs in."""
        return self._host.name

    @property
    def backend(self) -> str:
        """The loop's backend: ``"asyncio"``, ``"uvloop"`` or ``"trio"``."""
        return str(self._spec)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called, or the borrowed loop has ended."""
        return self._closed or (self._manager is None and not self._host.alive)

    def host(self) -> PortalHost:
        """The host calls run on (reopened in a fork child, or after the manager closed
        it); what the router asks.

        :raises PortalClosedError: if the portal was closed, or its borrowed loop was
            inherited through :func:`os.fork`
        """
        host = self._host
        if self._closed:
            raise PortalClosedError(f"the portal {host.name!r} was closed")
        if self._pid == current_pid() and host.alive:
            return host
        if self._manager is None:
            if self._pid != current_pid():
                raise PortalClosedError(
                    f"the loop of {host.name!r} runs in the parent process; a forked child "
                    f"cannot reach it: take a new handle with current_portal() there"
                )
            return host  # ended: submitting fails with PortalClosedError
        with self._lock:
            if self._pid != current_pid() or not self._host.alive:
                self._host = self._manager.open_shared(self._spec, self._host.name)
                self._pid = current_pid()
            return self._host

    @overload
    def run_sync(
        self,
        fn: Callable[[Unpack[PosArgsT]], Awaitable[T]],
        /,
        *args: Unpack[PosArgsT],
        timeout: float | None = None,
    ) -> T: ...

    @overload
    def run_sync(self, fn: Awaitable[T], /, *, timeout: float | None = None) -> T: ...

    def run_sync(  # type: ignore[misc]  # mypy cannot match *args to a TypeVarTuple overload
        self, fn: Any, /, *args: Any, timeout: float | None = None
    ) -> Any:
        """Run ``fn(*args)`` (or the awaitable ``fn``) on this portal's loop; return its
        result. The semantics of :func:`~agentbridge.run_sync`, on this loop.

        :param timeout: seconds before the coroutine is cancelled (default from
            :func:`~agentbridge.configure`); ``math.inf`` for no deadline
        :raises BlockingCallError: if called from the loop's own thread
        :raises PortalClosedError: if the portal is closed or its loop has ended
        :raises BridgeTimeoutError: if ``timeout`` expired (the coroutine was cancelled)
        """
        options = self._options if timeout is None else CallOptions.of(timeout=timeout, portal=self)
        return run_with(options, fn, args)

    def run_in_loop(self, fn: Callable[[Unpack[PosArgsT]], T], /, *args: Unpack[PosArgsT]) -> T:
        """Run the plain function ``fn(*args)`` in the loop's thread and return its result:
        for code that must touch state the loop owns (its tasks, a loop-bound object's
        sync methods). Whatever ``fn`` raises is raised here.

        :raises AsyncCallableError: if ``fn`` is async (use :meth:`run_sync`)
        :raises BlockingCallError: if called from the loop's own thread
        """
        return run_with(self._options, in_loop_thread, (_plain("run_in_loop", fn), *args))  # type: ignore[no-any-return]

    def iterate_sync(
        self, iterable: AsyncIterable[T], *, timeout: float | None = None
    ) -> SyncIterator[T]:
        """Iterate over an async iterable on this loop; see :func:`~agentbridge.iterate_sync`."""
        options = self._options if timeout is None else CallOptions.of(timeout=timeout, portal=self)
        return iterate_with(iterable, options)

    def sync_context(self, cm: AbstractAsyncContextManager[T]) -> SyncContextManager[T]:
        """Use an async context manager on this loop; see :func:`~agentbridge.sync_context`."""
        return context_with(cm, self._options)

    @overload
    def syncify(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, T]: ...

    @overload
    def syncify(
        self, *, timeout: float | None = None
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, T]]: ...

    def syncify(  # type: ignore[misc]  # mypy does not bind P and T through self here
        self, fn: Callable[P, Awaitable[T]] | None = None, /, *, timeout: float | None = None
    ) -> Callable[P, T] | Callable[[Callable[P, Awaitable[T]]], Callable[P, T]]:
        """Turn a coroutine function into a blocking one whose calls run on this loop;
        see :func:`~agentbridge.syncify`."""
        options = self._options if timeout is None else CallOptions.of(timeout=timeout, portal=self)

        def decorate(async_fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
            return blocking_wrapper("syncify", async_fn, lambda bound: run_with(options, bound, ()))

        return decorate if fn is None else decorate(fn)

    def close(self, timeout: float | None = None) -> None:
        """Close the portal: later calls raise :class:`~agentbridge.PortalClosedError`.

        A portal of :func:`open_portal` cancels its running calls and stops its loop,
        waiting at most ``timeout`` seconds (default: the cancel grace) for the thread.
        A handle of :func:`current_portal` only stops taking calls: the loop is its
        owner's. Closing twice does nothing.
        """
        if self._closed:
            return
        self._closed = True
        host = self._host
        host.request_stop()
        if self._manager is not None and host.loop_ident != threading.get_ident():
            host.ended.wait(blocking_wait(resolve_cancel_grace() if timeout is None else timeout))

    def __enter__(self) -> Portal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<agentbridge.Portal {self.name!r} {self.backend} {state}>"


async def in_loop_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, called in the loop thread: a call of :func:`run_in_loop` as a
    coroutine function, so it takes the bridge's one call path."""
    return fn(*args)


def _plain(where: str, fn: Callable[..., T]) -> Callable[..., T]:
    if is_async_callable(fn):
        raise AsyncCallableError(
            async_callable_message(where, fn).replace("in a worker thread", "in the loop thread")
        )
    return fn


def run_in_loop(
    fn: Callable[[Unpack[PosArgsT]], T],
    /,
    *args: Unpack[PosArgsT],
    backend: str | None = None,
    manager: PortalManager | None = None,
) -> T:
    """Run the plain function ``fn(*args)`` in the thread of the loop that
    :func:`~agentbridge.run_sync` would use from here, and return its result.

    The counterpart of :func:`anyio.from_thread.run_sync`: in a worker thread
    (``ab.to_thread``, ``anyio.to_thread``, ``trio.to_thread``) that is its host loop's
    thread, so ``fn`` may touch state the loop owns; in a plain thread, its portal's.
    Whatever ``fn`` raises is raised here. For a chosen loop, use
    :meth:`Portal.run_in_loop`.

    :raises AsyncCallableError: if ``fn`` is async (use :func:`~agentbridge.run_sync`)

    .. versionadded:: 0.3
    """
    options = CallOptions.of(backend=backend, manager=manager)
    return run_with(options, in_loop_thread, (_plain("run_in_loop", fn), *args))  # type: ignore[no-any-return]


def open_portal(
    backend: str | None = None,
    *,
    name: str = "shared",
    backend_options: dict[str, Any] | None = None,
    manager: PortalManager | None = None,
) -> Portal:
    """Open a portal every thread can use: an event loop in a daemon thread of its own.

    Use it to share one loop-bound object (an ``httpx.AsyncClient``, an MCP session)
    across the threads of a pool or a WSGI server::

        portal = ab.open_portal(name="http")
        client = portal.run_sync(make_client)
        ...  # in any thread:
        portal.run_sync(client.get, url)

    Every call from every thread waits its turn on this one loop, so one slow call can
    delay the others' hand-offs, never their concurrency (the loop runs them together).
    The portal is closed by :meth:`Portal.close` or a ``with`` block, with its
    manager's portals (:meth:`PortalManager.close`), and at interpreter exit; a forked
    child, or a call after its manager closed it, opens it again, empty.

    :param backend: ``"asyncio"``, ``"trio"`` or ``"uvloop"`` (default from
        :func:`~agentbridge.configure` or ``AGENTBRIDGE_BACKEND``)
    :param name: what it serves; its thread is named ``agentbridge-portal-<backend>-<name>``
    :param backend_options: options for :func:`anyio.run`
    :param manager: the manager that closes it (default: the process-wide one)
    :raises ConfigurationError: for an unknown backend

    .. versionadded:: 0.3
    """
    if not isinstance(name, str) or not name:
        raise BridgeUsageError(f"open_portal(name=...) must be a non-empty string, got {name!r}")
    spec = resolve_backend(backend, backend_options)
    manager = manager or get_portal_manager()
    host = manager.open_shared(spec, f"agentbridge-portal-{spec}-{name}")
    return Portal(host, manager=manager, name=name)


_current: RunVar[Portal] = RunVar("agentbridge_current_portal")


def current_portal() -> Portal:
    """A handle on the event loop running the calling coroutine, for other threads.

    Call it in async code (asyncio, uvloop or trio), then hand the result to threads
    that were not started as this loop's workers (``asyncio.to_thread``,
    ``loop.run_in_executor``, a ``threading.Thread``): their ``portal.run_sync(...)``
    calls run on this loop, so they can use the objects made here, such as a FastAPI
    lifespan's client. (Workers of ``ab.to_thread``, ``anyio.to_thread`` and
    ``trio.to_thread`` come back to this loop with plain ``ab.run_sync`` already.)

    The same handle is returned for every call on one loop. A call through it from
    this loop's own thread raises :class:`~agentbridge.BlockingCallError`; once the
    loop has ended, calls raise :class:`~agentbridge.PortalClosedError`.

    :raises BridgeUsageError: if no asyncio or trio loop runs in this thread

    .. versionadded:: 0.3
    """
    library = running_library()
    if library is None:
        raise BridgeUsageError(
            "current_portal() takes a handle on the event loop running the caller, and "
            "none runs in this thread; call it in async code (an async def function), "
            "or open a portal of your own with ab.open_portal()"
        )
    try:
        portal = _current.get()
    except LookupError:
        portal = Portal(BorrowedLoop(BackendSpec.named(library)))
        _current.set(portal)
    return portal
