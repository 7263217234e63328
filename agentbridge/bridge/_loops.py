"""The one place that asks "asyncio or trio?", and every private hook the bridge uses.

The rest of the bridge is written against anyio; whatever has to tell the two loop
libraries apart (which loop runs in this thread, whose worker thread this is, how to
schedule a callback or start a task natively, which exception is a cancellation) is
answered here. Neither library is ever imported here for a question about a loop that
cannot exist: a loop of asyncio cannot run in a process that has not imported
:mod:`asyncio`, nor a trio run in one that has not imported trio, so ``import
agentbridge`` imports neither, and trio can stay an optional extra.

Every private name of CPython, anyio or trio that the bridge touches is in this module,
each with a comment saying why it is used and since when it exists.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from contextvars import Context, copy_context
from functools import partial
from types import FrameType, ModuleType
from typing import Any, Literal, cast

import anyio.from_thread
from anyio import CancelScope, NoEventLoopError

from .._distribution import install_hint
from .._exceptions import ConfigurationError

__all__ = (
    "HostLoop",
    "Library",
    "anyio_worker_host",
    "call_context",
    "call_tasks",
    "check_trio_installed",
    "decoded",
    "environment_reader",
    "is_cancellation",
    "loop_key",
    "native_cancel_scope",
    "on_loop_exit",
    "running_library",
    "stacklevel_outside",
    "start_detached",
    "task_starter",
    "thread_safe_scheduler",
    "thread_safe_waker",
    "trio_worker_host",
)

#: An async library whose event loop the bridge can run on.
Library = Literal["asyncio", "trio"]

#: The message of every "trio was asked for but is not installed" error.
TRIO_MISSING = (
    "the trio backend needs the trio package, which is not installed; install it with "
    f"`{install_hint('trio')}` or choose backend='asyncio'"
)


def _module(name: str) -> ModuleType | None:
    """Return the module ``name`` if it has been completely imported, else ``None``.

    Private hook: ``ModuleSpec._initializing`` (CPython, since 3.4 and PEP 451). The
    import system sets it while the module's body runs and reads it itself to decide
    whether an import must wait for another thread. While another thread is still
    importing trio, the module object is in :data:`sys.modules` but its submodules are
    not yet; the public alternative, importing it, would block this thread (on an
    asyncio loop thread, the whole loop) until that other import is done.
    """
    module = _complete.get(name)
    if module is not None:
        return module
    module = sys.modules.get(name)
    if module is None or getattr(module.__spec__, "_initializing", False):
        return None
    _complete[name] = module  # it stays imported: ask sys.modules only until then
    return module


_complete: dict[str, ModuleType] = {}


#: The raw values of some environment variables, read at once: ``bytes`` (or ``str``
#: where :func:`environment_reader` falls back on :data:`os.environ`), or ``None``.
RawValues = tuple[object, ...]


def environment_reader(
    names: tuple[str, ...],
) -> tuple[Callable[[], Iterator[object]], Callable[[], bool]]:
    """Two functions: one returning the raw values of the variables ``names`` (an
    iterator: make it a tuple, :data:`RawValues`, to compare with an earlier read;
    :func:`decoded` turns one into what :meth:`os.environ.get` returns), and one
    returning whether none of them is set (the usual case: one call into C where a read
    makes one per variable, 2.1k instructions against 3.7k for six).

    Private hook: ``os.environ._data`` (CPython, since 3.2), the dict of bytes behind
    :data:`os.environ` on POSIX, kept in step with every change made through
    ``os.environ``. ``os.environ.get`` encodes the key and decodes the value and, for a
    variable that is not set (the usual case), raises and catches a ``KeyError``: 0.75
    to 2 us a read on a 2-vCPU VM, and every blocking call reads the four
    ``AGENTBRIDGE_*`` variables (4.9 us in all, against 0.2 us here, undecoded). Run side
    by side in interleaved rounds (the harness of ``benchmarks/run.py``, group 1a),
    plain reads of two or three variables already made the whole call 1.03x slower.
    """
    data = getattr(os.environ, "_data", None)
    environ_get: Callable[[Any], object]
    keys: tuple[Any, ...]
    if os.name != "posix" or not isinstance(data, dict):  # pragma: no cover - Windows
        environ_get, keys = os.environ.get, names

        def none_set() -> bool:
            return all(os.environ.get(name) is None for name in names)

    else:
        environ_get, keys = data.get, tuple(os.fsencode(name) for name in names)
        # A view of the dict stays in step with it; isdisjoint looks each key up in C.
        none_set = partial(data.keys().isdisjoint, frozenset(keys))
    # A partial of map: no Python frame on a read, which every blocking call makes.
    return partial(map, environ_get, keys), none_set


def decoded(raw: object) -> str | None:
    """A raw value of :func:`environment_reader` as :meth:`os.environ.get` returns it."""
    return os.fsdecode(raw) if isinstance(raw, bytes) else cast("str | None", raw)


def running_library() -> Library | None:
    """The async library whose event loop is running in the calling thread, or ``None``.

    Private hook: ``asyncio._get_running_loop`` (CPython, since 3.6). It is listed in
    ``asyncio.events.__all__`` and so exported by :mod:`asyncio`, and is what asyncio's
    own ``get_running_loop`` (3.7) calls; it returns ``None`` instead of raising. The public
    ``asyncio.get_running_loop()`` raises when no loop runs, which is the common case
    here (a blocking call from a plain thread), and a raised and caught exception costs
    several times the whole check. uvloop's loops register through the same function.
    """
    # Every blocking call asks this, so the modules are looked up in _complete first (a
    # dict lookup, where a call of _module costs a Python frame).
    asyncio = _complete.get("asyncio") or _module("asyncio")
    if asyncio is not None and asyncio._get_running_loop() is not None:
        return "asyncio"
    if "trio" not in sys.modules:  # the usual case in an asyncio program
        return None
    trio = _complete.get("trio") or _module("trio")
    # trio names itself in sniffio's thread-local for the whole of a run (sniffio's
    # contract with async libraries; trio imports sniffio). Reading it raises nothing,
    # where trio.lowlevel.in_trio_run() raises and catches an AttributeError in every
    # thread without a run: 1.3 us on each call from a worker thread.
    if trio is None:
        return None
    sniffio = _complete.get("sniffio") or _module("sniffio")
    if (sniffio is None or sniffio.thread_local.name == "trio") and trio.lowlevel.in_trio_run():
        return "trio"
    return None


def stacklevel_outside(prefix: str) -> int:
    """The ``stacklevel`` that makes a warning issued by our caller name the first frame
    whose file is outside ``prefix`` (a directory) and is not :mod:`contextlib`'s.

    The bridge's entry points reach the warning through different depths of wrappers
    (``@contextmanager`` ones sit between a ``with`` statement and the bridge), so no
    fixed number names the user's line for all of them.

    Private hook: ``sys._getframe`` (CPython, since 2.1; PyPy has it too), the frame
    walk ``warnings.warn`` itself does. Its public ``skip_file_prefixes`` exists only
    from Python 3.12, and would not skip contextlib.
    """
    frame: FrameType | None = sys._getframe(2)  # level 1 is the caller, which warns
    level = 2
    while frame is not None and (
        frame.f_code.co_filename.startswith(prefix) or frame.f_code.co_filename == _CONTEXTLIB
    ):
        frame = frame.f_back
        level += 1
    return level


_CONTEXTLIB = contextlib.__file__


def check_trio_installed(source: str) -> None:
    """Raise :class:`ConfigurationError` naming the extra if trio cannot be imported.

    Called when a trio backend is asked for (``source`` says where from), without
    importing trio: a program that only configures it pays nothing until a trio
    portal opens.
    """
    if _module("trio") is not None:
        return
    import importlib.util  # only here: a fifth of this module's import time

    try:
        found = importlib.util.find_spec("trio") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigurationError(f"{TRIO_MISSING} (from {source})")


class HostLoop:
    """The running loop that spawned the current worker thread, and how to reach it."""

    __slots__ = ("library", "run", "run_async", "run_sync")

    def __init__(
        self,
        library: Library,
        run: Callable[..., Any],
        run_sync: Callable[..., Any],
        run_async: Callable[[Callable[..., Any], tuple[Any, ...], None], Any],
    ) -> None:
        #: The library of the host loop.
        self.library: Library = library
        #: ``run(fn, *args)``: runs a coroutine function on the host loop and blocks
        #: until it returns.
        self.run = run
        #: ``run_sync(fn, *args)``: runs a plain function in the host loop thread and
        #: blocks until it returns.
        self.run_sync = run_sync
        #: ``run_async(fn, args, None)``: what :attr:`run` does, one frame shorter (the
        #: hot path of a worker thread's calls).
        self.run_async = run_async


# Private hook: ``anyio._core._eventloop.threadlocals`` (anyio 4.11+, the floor), whose
# ``current_token`` (an ``anyio.lowlevel.EventLoopToken``) anyio's own ``from_thread``
# functions read in a worker thread, and the token's ``backend_class``, whose
# ``check_cancelled`` and ``run_async_from_thread`` they call. Reading and calling them
# here spares every call of a worker thread back to its loop the public wrappers' Python
# frames (``check_cancelled``, ``run``, ``_token_or_error`` twice) and a raised-and-caught
# ``NoEventLoopError`` outside workers: 2.8k (asyncio) and 3.4k (trio) of the 23.5k
# instructions the bridge added to a 182k-instruction call (cachegrind, the call of
# benchmarks/bridge.py groups 3a and 3b). Should a later anyio move it: the public calls.
_anyio_threadlocals: Any = getattr(sys.modules.get("anyio._core._eventloop"), "threadlocals", None)
_anyio_hosts: dict[object, HostLoop] = {}


def anyio_worker_host() -> HostLoop | None:
    """How to reach the loop whose anyio worker thread this is (so also Starlette's
    threadpool), or ``None``. If the host task has been cancelled, its cancellation is
    raised here (anyio's own ``check_cancelled``)."""
    if _anyio_threadlocals is None:  # pragma: no cover - a later anyio
        try:
            anyio.from_thread.check_cancelled()
        except NoEventLoopError:
            return None
        return _PUBLIC_ANYIO_HOST
    token = getattr(_anyio_threadlocals, "current_token", None)
    if token is None:
        return None
    backend = token.backend_class
    backend.check_cancelled()
    host = _anyio_hosts.get(backend)
    if host is None:
        library: Library = "trio" if "_trio" in backend.__module__ else "asyncio"
        host = _anyio_hosts[backend] = HostLoop(
            library,
            anyio.from_thread.run,
            anyio.from_thread.run_sync,
            backend.run_async_from_thread,
        )
    return host


def _run_async_public(func: Callable[..., Any], args: tuple[Any, ...], token: None) -> Any:
    return anyio.from_thread.run(func, *args)


_PUBLIC_ANYIO_HOST = HostLoop(
    # Only without the private hook, whose backend class names the library: asyncio is
    # the best guess, and only a worker's call naming backend= asks.
    "asyncio",
    anyio.from_thread.run,
    anyio.from_thread.run_sync,
    _run_async_public,
)
_trio_host: HostLoop | None = None


def trio_worker_host() -> HostLoop | None:
    """How to reach the loop whose ``trio.to_thread`` worker thread this is (anyio's
    workers on trio are such threads too), or ``None``. If the host task has been
    cancelled, its cancellation is raised here (trio's own ``check_cancelled``)."""
    global _trio_host
    trio = _complete.get("trio") or _module("trio")
    if trio is None:
        return None
    try:
        trio.from_thread.check_cancelled()
    except RuntimeError:
        return None
    if _trio_host is None:
        run = trio.from_thread.run

        def run_async(func: Callable[..., Any], args: tuple[Any, ...], token: None) -> Any:
            return run(func, *args)

        _trio_host = HostLoop("trio", run, trio.from_thread.run_sync, run_async)
    return _trio_host


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is the cancellation exception of asyncio or trio."""
    asyncio = _module("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        return True
    trio = _module("trio")
    return trio is not None and isinstance(exc, trio.Cancelled)


def native_cancel_scope() -> CancelScope:
    """A new cancel scope for the loop running in this thread.

    On trio, anyio's scope wraps trio's own and adds a third of a call's cost; trio's
    scope has the same meaning there (shields included) and the same ``cancel()`` and
    ``deadline``, so it is used directly.
    """
    if running_library() == "trio":
        trio = _module("trio")
        assert trio is not None
        return cast(CancelScope, trio.CancelScope())
    return CancelScope()


def thread_safe_scheduler() -> Callable[..., object]:
    """How to run ``func(*args)`` soon in the loop running in this thread, from any thread.

    Call it in the loop thread; the function it returns may be called from any thread
    and raises :exc:`RuntimeError` once the loop has finished. It hands the call over
    in one step through the library's documented scheduler
    (``loop.call_soon_threadsafe``, ``TrioToken.run_sync_soon``), in a copy of the
    calling thread's context, so context variables flow into the call (and tasks it
    starts) but not back.
    """
    if running_library() == "asyncio":
        asyncio = _module("asyncio")
        assert asyncio is not None
        call_soon = asyncio.get_running_loop().call_soon_threadsafe
        sniffio = _module("sniffio")

        def schedule_on_asyncio(func: Callable[..., object], *args: Any) -> None:
            context = copy_context()
            if sniffio is not None:
                # The caller's context may name another library (a trio task's context
                # carried into a thread); in this loop's tasks, asyncio is running.
                context.run(sniffio.current_async_library_cvar.set, "asyncio")
            call_soon(func, *args, context=context)

        return schedule_on_asyncio
    trio = _module("trio")
    assert trio is not None, "the bridge's loops are asyncio or trio"
    run_sync_soon = trio.lowlevel.current_trio_token().run_sync_soon

    def schedule_on_trio(func: Callable[..., object], *args: Any) -> None:
        run_sync_soon(copy_context().run, func, *args)

    return schedule_on_trio


def thread_safe_waker() -> Callable[[Callable[[], object]], object]:
    """How to run ``func()`` soon in the loop running in this thread, from any thread, in
    one empty context: for a callback that needs nothing of its caller's context (a
    portal's drain, which runs each call it takes in that call's own). The callbacks
    never nest, so they can share it.

    Call it in the loop thread; the function it returns raises :exc:`RuntimeError` once
    the loop has finished. It uses the same queue as :func:`thread_safe_scheduler`, so
    callbacks of both run in the order they were scheduled; it spares each hand-off the
    copy of a context and the ``sniffio`` name set in it (1.5k instructions of a
    portal call).
    """
    if running_library() == "asyncio":
        asyncio = _module("asyncio")
        assert asyncio is not None
        return partial(asyncio.get_running_loop().call_soon_threadsafe, context=Context())
    trio = _module("trio")
    assert trio is not None, "the bridge's loops are asyncio or trio"
    token = trio.lowlevel.current_trio_token()
    run_sync_soon: Callable[[Callable[[], object]], object] = token.run_sync_soon
    return run_sync_soon


def call_context() -> Callable[[], Context]:
    """How to capture, in any thread, the context a call handed to the loop running in
    this thread runs in: what :func:`thread_safe_scheduler` gives each callback, for a
    caller that batches its hand-offs. Call it in the loop thread."""
    if running_library() == "asyncio":
        sniffio = _module("sniffio")
        if sniffio is None:
            return copy_context
        name_asyncio = partial(sniffio.current_async_library_cvar.set, "asyncio")

        def asyncio_context() -> Context:
            context = copy_context()
            context.run(name_asyncio)  # see schedule_on_asyncio
            return context

        return asyncio_context
    return copy_context


@asynccontextmanager
async def call_tasks() -> AsyncIterator[tuple[Callable[..., object], Callable[[], object]]]:
    """How to start a call's task on the running loop as cheaply as the loop allows, and
    how to cancel every such task.

    anyio's ``TaskGroup.start_soon`` costs about 30 us per task on either backend (it
    wraps each task in a handle with its own cancel scope), a quarter of a whole
    cross-thread call. So asyncio calls become plain tasks, cancelled and awaited by
    the host on shutdown, and trio calls go straight into a native nursery.
    """
    if running_library() == "asyncio":
        asyncio = _module("asyncio")
        assert asyncio is not None
        loop = asyncio.get_running_loop()

        def start(async_fn: Callable[..., Any], *args: Any) -> Any:
            # The caller keeps the task (the loop holds only a weak reference).
            return loop.create_task(async_fn(*args))

        yield start, _nothing
        return
    trio = _module("trio")
    assert trio is not None, "a trio portal runs in trio"
    async with trio.open_nursery() as nursery:
        yield nursery.start_soon, nursery.cancel_scope.cancel


def _nothing() -> None:
    """Nothing to cancel: the host cancels asyncio call tasks one by one on shutdown."""


_detached: set[Any] = set()


def start_detached(async_fn: Callable[[], Any]) -> None:
    """Start ``async_fn()`` as a task of the loop running in this thread; do not wait.

    ``async_fn`` must not raise: on trio it runs as a system task, where an exception
    would crash the run. On asyncio the task is held until it is done, since the loop
    keeps only weak references to its tasks.
    """
    if running_library() == "trio":
        trio = _module("trio")
        assert trio is not None
        trio.lowlevel.spawn_system_task(async_fn)
        return
    asyncio = _module("asyncio")
    assert asyncio is not None, "a loop of asyncio or trio is running here"
    task = asyncio.get_running_loop().create_task(async_fn())
    _detached.add(task)
    task.add_done_callback(_detached.discard)


def loop_key() -> object:
    """A hashable object standing for the loop running in this thread, for its whole run:
    the asyncio loop, or the trio run's token."""
    if running_library() == "trio":
        trio = _module("trio")
        assert trio is not None
        return trio.lowlevel.current_trio_token()
    asyncio = _module("asyncio")
    assert asyncio is not None, "a loop of asyncio or trio is running here"
    return asyncio.get_running_loop()


