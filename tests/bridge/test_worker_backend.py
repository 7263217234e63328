"""Worker threads: ``backend=`` naming the other library runs on the thread's portal of
that backend (item 4); ``run_in_loop`` runs a plain function in the loop thread (item 5)."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def library_and_thread() -> tuple[str, str]:
    return sniffio.current_async_library(), threading.current_thread().name


async def asyncio_only() -> str:
    import asyncio

    loop = asyncio.get_running_loop()  # raises "no running event loop" off asyncio
    future = loop.create_future()
    loop.call_soon(future.set_result, "asyncio-only ran")
    return await future


def test_trio_worker_with_backend_asyncio_runs_on_an_asyncio_portal() -> None:
    import trio

    async def main() -> tuple[str, tuple[str, str], tuple[str, str]]:
        def blocking() -> tuple[str, tuple[str, str], tuple[str, str]]:
            return (
                ab.run_sync(asyncio_only, backend="asyncio"),
                ab.run_sync(library_and_thread, backend="asyncio"),
                ab.run_sync(library_and_thread),  # no backend=: back to the host loop
            )

        return await trio.to_thread.run_sync(blocking)

    ran, named, default = trio.run(main)
    assert ran == "asyncio-only ran"
    assert named[0] == "asyncio"
    assert named[1].startswith("agentbridge-portal-asyncio-for-")
    assert default == ("trio", "MainThread")


@pytest.mark.anyio
async def test_worker_naming_the_other_library_leaves_its_host(anyio_backend_name: str) -> None:
    other = "asyncio" if anyio_backend_name == "trio" else "trio"

    def blocking() -> tuple[tuple[str, str], tuple[str, str]]:
        return ab.run_sync(library_and_thread, backend=other), ab.run_sync(library_and_thread)

    named, default = await ab.to_thread(blocking)
    assert named[0] == other
    assert named[1].startswith(f"agentbridge-portal-{other}-for-")
    assert default == (anyio_backend_name, threading.current_thread().name)


def test_uvloop_from_an_asyncio_worker_is_its_host() -> None:
    """uvloop is an asyncio loop: an asyncio host runs what names it."""

    async def main() -> tuple[str, tuple[str, str], tuple[str, str]]:
        here = threading.current_thread().name
        named = await ab.to_thread(lambda: ab.run_sync(library_and_thread, backend="uvloop"))
        return here, named, await ab.to_thread(ab.run_sync, library_and_thread)

    here, named, default = anyio.run(main, backend="asyncio")
    assert named == default == ("asyncio", here)


# --- item 5: a plain function in the loop thread -------------------------------------------


def current_name(suffix: str = "") -> str:
    return threading.current_thread().name + suffix


@pytest.mark.anyio
async def test_run_in_loop_from_a_worker_runs_in_the_host_loop_thread() -> None:
    here = threading.current_thread().name
    assert await ab.to_thread(ab.run_in_loop, current_name, "!") == here + "!"
    assert await anyio.to_thread.run_sync(ab.run_in_loop, current_name) == here


@pytest.mark.anyio
async def test_run_in_loop_raises_what_the_function_raises() -> None:
    def broken() -> None:
        raise LookupError("in the loop thread")

    with pytest.raises(LookupError, match="in the loop thread"):
        await ab.to_thread(ab.run_in_loop, broken)


def test_run_in_loop_from_a_plain_thread_runs_in_its_portal_thread(portal_backend: str) -> None:
    name = ab.run_in_loop(current_name, backend=portal_backend)
    assert name == ab.run_sync(library_and_thread, backend=portal_backend)[1]
    assert name.startswith(f"agentbridge-portal-{portal_backend}-for-")


def test_run_in_loop_refuses_an_async_function() -> None:
    with pytest.raises(ab.AsyncCallableError, match="await it directly"):
        ab.run_in_loop(library_and_thread)  # type: ignore[arg-type]
