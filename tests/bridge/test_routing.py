"""The routing rules: worker threads go home, running loops use another thread."""

from __future__ import annotations

import threading
import warnings

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import agentbridge as ab

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def token() -> object:
    return anyio.lowlevel.current_token().native_token


async def thread_name() -> str:
    return threading.current_thread().name


async def test_worker_thread_goes_back_to_its_host_loop(anyio_backend_name: str) -> None:
    host = await token()
    opened = ab.get_portal_manager().open_portals

    def blocking() -> tuple[object, object]:
        # Naming the host loop's own library still goes back to it (the other library
        # cannot run there: see test_affinity's backend tests).
        return ab.run_sync(token), ab.run_sync(token, backend=anyio_backend_name)

    via_ab, explicit_backend = await ab.to_thread(blocking)
    via_anyio, _ = await anyio.to_thread.run_sync(blocking)
    assert via_ab is host
    assert via_anyio is host
    assert explicit_backend is host, "a worker naming its host's library goes back to it"
    assert ab.get_portal_manager().open_portals == opened, "no portal may be opened"


def test_trio_worker_thread_goes_back_to_trio() -> None:
    """A thread from trio.to_thread.run_sync (not anyio's) is found through trio's API."""
    import trio

    async def current() -> object:
        return trio.lowlevel.current_trio_token()

    async def main() -> tuple[object, object]:
        host = trio.lowlevel.current_trio_token()
        return host, await trio.to_thread.run_sync(lambda: ab.run_sync(current))

    host, seen = trio.run(main)
    assert seen is host


async def test_host_cancellation_reaches_the_worker_thread() -> None:
    entered = threading.Event()
    seen: list[str] = []

    def blocking() -> None:
        entered.set()
        while True:
            try:
                ab.check_cancelled()
            except BaseException:
                seen.append("cancelled")
                raise
            threading.Event().wait(0.01)

    with anyio.move_on_after(5) as outer:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ab.to_thread, blocking)
            await anyio.to_thread.run_sync(entered.wait)
            tg.cancel_scope.cancel()
    assert not outer.cancelled_caught
    assert seen == ["cancelled"]


def test_check_cancelled_outside_a_worker_thread_is_a_no_op() -> None:
    ab.check_cancelled()


async def test_running_loop_call_runs_on_another_thread(portal_backend: str) -> None:
    here = threading.current_thread().name
    assert ab.is_async_context()
    there = ab.run_sync(thread_name, backend=portal_backend)
    assert there != here
    assert there.startswith("agentbridge-portal-")


async def test_policy_warn_names_the_async_alternative() -> None:
    with pytest.warns(ab.BlockingCallWarning, match=r"await thread_name"):
        assert ab.run_sync(thread_name, on_running_loop="warn")


async def test_policy_raise_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    coro = thread_name()
    with pytest.raises(ab.BlockingCallError, match="await"):
        ab.run_sync(coro, on_running_loop="raise")
    assert coro.cr_frame is None
    monkeypatch.setenv("AGENTBRIDGE_ON_RUNNING_LOOP", "raise")
    with pytest.raises(ab.BlockingCallError):
        ab.run_sync(thread_name)
    ab.configure(on_running_loop="thread")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ab.run_sync(thread_name)


async def test_is_async_context_is_false_in_worker_threads() -> None:
    assert await ab.to_thread(ab.is_async_context) is False


def test_is_async_context_is_false_in_plain_code() -> None:
    assert ab.is_async_context() is False
