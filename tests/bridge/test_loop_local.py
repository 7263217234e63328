"""``loop_local``: one instance per loop, made on first use there, closed when that loop's
portal stops (thread exit, close(), interpreter exit, a plain asyncio.run/trio.run)."""

from __future__ import annotations

import concurrent.futures
import threading

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._subproc import run_snippet

pytestmark = pytest.mark.timeout(30)


class Resource:
    """A loop-bound resource that records where it was made and whether it was closed."""

    def __init__(self) -> None:
        self.loop = anyio.lowlevel.current_token().native_token
        self.closed = threading.Event()
        self.closed_on: object = None

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # a real close awaits: it must be allowed to
        self.closed_on = anyio.lowlevel.current_token().native_token
        self.closed.set()


def test_one_instance_per_loop_made_on_that_loop(portal_backend: str) -> None:
    resources = ab.loop_local(Resource)

    async def mine() -> tuple[Resource, object]:
        return resources.get(), anyio.lowlevel.current_token().native_token

    first, loop = ab.run_sync(mine, backend=portal_backend)
    again, _ = ab.run_sync(mine, backend=portal_backend)
    assert again is first
    assert first.loop is loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other, _ = pool.submit(ab.run_sync, mine, backend=portal_backend).result()
    assert other is not first, "another thread's portal has its own instance"


def test_closed_when_its_threads_portal_stops(portal_backend: str) -> None:
    resources = ab.loop_local(Resource)

    async def use() -> Resource:
        return resources.get()

    made: list[Resource] = []
    thread = threading.Thread(target=lambda: made.append(ab.run_sync(use, backend=portal_backend)))
    thread.start()
    thread.join()
    assert made[0].closed.wait(10), "the thread ended, its portal stopped: the resource closes"
    assert made[0].closed_on is made[0].loop, "closed on its own loop"
    assert len(resources) == 0


def test_closed_by_manager_close_and_by_a_shared_portals_close(portal_backend: str) -> None:
    resources = ab.loop_local(Resource)

    async def use() -> Resource:
        return resources.get()

    manager = ab.PortalManager()
    on_thread_portal = ab.run_sync(use, backend=portal_backend, manager=manager)
    manager.close()
    assert on_thread_portal.closed.is_set(), "close() waits for the loop, so for the cleanup"

    portal = ab.open_portal(portal_backend, name="loop-local")
    shared = portal.run_sync(use)
    portal.close()
    assert shared.closed.is_set()


def test_closed_when_a_plain_run_ends(portal_backend: str) -> None:
    resources = ab.loop_local(Resource)

    async def main() -> Resource:
        return resources.get()

    made = anyio.run(main, backend=portal_backend)
    assert made.closed.is_set()


def test_a_given_closer_is_used() -> None:
    closed: list[object] = []
    resources = ab.loop_local(object, close=closed.append)

    async def use() -> object:
        return resources.get()

    made = anyio.run(use)
    assert closed == [made]


def test_get_outside_a_loop_is_an_error() -> None:
    with pytest.raises(ab.BridgeUsageError, match="inside a coroutine"):
        ab.loop_local(Resource).get()
    with pytest.raises(ab.BridgeUsageError, match="callable"):
        ab.loop_local(42)  # type: ignore[arg-type]


def test_closed_at_interpreter_exit(portal_backend: str) -> None:
    outcome = run_snippet(
        f"""
        import atexit
        import agentbridge as ab

        class Resource:
            async def aclose(self):
                import anyio
                await anyio.sleep(0)
                print("closed", flush=True)

        resources = ab.loop_local(Resource)

        async def use():
            resources.get()

        ab.run_sync(use, backend={portal_backend!r})
        portal = ab.open_portal({portal_backend!r}, name="exit")
        portal.run_sync(use)
        print("exiting", flush=True)
        """,
        flags=["-W", "error"],
    )
    assert outcome.returncode == 0, outcome.describe()
    # Two loops close theirs at once: their lines may interleave, so count the words.
    assert outcome.lines[0] == "exiting", outcome.describe()
    assert outcome.stdout.count("closed") == 2, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
