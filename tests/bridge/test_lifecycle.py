"""Portal lifecycle: thread exit, interpreter exit, BaseExceptions and many threads at once.

The in-process tests use their own :class:`~agentbridge.PortalManager`, so portals left
by other tests cannot disturb the counts. What only shows from outside (OS thread
counts from a clean start, exit codes, stderr at interpreter exit) runs in a child
interpreter through :mod:`tests.bridge._subproc`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._subproc import BACKENDS, Outcome, Snippet, run_snippet

pytestmark = pytest.mark.timeout(60)

ALL_BACKENDS = ("asyncio", "trio", "uvloop")


def os_thread_count() -> int:
    """The number of OS threads of this process, as the kernel counts them."""
    return len(os.listdir("/proc/self/task"))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.01)
    return True


async def loop_identity() -> object:
    return anyio.lowlevel.current_token().native_token


async def double(value: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * value


def run_in_batches(target: Callable[[int], None], count: int, batch: int = 50) -> None:
    """Run ``target(i)`` for ``i < count`` in fresh threads, ``batch`` alive at a time."""
    for start in range(0, count, batch):
        threads = [
            threading.Thread(target=target, args=(i,), name=f"short-lived-{i}")
            for i in range(start, min(count, start + batch))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive(), f"{thread.name} did not finish its call"


# --- 1. a portal stops when the thread that owns it ends --------------------------------


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_portals_of_ended_threads_are_stopped_in_process(portal_backend: str) -> None:
    """Each short-lived thread's portal, and its loop thread, go away when the thread ends.

    Counts may only return to (or below) the baseline: threads left by earlier tests
    can still be finishing. No cleanup may register a phantom ``_DummyThread``.
    """
    manager = ab.PortalManager()
    threads_before = os_thread_count()
    active_before = threading.active_count()
    results: dict[int, int] = {}

    def call(i: int) -> None:
        results[i] = ab.run_sync(double, i, backend=portal_backend, manager=manager)

    try:
        run_in_batches(call, 200)
        assert results == {i: 2 * i for i in range(200)}
        assert wait_until(lambda: manager.open_portals == 0), (
            f"{manager.open_portals} portals of ended threads are still open"
        )
        assert wait_until(lambda: os_thread_count() <= threads_before), (
            f"OS threads: {os_thread_count()} now, {threads_before} before"
        )
        assert wait_until(lambda: threading.active_count() <= active_before), (
            f"threading.active_count(): {threading.active_count()} now, {active_before} before"
        )
        dummies = [t for t in threading.enumerate() if isinstance(t, threading._DummyThread)]
        assert dummies == []
    finally:
        manager.close()


THOUSAND_THREADS = """
    import json, os, sys, threading, time
    import anyio, anyio.lowlevel
    import agentbridge as ab

    backend = sys.argv[1]

    async def double(value):
        await anyio.lowlevel.checkpoint()
        return 2 * value

    def snapshot():
        return (
            len(os.listdir("/proc/self/task")),
            threading.active_count(),
            ab.get_portal_manager().open_portals,
        )

    ab.run_sync(double, 0, backend=backend)  # the main thread keeps a portal open
    baseline = snapshot()
    results = {}

    def call(i):
        results[i] = ab.run_sync(double, i, backend=backend)

    for start in range(0, 1000, 50):
        batch = [threading.Thread(target=call, args=(i,)) for i in range(start, start + 50)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()
    correct = results == {i: 2 * i for i in range(1000)}
    deadline = time.monotonic() + 10
    while snapshot() != baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    print(json.dumps({
        "baseline": baseline,
        "after": snapshot(),
        "correct": correct,
        "dummies": [t.name for t in threading.enumerate()
                    if isinstance(t, threading._DummyThread)],
    }))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("backend", BACKENDS)
def test_thousand_short_lived_threads_return_to_baseline(backend: str) -> None:
    """1000 threads (50 alive at a time) each make one call: afterwards the open portal
    count, the OS thread count and ``threading.active_count()`` return to what they were
    with only the main thread's portal open, within 10 s, and no ``_DummyThread`` exists.
    """
    outcome = run_snippet(THOUSAND_THREADS, args=[backend], timeout=45)
    assert outcome.returncode == 0, outcome.describe()
    report = json.loads(outcome.lines[-1])
    assert report["correct"], outcome.describe()
    assert report["after"] == report["baseline"], outcome.describe()
    assert report["baseline"][2] == 1, outcome.describe()
    assert report["dummies"] == [], outcome.describe()
    assert outcome.stderr == "", outcome.describe()


FIRST_TRIO_IMPORT = """
    import sys, threading
    import agentbridge as ab
    assert "trio" not in sys.modules, "this test needs trio not yet imported"

    async def one():
        return 1

    imported = threading.Event()
    spinning = threading.Barrier(5)
    errors = []

    def caller():
        ab.run_sync(one)
        spinning.wait()
        while not imported.is_set():
            try:
                ab.run_sync(one)
            except Exception as exc:
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    spinning.wait()
    import trio  # for instance a library importing it lazily, in another thread
    imported.set()
    for thread in threads:
        thread.join()
    print(len(errors), sorted(set(errors))[:3])
"""


def test_first_import_of_trio_does_not_break_other_threads() -> None:
    """While one thread imports trio for the first time, ``run_sync`` calls (on asyncio
    portals) in other threads keep working: a half-imported trio module in
    ``sys.modules`` must not be mistaken for a usable one.
    """
    outcome = run_snippet(FIRST_TRIO_IMPORT, timeout=30)
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines[-1] == "0 []", outcome.describe()


# --- 2. interpreter exit with portals left open -----------------------------------------

EXIT_WITH_OPEN_PORTALS = """
    import sys, threading
    import anyio, anyio.lowlevel
    import agentbridge as ab

    backend = sys.argv[1]
    catch = sys.argv[2] == "catch"

    async def identity():
        return anyio.lowlevel.current_token().native_token

    # The main thread leaves a portal of every backend open.
    for name in ("asyncio", "trio", "uvloop"):
        ab.run_sync(identity, backend=name)

    # A daemon thread that finished its call and is still alive at exit.
    idle_called = threading.Event()
    def idle():
        ab.run_sync(identity, backend=backend)
        idle_called.set()
        threading.Event().wait()
    threading.Thread(target=idle, daemon=True).start()

    # A non-daemon thread that finished its call and ends while the interpreter exits.
    release = threading.Event()
    worker_called = threading.Event()
    def worker():
        ab.run_sync(identity, backend=backend)
        worker_called.set()
        release.wait()
    threading.Thread(target=worker).start()

    # A daemon thread whose call is still running on its portal at exit.
    running = threading.Event()
    async def forever():
        running.set()
        try:
            await anyio.sleep_forever()
        finally:
            print("in-flight cleanup ran", flush=True)
    def in_flight():
        if catch:
            try:
                ab.run_sync(forever, backend=backend)
            except ab.PortalClosedError:
                threading.Event().wait()  # stay blocked, as a daemon thread would
        else:
            ab.run_sync(forever, backend=backend)
    threading.Thread(target=in_flight, daemon=True).start()

    assert idle_called.wait(10) and worker_called.wait(10) and running.wait(10)
    assert ab.get_portal_manager().open_portals == 6, ab.get_portal_manager().open_portals
    release.set()
    print("main done", flush=True)
"""


#: The cancel grace the exit scripts run with: an exit that waited it out would take this
#: long, so one that takes less than half of it did not, however loaded the machine.
EXIT_GRACE = 30.0


def run_exit_script(backend: str, flags: list[str], catch: str) -> tuple[float, Outcome]:
    env = {"AGENTBRIDGE_CANCEL_GRACE": str(EXIT_GRACE)}
    with Snippet(EXIT_WITH_OPEN_PORTALS, flags=flags, args=[backend, catch], env=env) as child:
        main_done = child.expect("main done", timeout=30)
        outcome = child.finish(timeout=EXIT_GRACE + 10)
        exited = time.monotonic()
    return exited - main_done, outcome


@pytest.mark.parametrize(
    "flags", [pytest.param([], id="plain"), pytest.param(["-X", "dev"], id="dev")]
)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(90)
def test_exit_with_open_portals_is_prompt_and_quiet(backend: str, flags: list[str]) -> None:
    """An interpreter with portals still open (main thread: all three backends; a live
    daemon thread and an ending non-daemon thread that finished their calls; a daemon
    thread whose call is still running) exits with status 0 without waiting out the
    cancel grace, runs the running coroutine's cleanup, and writes nothing to
    stderr: no "Task was destroyed", no "Exception ignored", no traceback.
    """
    seconds, outcome = run_exit_script(backend, flags, "catch")
    assert outcome.returncode == 0, outcome.describe()
    assert "in-flight cleanup ran" in outcome.lines, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert seconds < EXIT_GRACE / 2, (
        f"exit took {seconds:.2f} s after main ended\n{outcome.describe()}"
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.timeout(90)
def test_exit_with_a_daemon_thread_blocked_in_a_call_is_quiet(backend: str) -> None:
    """A daemon thread still waiting in ``run_sync`` at interpreter exit stays quiet,
    like a daemon thread blocked in any other call: the exit writes nothing to stderr.
    """
    seconds, outcome = run_exit_script(backend, [], "raise")
    assert outcome.returncode == 0, outcome.describe()
    assert seconds < EXIT_GRACE / 2, outcome.describe()
    assert outcome.stderr == "", outcome.describe()


OPEN_ADAPTERS_AT_EXIT = """
    import anyio
    import agentbridge as ab
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def holding():
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            try:
                yield "entered"
            finally:
                group.cancel_scope.cancel()
                print("context exit ran", flush=True)

    async def ticks():
        while True:
            yield 1
            await anyio.sleep(0)

    def suspended():
        # A generator that is still inside both adapters when the interpreter exits.
        with ab.sync_context(holding()) as value, ab.iterate_sync(ticks()) as items:
            for item in items:
                yield value, item

    GENERATOR = suspended()
    print("first", next(GENERATOR), flush=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.timeout(90)
def test_exit_with_adapters_still_open_is_prompt_and_quiet(backend: str) -> None:
    """A ``sync_context`` and an ``iterate_sync`` left open in a generator that is only
    finalised during interpreter shutdown (after the portals closed) do not hang the
    exit or open a new portal: the context's exit runs as the portal closes, and the
    exit writes nothing to stderr.
    """
    env = {"AGENTBRIDGE_BACKEND": backend, "AGENTBRIDGE_CANCEL_GRACE": str(EXIT_GRACE)}
    outcome = run_snippet(OPEN_ADAPTERS_AT_EXIT, env=env, timeout=EXIT_GRACE + 10)
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines[0] == "first ('entered', 1)", outcome.describe()
    assert "context exit ran" in outcome.lines, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert outcome.elapsed < EXIT_GRACE / 2, outcome.describe()


LATE_ATEXIT_CALL = """
    import atexit

    def late():
        async def one():
            return 1
        try:
            print("late call returned", ab.run_sync(one), flush=True)
        except Exception as exc:
            print("late call raised", type(exc).__name__, flush=True)

    # Registered before agentbridge is imported, so it runs after the bridge's own
    # atexit hook has closed the portals.
    atexit.register(late)

    import threading
    import agentbridge as ab

    async def blocks_its_loop():
        # Not a synchronisation sleep: the scenario is a coroutine that blocks its loop
        # (for 2 s), so its portal is alive but cannot stop while the hooks run.
        threading.Event().wait(2)

    try:
        ab.run_sync(blocks_its_loop, timeout=0.05)
    except ab.BridgeTimeoutError as exc:
        print("abandoned", exc.abandoned, flush=True)
"""


def test_late_atexit_call_on_a_stopping_portal_does_not_hang() -> None:
    """An atexit hook that runs after the bridge's own (registered before agentbridge was
    imported) and calls ``run_sync`` while the main thread's portal is still stopping
    (its coroutine blocks its loop) gets an answer, a result or an exception: the
    interpreter exits instead of hanging. Only daemon threads may be parked at exit.
    """
    outcome = run_snippet(LATE_ATEXIT_CALL, env={"AGENTBRIDGE_CANCEL_GRACE": "0.2"}, timeout=6)
    assert outcome.lines[0] == "abandoned True", outcome.describe()
    assert outcome.lines[1].startswith("late call"), outcome.describe()
    assert outcome.returncode == 0, outcome.describe()


# --- 5. a BaseException crosses with its type and spares the portal ----------------------


class Fatal(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, Fatal])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_base_exception_crosses_and_portal_survives(
    backend: str, exc_type: type[BaseException]
) -> None:
    """KeyboardInterrupt, SystemExit or another BaseException raised by the coroutine
    reaches the caller as itself, at once (it is not taken for the caller's own Ctrl-C,
    which would wait out the cancel grace), and the thread's portal keeps its loop.
    """
    if backend == "uvloop":
        pytest.importorskip("uvloop")
    manager = ab.PortalManager()
    ab.configure(cancel_grace=30)

    async def raises() -> None:
        await anyio.lowlevel.checkpoint()
        raise exc_type("from the coroutine")

    try:
        before = ab.run_sync(loop_identity, backend=backend, manager=manager)
        started = time.monotonic()
        with pytest.raises(exc_type) as info:
            ab.run_sync(raises, backend=backend, manager=manager)
        assert type(info.value) is exc_type
        assert info.value.args == ("from the coroutine",)
        assert time.monotonic() - started < 5
        assert ab.run_sync(loop_identity, backend=backend, manager=manager) is before
        assert ab.run_sync(double, 21, backend=backend, manager=manager) == 42
        assert manager.open_portals == 1
    finally:
        manager.close()


# --- 6. many threads, many calls, all overlapping ---------------------------------------


def test_fifty_threads_times_twenty_calls(portal_backend: str) -> None:
    """50 threads released together by a barrier make 20 calls each: every result is
    right, each thread's calls share one loop, and no two threads share a loop.
    """
    manager = ab.PortalManager()
    barrier = threading.Barrier(50)
    results: dict[int, list[tuple[int, int, int]]] = {}
    loops: dict[int, set[int]] = {}
    errors: list[BaseException] = []

    async def work(thread_no: int, call_no: int) -> tuple[int, int, int, int]:
        await anyio.sleep(0)
        token = anyio.lowlevel.current_token().native_token
        await anyio.sleep(0)
        return thread_no, call_no, thread_no * 100 + call_no, id(token)

    def caller(thread_no: int) -> None:
        try:
            barrier.wait(30)
            mine = [
                ab.run_sync(work, thread_no, call_no, backend=portal_backend, manager=manager)
                for call_no in range(20)
            ]
            results[thread_no] = [entry[:3] for entry in mine]
            loops[thread_no] = {entry[3] for entry in mine}
            # Hold the portal (and its loop) until every thread has made its calls, so
            # that loop identities are compared between loops that are all alive.
            barrier.wait(30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(50)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(45)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        for n in range(50):
            assert results[n] == [(n, c, n * 100 + c) for c in range(20)]
            assert len(loops[n]) == 1, f"thread {n} used {len(loops[n])} loops"
        assert len(set().union(*loops.values())) == 50
    finally:
        manager.close()


# --- 6. threads started with _thread never get a phantom threading.Thread ----------------


def test_raw_threads_calling_get_no_phantom_thread_objects(portal_backend: str) -> None:
    """Threads started with ``_thread.start_new_thread`` (unknown to :mod:`threading`)
    open a portal, make a call and close their manager without the bridge ever calling
    ``threading.current_thread()`` for them, which would register a ``_DummyThread``
    that outlives the thread.
    """
    import _thread

    count = 8
    done = [threading.Event() for _ in range(count)]
    outcomes: list[tuple[int, int, bool]] = []
    idents: list[int] = []

    def raw(index: int) -> None:
        manager = ab.PortalManager()
        try:
            result = ab.run_sync(double, index, backend=portal_backend, manager=manager)
            manager.close()
            ident = threading.get_ident()
            idents.append(ident)
            phantom = any(thread.ident == ident for thread in threading.enumerate())
            outcomes.append((index, result, phantom))
        finally:
            done[index].set()

    for index in range(count):
        _thread.start_new_thread(raw, (index,))
    assert all(event.wait(10) for event in done)
    assert sorted(outcomes) == [(index, 2 * index, False) for index in range(count)]
    dummies = [
        thread
        for thread in threading.enumerate()
        if type(thread).__name__ == "_DummyThread" and thread.ident in idents
    ]
    assert dummies == []


NEW_CALL_AFTER_THE_EXIT_HOOK = """
    import atexit, sys, threading, time

    backend, opened = sys.argv[1:3]
    release = threading.Event()

    def parked_or_gone(thread):
        # The thread ended, or is blocked in a wait called from agentbridge (parked).
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if "agentbridge" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return not thread.is_alive()

    def release_after_the_bridge_closed():
        release.set()
        deadline = time.monotonic() + 10
        while not parked_or_gone(late) and time.monotonic() < deadline:
            time.sleep(0.005)
        print("late caller parked or gone", flush=True)

    # Registered before agentbridge is imported: it runs after the bridge's exit hook.
    atexit.register(release_after_the_bridge_closed)

    import agentbridge as ab

    async def one():
        return 1

    def late_caller():
        if opened == "opened":
            ab.run_sync(one, backend=backend)  # its portal is closed by the exit hook
        release.wait()
        ab.run_sync(one, backend=backend)

    late = threading.Thread(target=late_caller, daemon=True)
    late.start()
    print("main done", flush=True)
"""


@pytest.mark.parametrize("opened", ["first-call", "opened"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_new_call_from_a_daemon_thread_after_the_exit_hook_is_quiet(
    backend: str, opened: str
) -> None:
    """A daemon thread that starts a call only after the bridge's exit hook has closed
    the portals (its first call, or one on its closed portal) stays parked quietly, as
    a daemon thread already waiting does: exit status 0, nothing on stderr.
    """
    outcome = run_snippet(NEW_CALL_AFTER_THE_EXIT_HOOK, args=[backend, opened], timeout=20)
    assert outcome.lines == ["main done", "late caller parked or gone"], outcome.describe()
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
