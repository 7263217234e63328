"""A cancellation exception the coroutine itself raises is its outcome, like any other.

Only the portal's own shutdown is reported as :class:`~agentbridge.PortalClosedError`.
A coroutine can end with a cancellation exception that no one aimed at its call: it
awaits an asyncio task that someone else cancelled, raises ``CancelledError`` itself,
or (on trio) re-raises a ``Cancelled`` it caught from an inner scope. The caller gets
that exception, and the portal, which did not stop, keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def loop_identity() -> object:
    return anyio.lowlevel.current_token().native_token


async def awaits_a_task_cancelled_elsewhere() -> None:
    task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    await asyncio.sleep(0)
    task.cancel()
    await task


async def raises_cancelled_error() -> None:
    raise asyncio.CancelledError("raised by the coroutine")


async def reraises_a_caught_cancellation() -> None:
    # The only way to hold a trio.Cancelled (its constructor is private): catch it from
    # a scope of one's own, and raise it again outside that scope.
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class() as exc:
            caught = exc
    raise caught


@pytest.mark.parametrize(
    ("backend", "coroutine", "expected"),
    [
        pytest.param(
            "asyncio", awaits_a_task_cancelled_elsewhere, asyncio.CancelledError, id="asyncio-task"
        ),
        pytest.param("asyncio", raises_cancelled_error, asyncio.CancelledError, id="asyncio-raise"),
        pytest.param(
            "asyncio", reraises_a_caught_cancellation, asyncio.CancelledError, id="asyncio-reraise"
        ),
        pytest.param("trio", raises_cancelled_error, asyncio.CancelledError, id="trio-raise"),
        pytest.param("trio", reraises_a_caught_cancellation, None, id="trio-reraise"),
    ],
)
def test_own_cancellation_reaches_the_caller_and_the_portal_lives_on(
    backend: str, coroutine: Any, expected: type[BaseException] | None
) -> None:
    manager = ab.PortalManager()
    try:
        before = ab.run_sync(loop_identity, backend=backend, manager=manager)
        if expected is None:
            import trio

            expected = trio.Cancelled
        with pytest.raises(expected) as info:
            ab.run_sync(coroutine, backend=backend, manager=manager)
        assert not isinstance(info.value, ab.PortalClosedError)
        if coroutine is raises_cancelled_error:
            assert str(info.value) == "raised by the coroutine"
        assert ab.run_sync(loop_identity, backend=backend, manager=manager) is before
        assert manager.open_portals == 1
    finally:
        manager.close()


def test_own_cancellation_from_a_worker_thread_reaches_it(anyio_backend_name: str) -> None:
    """The same from a worker thread going back to its host loop (no portal)."""

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError, match="raised by the coroutine"):
            await ab.to_thread(ab.run_sync, raises_cancelled_error)
        with pytest.raises(asyncio.CancelledError, match="raised by the coroutine"):
            await ab.to_thread(functools.partial(ab.run_sync, raises_cancelled_error, timeout=10))

    anyio.run(main, backend=anyio_backend_name)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_call_that_outlives_the_portal_shutdown_gets_portal_closed(backend: str) -> None:
    """The real shutdown: a coroutine that ignores the cancellation for the whole grace
    period is cancelled with its loop's own cancellation, and its caller gets
    :class:`~agentbridge.PortalClosedError`.
    """
    ab.configure(cancel_grace=0.05)
    manager = ab.PortalManager()
    started, outcome = threading.Event(), []

    async def ignores_cancellation() -> None:
        with anyio.CancelScope(shield=True):
            started.set()
            for _ in range(20):  # stubborn for longer than the grace, but bounded
                await anyio.sleep(0.01)
        await anyio.lowlevel.checkpoint()  # where the loop's own cancellation lands

    def caller() -> None:
        try:
            ab.run_sync(ignores_cancellation, backend=backend, manager=manager)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(10)
    manager.close(timeout=10)
    thread.join(10)
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], ab.PortalClosedError), outcome
