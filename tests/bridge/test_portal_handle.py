"""Portal handles: a shared portal (open_portal), a handle on the running loop
(current_portal) and the process portal scope, each with run_sync's full semantics."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import signal
import threading
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import agentbridge as ab

from ._subproc import run_snippet

pytestmark = pytest.mark.timeout(30)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def thread_name() -> str:
    return threading.current_thread().name


async def loop_token() -> object:
    return anyio.lowlevel.current_token().native_token


async def read_request_id() -> str:
    return request_id.get()


async def fail_deep() -> None:
    raise ValueError("deep failure")


async def raise_base(exc: BaseException) -> None:
    raise exc


@pytest.fixture
def portal(portal_backend: str) -> ab.Portal:
    with ab.open_portal(portal_backend, name="test") as handle:
        yield handle


# --- a shared portal -------------------------------------------------------------------


def test_every_thread_runs_on_the_one_shared_loop(portal: ab.Portal, portal_backend: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: portal.run_sync(loop_token), range(64)))
        names = set(pool.map(lambda _: portal.run_sync(thread_name), range(16)))
    assert len(tokens) == 1
    assert names == {f"agentbridge-portal-{portal_backend}-test"} == {portal.name}
    assert portal.backend == portal_backend


def test_timeout_cancels_the_coroutine(portal: ab.Portal) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with pytest.raises(ab.BridgeTimeoutError):
        portal.run_sync(forever, timeout=0.1)
    assert cancelled.is_set(), "the coroutine was cancelled before the caller was told"


def test_exceptions_keep_their_traceback(portal: ab.Portal) -> None:
    with pytest.raises(ValueError, match="deep failure") as info:
        portal.run_sync(fail_deep)
    assert "fail_deep" in "".join(traceback.format_tb(info.value.__traceback__))


def test_context_variables_are_copied_in(portal: ab.Portal) -> None:
    token = request_id.set("r-42")
    try:
        assert portal.run_sync(read_request_id) == "r-42"
    finally:
        request_id.reset(token)


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_a_base_exception_reaches_the_caller_and_the_loop_lives(
    portal: ab.Portal, exc: BaseException
) -> None:
    first = portal.run_sync(loop_token)
    with pytest.raises(type(exc)):
        portal.run_sync(raise_base, exc)
    assert portal.run_sync(loop_token) is first


def test_ctrl_c_cancels_the_call_and_waits_for_its_cleanup(portal: ab.Portal) -> None:
    started = threading.Event()
    cleaned = threading.Event()

    async def slow_cleanup() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
            cleaned.set()

    def interrupt_when_started() -> None:
        assert started.wait(10)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_when_started)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            portal.run_sync(slow_cleanup)
    finally:
        killer.join()
    assert cleaned.is_set(), "Ctrl-C returned before the shielded cleanup ran"
    assert portal.run_sync(thread_name) == portal.name


def test_adapters_run_on_the_portal(portal: ab.Portal) -> None:
    async def names() -> AsyncIterator[str]:
        for _ in range(2):
            yield threading.current_thread().name

    @asynccontextmanager
    async def context() -> AsyncIterator[str]:
        yield threading.current_thread().name

    @portal.syncify
    async def add(a: int, b: int = 0) -> tuple[int, str]:
        return a + b, threading.current_thread().name

    def from_a_thread() -> tuple[list[str], str, tuple[int, str]]:
        with portal.iterate_sync(names()) as items, portal.sync_context(context()) as entered:
            return list(items), entered, add(1, b=2)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        items, entered, added = pool.submit(from_a_thread).result()
    assert items == [portal.name, portal.name]
    assert entered == portal.name
    assert added == (3, portal.name)


def test_run_in_loop_runs_a_plain_function_in_the_loop_thread(portal: ab.Portal) -> None:
    def where(suffix: str) -> str:
        return threading.current_thread().name + suffix

    assert portal.run_in_loop(where, "!") == portal.name + "!"
    with pytest.raises(ZeroDivisionError):
        portal.run_in_loop(lambda: 1 / 0)
    with pytest.raises(ab.AsyncCallableError, match="loop thread"):
        portal.run_in_loop(thread_name)  # type: ignore[arg-type]


def test_a_call_from_the_portals_own_loop_is_refused(portal: ab.Portal) -> None:
    async def nested() -> str:
        return portal.run_sync(thread_name)

    with pytest.raises(ab.BlockingCallError, match="wait for itself forever"):
        portal.run_sync(nested)


def test_close_refuses_later_calls_and_ends_the_thread(portal_backend: str) -> None:
    portal = ab.open_portal(portal_backend, name="closing")
    portal.run_sync(thread_name)
    portal.close()
    assert portal.closed
    assert portal.name not in {t.name for t in threading.enumerate()}
    with pytest.raises(ab.PortalClosedError, match="was closed"):
        portal.run_sync(thread_name)
    portal.close()  # twice: nothing


def test_a_portal_closed_by_its_manager_reopens(portal_backend: str) -> None:
    manager = ab.PortalManager()
    portal = ab.open_portal(portal_backend, name="reopen", manager=manager)
    first = portal.run_sync(loop_token)
    manager.close()
    assert portal.run_sync(loop_token) is not first
    assert portal.name == f"agentbridge-portal-{portal_backend}-reopen"
    manager.close()


def test_open_portal_checks_its_arguments() -> None:
    with pytest.raises(ab.ConfigurationError):
        ab.open_portal("curio")
    with pytest.raises(ab.BridgeUsageError, match="non-empty"):
        ab.open_portal(name="")


def test_shared_portal_is_closed_at_exit_and_reset_in_a_fork_child() -> None:
    outcome = run_snippet(
        """
        import os, threading, warnings
        import agentbridge as ab

        # Python 3.12+ warns that forking a multi-threaded process may deadlock; that
        # risk is exactly what this script checks.
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)

        async def token():
            import anyio.lowlevel
            return id(anyio.lowlevel.current_token().native_token)

        portal = ab.open_portal(name="forked")
        parent = portal.run_sync(token)
        pid = os.fork()
        if pid == 0:
            child = portal.run_sync(token)
            print("child-ok", portal.run_sync(token) == child, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent-ok", portal.run_sync(token) == parent)
        """
    )
    assert outcome.returncode == 0, outcome.describe()
    assert "child-ok True" in outcome.stdout
    assert "parent-ok True" in outcome.stdout
    assert outcome.stderr == "", outcome.describe()


# --- a handle on the running loop --------------------------------------------------------


@pytest.mark.anyio
async def test_current_portal_serves_foreign_threads(anyio_backend_name: str) -> None:
    portal = ab.current_portal()
    assert ab.current_portal() is portal, "one handle per loop"
    here = await loop_token()

    def foreign() -> tuple[object, str, str]:
        request_id.set("from-the-thread")  # the calling thread's context is copied in
        return (
            portal.run_sync(loop_token),
            portal.run_in_loop(lambda: threading.current_thread().name),
            portal.run_sync(read_request_id),
        )

    results: list[tuple[object, str, str]] = []
    thread = threading.Thread(target=lambda: results.append(foreign()))
    thread.start()
    await anyio.to_thread.run_sync(thread.join)
    assert results == [(here, threading.current_thread().name, "from-the-thread")]


@pytest.mark.anyio
async def test_current_portal_from_its_own_thread_is_an_error() -> None:
    portal = ab.current_portal()
    with pytest.raises(ab.BlockingCallError, match="wait for itself forever"):
        portal.run_sync(thread_name)


def test_current_portal_outside_async_code_is_an_error() -> None:
    with pytest.raises(ab.BridgeUsageError, match="in async code"):
        ab.current_portal()


def test_after_the_loop_ends_calls_are_refused(portal_backend: str) -> None:
    async def take() -> ab.Portal:
        return ab.current_portal()

    portal = anyio.run(take, backend=portal_backend)
    assert portal.closed
    for caller in (portal.run_sync, _in_a_thread(portal.run_sync)):
        with pytest.raises(ab.PortalClosedError):
            caller(thread_name)


def test_a_call_running_when_the_loop_ends_gets_portal_closed(portal_backend: str) -> None:
    started = threading.Event()
    told = threading.Event()
    outcome: list[BaseException] = []

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    async def main() -> None:
        portal = ab.current_portal()

        def call() -> None:
            try:
                portal.run_sync(forever)
            except BaseException as exc:
                outcome.append(exc)
                told.set()

        threading.Thread(target=call, daemon=True).start()
        await anyio.to_thread.run_sync(started.wait)

    anyio.run(main, backend=portal_backend)
    assert told.wait(10), "the caller was never told"
    assert isinstance(outcome[0], ab.PortalClosedError), outcome


def _in_a_thread(fn):  # type: ignore[no-untyped-def]
    def call(*args):  # type: ignore[no-untyped-def]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(fn, *args).result()

    return call


# --- the process scope -------------------------------------------------------------------


def test_process_scope_serves_every_thread_from_one_portal(portal_backend: str) -> None:
    ab.configure(portal_scope="process", backend=portal_backend)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        names = set(pool.map(lambda _: ab.run_sync(thread_name), range(32)))
    assert names == {f"agentbridge-portal-{portal_backend}-process"}


def test_process_scope_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBRIDGE_PORTAL_SCOPE", "process")
    assert ab.run_sync(thread_name) == "agentbridge-portal-asyncio-process"
    monkeypatch.setenv("AGENTBRIDGE_PORTAL_SCOPE", "global")
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_PORTAL_SCOPE='global'"):
        ab.run_sync(thread_name)


def test_process_scope_is_validated_by_configure() -> None:
    with pytest.raises(ab.ConfigurationError, match="portal_scope"):
        ab.configure(portal_scope="global")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_process_scope_leaves_workers_on_their_host_loop() -> None:
    ab.configure(portal_scope="process")
    here = await loop_token()
    assert await ab.to_thread(ab.run_sync, loop_token) is here


def test_process_scope_nested_call_on_the_shared_loop_still_works() -> None:
    ab.configure(portal_scope="process")

    async def nested() -> str:
        return ab.run_sync(thread_name)  # rule 3, on the shared loop's thread

    assert ab.run_sync(nested) != "agentbridge-portal-asyncio-process"


async def _unused() -> None:  # keeps asyncio imported for the loop checks
    await asyncio.sleep(0)
