"""sync_context and a context manager cancelled from inside, while the block still runs.

Its own deadline expires, or a task group it opened fails: the ``with`` statement
raises the context manager's own outcome (the deadline's TimeoutError, the group's
ExceptionGroup), as ``async with`` would, never PortalClosedError; and on the host-loop
path (the context runs detached on the worker's own loop, on trio as a system task)
the host loop survives.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import agentbridge as ab

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.timeout(30)


class ChildFailed(Exception):
    """Raised by a task of the context manager's task group."""


@asynccontextmanager
async def own_deadline(exited: threading.Event) -> AsyncIterator[str]:
    try:
        # The scenario: a deadline far shorter than the block (which waits for `exited`).
        with anyio.fail_after(0.05):
            yield "entered"
    finally:
        exited.set()


@asynccontextmanager
async def failing_group(exited: threading.Event) -> AsyncIterator[str]:
    async def child() -> None:
        await anyio.lowlevel.checkpoint()
        raise ChildFailed("child failed")

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(child)
            yield "entered"
    finally:
        exited.set()


CASES: dict[str, Callable[[threading.Event], AbstractAsyncContextManager[str]]] = {
    "own deadline": own_deadline,
    "failing task group": failing_group,
}


def use(case: str, **options: Any) -> BaseException | None:
    """Enter the context, wait in the block until it exited under us, leave the block."""
    exited = threading.Event()
    try:
        with ab.sync_context(CASES[case](exited), **options) as value:
            assert value == "entered"
            assert exited.wait(10), "the context manager was never cancelled"
    except BaseException as exc:
        return exc
    return None


def check_own_outcome(case: str, outcome: BaseException | None) -> None:
    assert not isinstance(outcome, ab.AgentBridgeError), repr(outcome)
    if case == "own deadline":
        assert type(outcome) is TimeoutError, repr(outcome)
    else:
        assert isinstance(outcome, ExceptionGroup), repr(outcome)
        assert [type(exc) for exc in outcome.exceptions] == [ChildFailed]


@pytest.mark.parametrize("case", list(CASES))
def test_portal_path_raises_the_context_managers_own_outcome(
    portal_backend: str, case: str
) -> None:
    check_own_outcome(case, use(case, backend=portal_backend))
    # The portal is still serving this thread.
    assert ab.run_sync(anyio.lowlevel.checkpoint, backend=portal_backend) is None


WORKERS = ("ab.to_thread", "anyio.to_thread", "trio.to_thread")


@pytest.mark.anyio
@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize("case", list(CASES))
async def test_host_loop_path_raises_it_and_the_host_survives(
    anyio_backend_name: str, worker: str, case: str
) -> None:
    if worker == "trio.to_thread":
        if anyio_backend_name != "trio":
            pytest.skip("trio.to_thread runs on trio only")
        import trio

        outcome = await trio.to_thread.run_sync(use, case)
    elif worker == "anyio.to_thread":
        outcome = await anyio.to_thread.run_sync(use, case)
    else:
        outcome = await ab.to_thread(use, case)
    check_own_outcome(case, outcome)
    # The host loop survived (a crashed trio run would not get here) and still works.
    await anyio.lowlevel.checkpoint()
    assert await ab.to_thread(ab.run_sync, anyio.lowlevel.checkpoint) is None
