"""to_thread, syncify/asyncify, iterate_sync, sync_context and contextvars."""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def read_request_id() -> str:
    return request_id.get()


async def change_request_id() -> str:
    request_id.set("changed-by-callee")
    return request_id.get()


# -- contextvars ---------------------------------------------------------------------------


def test_context_flows_into_run_sync_but_not_back(portal_backend: str) -> None:
    token = request_id.set("req-1")
    try:
        assert ab.run_sync(read_request_id, backend=portal_backend) == "req-1"
        assert ab.run_sync(change_request_id, backend=portal_backend) == "changed-by-callee"
        assert request_id.get() == "req-1", "callee changes must not flow back"
        # ContextVar.reset still works, which copy-back bridges break.
    finally:
        request_id.reset(token)


@pytest.mark.anyio
async def test_context_flows_through_to_thread_and_back_to_the_loop() -> None:
    request_id.set("req-2")

    def blocking() -> tuple[str, str]:
        return request_id.get(), ab.run_sync(read_request_id)

    assert await ab.to_thread(blocking) == ("req-2", "req-2")


@pytest.mark.anyio
async def test_context_flows_from_a_running_loop_to_the_portal(portal_backend: str) -> None:
    request_id.set("req-3")
    assert ab.run_sync(read_request_id, backend=portal_backend) == "req-3"


# -- to_thread -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_to_thread_runs_elsewhere_and_returns() -> None:
    here = threading.get_ident()
    result = await ab.to_thread(functools.partial(divmod, 17, b=5) if False else divmod, 17, 5)
    assert result == (3, 2)
    assert await ab.to_thread(threading.get_ident) != here


@pytest.mark.anyio
async def test_to_thread_honours_the_limiter() -> None:
    limiter = anyio.CapacityLimiter(1)
    active = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        with lock:
            active -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(functools.partial(ab.to_thread, work, limiter=limiter))
    assert peak == 1


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_nested_offloads_cannot_starve_the_default_pool() -> None:
    """More outer offloads than the pool holds, each re-entering the loop and offloading
    again: with one shared pool every token is held by a waiting thread and all stall."""
    tokens = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
    total = tokens + 5
    barrier = threading.Barrier(tokens, timeout=30)
    arrivals = iter(range(total))
    lock = threading.Lock()

    async def inner() -> int:
        return await ab.to_thread(lambda: 1)

    def outer() -> int:
        with lock:
            arrival = next(arrivals)
        if arrival < tokens:
            barrier.wait()  # the whole default pool is held by waiting threads at once
        return ab.run_sync(inner)

    results: list[int] = []

    async def one() -> None:
        results.append(await ab.to_thread(outer))

    with anyio.fail_after(45):
        async with anyio.create_task_group() as tg:
            for _ in range(total):
                tg.start_soon(one)
    assert results == [1] * total


# -- decorators ----------------------------------------------------------------------------


async def greet(name: str, *, punctuation: str = "!") -> str:
    """Say hello."""
    await anyio.lowlevel.checkpoint()
    return f"hello {name}{punctuation}"


def shout(name: str, *, times: int = 1) -> str:
    """Shout."""
    return name.upper() * times


def test_syncify_keeps_signature_and_forwards_keywords() -> None:
    blocking_greet = ab.syncify(greet)
    assert blocking_greet("ada", punctuation="?") == "hello ada?"
    assert inspect.signature(blocking_greet) == inspect.signature(greet)
    assert blocking_greet.__name__ == "greet"
    assert blocking_greet.__doc__ == "Say hello."


def test_syncify_with_options() -> None:
    slow = ab.syncify(timeout=0.05)(anyio.sleep_forever)
    with pytest.raises(ab.BridgeTimeoutError):
        slow()


@pytest.mark.anyio
async def test_asyncify_keeps_signature_and_runs_in_a_thread() -> None:
    async_shout = ab.asyncify(shout)
    assert await async_shout("hey", times=2) == "HEYHEY"
    assert inspect.signature(async_shout) == inspect.signature(shout)
    assert inspect.iscoroutinefunction(async_shout)
    where = ab.asyncify(threading.get_ident)
    assert await where() != threading.get_ident()


# -- iterate_sync and sync_context ----------------------------------------------------------


def test_iterate_sync_yields_every_item(portal_backend: str) -> None:
    async def numbers() -> AsyncIterator[int]:
        for n in range(4):
            await anyio.lowlevel.checkpoint()
            yield n

    assert list(ab.iterate_sync(numbers(), backend=portal_backend)) == [0, 1, 2, 3]


def test_iterate_sync_close_runs_the_generator_cleanup(portal_backend: str) -> None:
    cleaned = threading.Event()

    async def endless() -> AsyncIterator[int]:
        n = 0
        try:
            while True:
                yield n
                n += 1
        finally:
            cleaned.set()

    with ab.iterate_sync(endless(), backend=portal_backend) as items:
        assert next(items) == 0
        assert next(items) == 1
    assert cleaned.is_set()


def test_iterate_sync_refuses_plain_iterables() -> None:
    with pytest.raises(TypeError, match="for loop"):
        ab.iterate_sync([1, 2])  # type: ignore[arg-type]


class TaskGroupResource:
    """An async context manager whose enter and exit must run in the same task."""

    def __init__(self) -> None:
        self.exit_args: tuple[object, ...] = ()

    async def __aenter__(self) -> str:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return "resource"

    async def __aexit__(self, *exc_info: object) -> bool:
        self.exit_args = exc_info
        await self._tg.__aexit__(None, None, None)
        return exc_info[0] is KeyError


def test_sync_context_enters_and_exits_in_one_task(portal_backend: str) -> None:
    resource = TaskGroupResource()
    with ab.sync_context(resource, backend=portal_backend) as value:
        assert value == "resource"
    assert resource.exit_args == (None, None, None)


def test_sync_context_passes_the_exception_and_may_suppress_it(portal_backend: str) -> None:
    resource = TaskGroupResource()
    with ab.sync_context(resource, backend=portal_backend):
        raise KeyError("suppressed by __aexit__")
    assert resource.exit_args[0] is KeyError
    with pytest.raises(ValueError, match="kept"), ab.sync_context(TaskGroupResource()):
        raise ValueError("kept")


def test_sync_context_enter_failure_propagates(portal_backend: str) -> None:
    class Broken:
        async def __aenter__(self) -> None:
            raise ConnectionError("refused")

        async def __aexit__(self, *exc_info: object) -> None:
            raise AssertionError("never entered, never exited")

    with pytest.raises(ConnectionError), ab.sync_context(Broken(), backend=portal_backend):
        pass


@pytest.mark.anyio
async def test_sync_context_from_a_worker_thread_uses_the_host_loop() -> None:
    host = anyio.lowlevel.current_token().native_token

    class Where:
        async def __aenter__(self) -> object:
            return anyio.lowlevel.current_token().native_token

        async def __aexit__(self, *exc_info: object) -> None:
            return None

    def blocking() -> object:
        with ab.sync_context(Where()) as token:
            return token

    assert await ab.to_thread(blocking) is host


def test_sync_context_refuses_sync_context_managers() -> None:
    with pytest.raises(TypeError, match="async context manager"):
        ab.sync_context(open)  # type: ignore[arg-type]