def task_starter() -> Callable[..., Any]:
    """How to start ``async_fn(*args)`` as a task of the loop running in this thread, in
    the context current where it is started, owned by nobody; call the result in the
    loop thread. It returns the task on asyncio (hold it: the loop keeps only weak
    references), ``None`` on trio.

    ``async_fn`` must not raise but a cancellation: on trio it runs as a system task
    (there is no nursery of ours on a loop the bridge did not start), where any other
    exception crashes the run. System tasks do not inherit their creator's context, so
    the current one is given explicitly.
    """
    if running_library() == "trio":
        trio = _module("trio")
        assert trio is not None
        spawn = trio.lowlevel.spawn_system_task

        def start_on_trio(async_fn: Callable[..., Any], *args: Any) -> None:
            spawn(async_fn, *args, context=copy_context())

        return start_on_trio
    asyncio = _module("asyncio")
    assert asyncio is not None, "a loop of asyncio or trio is running here"
    loop = asyncio.get_running_loop()

    def start_on_asyncio(async_fn: Callable[..., Any], *args: Any) -> Any:
        return loop.create_task(async_fn(*args))

    return start_on_asyncio


def on_loop_exit(async_fn: Callable[[], Any]) -> None:
    """Run ``async_fn()`` on the loop running in this thread when that loop shuts down.

    It waits in a task of its own, which the loop cancels as it ends: ``asyncio.run``
    (and anyio's runner) cancels and awaits every remaining task before closing the
    loop, trio cancels its system tasks once the main task has returned. The cleanup
    then runs shielded (trio) or after the one cancellation (asyncio), so it can await.
    ``async_fn`` must not raise.
    """
    if running_library() == "trio":
        trio = _module("trio")
        assert trio is not None

        async def wait_on_trio() -> None:
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await async_fn()

        trio.lowlevel.spawn_system_task(wait_on_trio)
        return
    asyncio = _module("asyncio")
    assert asyncio is not None, "a loop of asyncio or trio is running here"
    loop = asyncio.get_running_loop()

    async def wait_on_asyncio() -> None:
        try:
            await loop.create_future()
        finally:
            await async_fn()

    task = loop.create_task(wait_on_asyncio())
    _detached.add(task)
    task.add_done_callback(_detached.discard)
