"""Per-thread portals and their lifecycle.

A *portal host* is a daemon thread running one event loop with an
:class:`anyio.from_thread.BlockingPortal` in it. A :class:`PortalManager` gives each
calling thread its own host per backend, opened on first use and reused after that,
so loop-bound resources (a cached ``httpx.AsyncClient``, an MCP session) keep working
across calls.

Lifecycle rules, and the traps each one avoids:

* Hosts are found through a :class:`threading.local`, never a dict keyed by thread
  ident: idents are reused as soon as a thread exits.
* When the owning thread ends, its thread-local holder is finalised and asks its hosts
  to stop. The request only schedules a callback on the host's loop: it blocks on
  nothing and never calls :func:`threading.current_thread`, which during thread
  teardown would register a phantom ``_DummyThread``.
* At interpreter exit an :mod:`atexit` hook stops every host and joins its thread,
  instead of leaving loops to the garbage collector (which hangs at exit).
* After :func:`os.fork` the child discards everything it inherited: the hosts' threads
  do not exist there, so their portals would never answer.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import os
import sys
import threading
import weakref
from collections.abc import Callable
from contextvars import Context
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

from .._distribution import install_hint
from .._exceptions import ConfigurationError, PortalClosedError
from ._calls import Call, CallCancelled, interpreter_exit
from ._loops import (
    call_context,
    call_tasks,
    on_loop_exit,
    task_starter,
    thread_safe_scheduler,
    thread_safe_waker,
)
from ._settings import BackendSpec, blocking_wait, resolve_backend, resolve_cancel_grace

__all__ = ("BorrowedLoop", "PortalHost", "PortalManager", "get_portal_manager")


class PortalHost:
    """One event loop in its own daemon thread, serving calls for one owner thread (or,
    for a shared portal, for every thread)."""

    def __init__(self, spec: BackendSpec, name: str, on_start: Any, on_exit: Any) -> None:
        self.spec = spec
        #: The loop thread's name, which says what the portal serves.
        self.name = name
        self.alive = False
        self._stop_requested = False
        self.portal: BlockingPortal
        self._schedule: Callable[..., object]  # the loop's own thread-safe call_soon
        self._wake: Callable[[Callable[[], object]], object]  # the same, for the drain
        self._context: Callable[[], Context]  # the context a submitted call runs in
        #: Calls submitted and not yet taken by the loop, with their contexts: one wake-up
        #: of the loop takes every call queued by then (see submit).
        self._queue: collections.deque[tuple[Call[Any], Context]] = collections.deque()
        self._drain_scheduled = False
        self._stop: anyio.Event
        self._stopping = False
        self._pending: set[Call[Any]] = set()  # submitted, not finished
        self._running: set[Call[Any]] = set()  # started as a task
        self._start: Callable[..., Any]
        self._drained: anyio.Event
        self._on_start = on_start
        self._on_exit = on_exit
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        #: Set as the loop thread's last act. Waited on instead of ``Thread.join``, which
        #: calls ``threading.current_thread()`` (a phantom ``_DummyThread`` for a caller
        #: started with ``_thread``).
        self.ended = threading.Event()
        #: The loop thread, made by :meth:`start` (a borrowed loop has none of its own).
        self.thread: threading.Thread | None = None

    @property
    def loop_ident(self) -> int | None:
        """The ident of the thread the loop runs in (``None`` before it starts)."""
        return None if self.thread is None else self.thread.ident

    def in_flight(self) -> list[Call[Any]]:
        """The calls submitted here and not finished yet (a snapshot, from any thread)."""
        return list(self._pending)

    def start(self) -> None:
        """Start the loop thread and wait until its portal accepts calls."""
        kwargs: dict[str, Any] = {}
        if sys.version_info >= (3, 14):  # pragma: no cover - exercised on 3.14 only
            # Free-threaded builds let a new thread inherit the spawner's context; the
            # loop thread must start clean (anyio #1224).
            kwargs["context"] = Context()
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True, **kwargs)
        self.thread.start()
        self._ready.result()

    def submit(self, call: Call[Any]) -> None:
        """Schedule ``call`` on this loop without waiting for it to start (one hop).

        Hand-offs are batched: the call joins a queue, and only a caller that finds no
        drain of the queue scheduled wakes the loop, whose drain then starts every
        call queued by then. Many threads calling one shared portal pay one wake-up per
        batch instead of one per call. The drain clears its flag before it takes the
        first call, and a caller queues its call before it reads the flag, so no call is
        left in the queue without a drain to come (both sides under the GIL).
        """
        self._pending.add(call)
        if not self.alive:
            self._fail_pending()
            return
        self._queue.append((call, self._context()))
        if self._drain_scheduled:
            return
        self._drain_scheduled = True
        try:
            self._wake(self._drain)
        except RuntimeError:  # the loop has finished
            self._fail_pending()
        except BaseException:
            # A Ctrl-C before the drain was scheduled must not leave the flag saying it
            # was, or no later call would ever wake the loop. (One landing after it was
            # scheduled only costs an extra, empty drain later.)
            self._drain_scheduled = False
            raise

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue = self._queue
        while queue:
            call, context = queue.popleft()
            context.run(self._spawn, call)

    def call_soon(self, func: Any, *args: Any) -> bool:
        """Run the plain callable ``func(*args)`` in the loop thread, without waiting.

        Callbacks run in the order they were scheduled, after any call submitted before.

        :return: whether it was scheduled (not if the loop has stopped)
        """
        try:
            self._schedule(func, *args)
        except RuntimeError:  # the loop has finished
            return False
        return True

    def cancel(self, call: Call[Any]) -> None:
        """Cancel ``call`` from any thread, whether or not it was submitted; never blocks.

        Whether the call still has to start is decided in the loop thread, after any
        submission of it (callbacks run in order), so a Ctrl-C that lands anywhere in
        :meth:`submit` neither leaves the call running nor its coroutine un-awaited.
        """
        if not (self.alive and self.call_soon(self._cancel_in_loop, call)):
            call.fail(CallCancelled())  # no loop left to run it

    def _cancel_in_loop(self, call: Call[Any]) -> None:
        if call.on_finish is None:  # not spawned here, and never will be
            self._pending.discard(call)
            call.fail(CallCancelled())
        else:
            call.cancel_in_loop()

    def request_stop(self) -> None:
        """Ask the loop to cancel its calls and exit. Safe from any thread, never blocks.

        A loop that is still starting stops as soon as it is up.
        """
        self._stop_requested = True
        if self.alive:
            self.call_soon(self._begin_stop)

    def _begin_stop(self) -> None:
        self._stopping = True
        self._stop.set()

    def _spawn(self, call: Call[Any]) -> None:
        if call.future.done():  # cancelled (Ctrl-C) while it waited in the queue
            self._pending.discard(call)
        elif self._stopping:
            self._pending.discard(call)
            call.fail(PortalClosedError("the portal was closing when the call arrived"))
        else:
            self._running.add(call)
            call.on_finish = self._finished
            call.task = self._start(call.run)

    def _finished(self, call: Call[Any]) -> None:
        call.task = None
        self._pending.discard(call)
        self._running.discard(call)
        if self._stopping and not self._running:
            self._drained.set()

    async def _serve(self) -> None:
        async with BlockingPortal() as portal, call_tasks() as (start, cancel_calls):
            self.portal = portal
            self._schedule = thread_safe_scheduler()
            self._wake = thread_safe_waker()
            self._context = call_context()
            self._start = start
            self._stop = anyio.Event()
            self._drained = anyio.Event()
            self.alive = True
            self._ready.set_result(None)
            if self._stop_requested:  # asked while starting (the alive check missed it)
                self._begin_stop()
            try:
                await self._stop.wait()
                for call in list(self._running):
                    call.cancel_in_loop("closed")
                with anyio.move_on_after(resolve_cancel_grace()):
                    if self._running:
                        await self._drained.wait()
            finally:
                self.alive = False
                # Mark what is left before the loop's own cancellation reaches it, so
                # Call.run tells it from a cancellation the coroutine raised itself.
                for call in list(self._running):
                    call.shut_down = True
                    call.cancel_in_loop("closed")
                cancel_calls()
                await portal.stop(cancel_remaining=True)

    def _main(self) -> None:
        # The thread registers itself: the thread that started it may be interrupted
        # (Ctrl-C) anywhere in start(), but a loop that runs is always counted.
        self._on_start(self)
        try:
            anyio.run(
                self._serve, backend=self.spec.name, backend_options=self.spec.backend_options
            )
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
        finally:
            self.alive = False
            self._fail_pending()
            self._on_exit(self)
            self.ended.set()

    def _fail_pending(self) -> None:
        for call in list(self._pending):
            call.fail(PortalClosedError("the portal's event loop has stopped"))
        self._pending.clear()


class BorrowedLoop(PortalHost):
    """A loop the bridge did not start, running in its own thread, serving calls made
    from other threads: what :func:`~agentbridge.current_portal` hands out.

    Calls are handed over and run exactly as on a portal (a :class:`Call` each), as
    tasks nobody else holds. When the loop shuts down it cancels those tasks itself;
    their callers are then told :class:`PortalClosedError` (see ``run_with``), and any
    later call is refused the same way.
    """

    def __init__(self, spec: BackendSpec) -> None:
        # Made in the loop's own thread, by a coroutine running on it.
        super().__init__(spec, _owner_name(), _ignore, _ignore)
        self._ident = threading.get_ident()
        self._schedule = thread_safe_scheduler()
        self._wake = thread_safe_waker()
        self._context = call_context()
        self._start = task_starter()
        self.alive = True
        self._ready.set_result(None)
        on_loop_exit(self._loop_ended)
        _borrowed.add(self)

    @property
    def loop_ident(self) -> int | None:
        """The ident of the thread the loop runs in."""
        return self._ident

    def start(self) -> None:
        """Nothing to start: the loop is running."""

    def request_stop(self) -> None:
        """Stop handing calls to the loop; the loop itself is its owner's to stop."""
        self.alive = False

    async def _loop_ended(self) -> None:
        self.alive = False
        self._fail_pending()


def _ignore(host: PortalHost) -> None:
    """A borrowed loop is nobody's to track: its owner runs and ends it."""


class _ThreadHosts:
    """The hosts one thread owns; finalised (and so stopping them) when the thread ends."""

    __slots__ = ("__weakref__", "hosts", "pid")

    def __init__(self) -> None:
        self.pid = _process.pid
        self.hosts: dict[BackendSpec, PortalHost] = {}

    def __del__(self) -> None:
        # os.getpid(), not the cached _process.pid: in a fork child the other threads'
        # holders are finalised inside os.fork(), before the after-fork hook has updated
        # the cache, and asking an inherited loop to stop can block forever on a lock a
        # parent thread held at the fork (trio's run_sync_soon does).
        if getattr(self, "pid", None) != os.getpid():
            # Inherited through fork: these loops never existed in this process. (No
            # pid: a Ctrl-C interrupted __init__, and there are no hosts either.)
            return
        for host in self.hosts.values():
            try:
                host.request_stop()
            except Exception:  # pragma: no cover - interpreter teardown
                pass


class PortalManager:
    """Opens, reuses and closes the per-thread portals that blocking calls run on.

    Each thread that calls into async code gets its own portal per backend, opened on
    first use and kept until the thread ends, :meth:`close` is called, or the
    interpreter exits. Most programs use the default manager from
    :func:`get_portal_manager`; pass your own to isolate a component's loops.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: set[PortalHost] = set()
        self._local = threading.local()
        self._shared: dict[BackendSpec, PortalHost] = {}  # the process scope's portals
        self._shared_lock = threading.Lock()  # not _lock: a starting host takes that one
        _managers.add(self)

    def portal(
        self, backend: str | None = None, backend_options: dict[str, Any] | None = None
    ) -> BlockingPortal:
        """Return the calling thread's portal for ``backend``, opening it if needed.

        :param backend: ``"asyncio"``, ``"trio"`` or ``"uvloop"``; default from
            :func:`~agentbridge.configure` or ``AGENTBRIDGE_BACKEND``
        :param backend_options: options for :func:`anyio.run`
        :raises ConfigurationError: for an unknown backend or a missing uvloop

        .. note:: anyio's :meth:`BlockingPortal.call` cannot be used from inside a
           ``trio.run`` thread on a trio portal (anyio issue #525); use
           :func:`~agentbridge.run_sync` there, which does not have that limit.
        """
        return self.host(resolve_backend(backend, backend_options)).portal

    @property
    def open_portals(self) -> int:
        """How many portals are running now."""
        with self._lock:
            return len(self._hosts)

    def close(self, timeout: float | None = None) -> None:
        """Stop every portal this manager opened, cancelling the calls still running.

        Calls made after this open new portals lazily.

        :param timeout: seconds to wait for each loop thread to finish (default: the
            cancel grace, 5 s unless configured; ``math.inf`` to wait until they do)
        """
        with self._lock:
            hosts = list(self._hosts)
        for host in hosts:
            host.request_stop()
        wait = blocking_wait(resolve_cancel_grace() if timeout is None else timeout)
        for host in hosts:
            if host.loop_ident not in (None, threading.get_ident()):
                host.ended.wait(wait)

    def host(self, spec: BackendSpec) -> PortalHost:
        """The calling thread's running host for ``spec``, started on first use."""
        holder: _ThreadHosts | None = getattr(self._local, "holder", None)
        if holder is None or holder.pid != _process.pid:
            holder = self._local.holder = _ThreadHosts()
        host = holder.hosts.get(spec)
        if host is None or not host.alive:
            self._refuse_at_exit()
            host = holder.hosts[spec] = self._open(spec)
        return host

    def shared_host(self, spec: BackendSpec) -> PortalHost:
        """The portal every thread shares for ``spec`` (the process scope), started on
        first use; a stopped one is replaced."""
        host = self._shared.get(spec)
        if host is not None and host.alive:
            return host
        with self._shared_lock:
            host = self._shared.get(spec)
            if host is None or not host.alive:
                self._refuse_at_exit()
                host = self._shared[spec] = self._open(spec, f"agentbridge-portal-{spec}-process")
        return host

    def open_shared(self, spec: BackendSpec, name: str) -> PortalHost:
        """Start a portal for ``spec`` that belongs to no thread, named ``name``; it is
        closed with this manager's portals, at exit, and forgotten in a fork child."""
        self._refuse_at_exit()
        return self._open(spec, name)

    @staticmethod
    def _refuse_at_exit() -> None:
        if interpreter_exit.in_progress:
            # Starting a thread now would hang (or, since 3.12, raise) the exit.
            raise PortalClosedError(
                "the interpreter is exiting and its portals are closed; no new one can be opened"
            )

    def hosts(self) -> list[PortalHost]:
        """Every host of this manager that is running (a snapshot)."""
        with self._lock:
            return list(self._hosts)

    def _open(self, spec: BackendSpec, name: str | None = None) -> PortalHost:
        if spec.uses_uvloop:
            try:
                import uvloop  # noqa: F401
            except ImportError:
                raise ConfigurationError(
                    "the uvloop backend needs the uvloop package; install it with "
                    f"`{install_hint('uvloop')}` or choose backend='asyncio'"
                ) from None
        if name is None:
            name = f"agentbridge-portal-{spec}-for-{_owner_name()}"
        host = PortalHost(spec, name, self._track, self._forget)
        try:
            host.start()
        except BaseException:
            # E.g. Ctrl-C while the loop starts: it must not run on untracked.
            host.request_stop()
            raise
        return host

    def _track(self, host: PortalHost) -> None:
        with self._lock:
            self._hosts.add(host)

    def _forget(self, host: PortalHost) -> None:
        with self._lock:
            self._hosts.discard(host)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._hosts = set()
        self._local = threading.local()
        self._shared = {}
        self._shared_lock = threading.Lock()


def _owner_name() -> str:
    """The calling thread's name, or its ident if :mod:`threading` does not know it.

    ``threading.current_thread()`` would register a phantom ``_DummyThread`` for a
    thread started with :func:`_thread.start_new_thread`, kept until the process ends.
    """
    ident = threading.get_ident()
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread-{ident}"


class _Process:
    #: This process's id, kept up to date across fork: os.getpid() is a system call,
    #: and every bridged call checks that its portal was not inherited.
    pid = os.getpid()


_process = _Process()
_managers: weakref.WeakSet[PortalManager] = weakref.WeakSet()
_borrowed: weakref.WeakSet[BorrowedLoop] = weakref.WeakSet()
_default_manager: PortalManager | None = None
_default_lock = threading.Lock()


def get_portal_manager() -> PortalManager:
    """Return the process-wide default :class:`PortalManager`.

    .. versionadded:: 0.1
    """
    global _default_manager
    manager = _default_manager
    if manager is None:
        with _default_lock:
            if _default_manager is None:
                _default_manager = PortalManager()
            manager = _default_manager
    return manager


def all_managers() -> list[PortalManager]:
    """Every portal manager alive in this process."""
    return list(_managers)


def borrowed_loops() -> list[BorrowedLoop]:
    """Every borrowed loop whose handle is still referenced."""
    return list(_borrowed)


def current_pid() -> int:
    """This process's id, as cached (kept up to date across fork)."""
    return _process.pid


def _close_all_at_exit() -> None:
    interpreter_exit.in_progress = True
    for manager in list(_managers):
        manager.close()


def _reset_after_fork() -> None:
    global _default_lock
    _process.pid = os.getpid()
    _default_lock = threading.Lock()
    for manager in list(_managers):
        manager._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
