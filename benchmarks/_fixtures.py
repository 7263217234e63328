"""What the benchmark cases share: the no-op work, event loops kept running, host loops.

The work is always a no-op (a coroutine that returns without suspending, a function
that returns at once), so only the machinery around it is timed.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio.from_thread
from _harness import REWARM_SECONDS, Runner, Subject, Unavailable

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = (
    "Build",
    "agentbridge_api",
    "asyncio_loop_thread",
    "hosted_subject",
    "noop",
    "portal",
    "require",
    "sync_noop",
)

#: Given the number of operations, prepares them once (a graph, a function to call) and
#: returns the coroutine function that performs them all; called once per round.
Build = Callable[[int], Callable[[], Awaitable[object]]]


async def noop() -> None:
    """The coroutine every sync-to-async hop awaits: it returns without suspending."""


def sync_noop() -> None:
    """The function every offload runs."""


def agentbridge_api(name: str) -> Any:
    """``agentbridge.<name>``, or :class:`Unavailable` while it is not written yet."""
    try:
        import agentbridge
    except ImportError as exc:
        raise Unavailable(f"agentbridge not importable: {exc}") from None
    try:
        return getattr(agentbridge, name)
    except AttributeError:
        raise Unavailable(f"agentbridge.{name} missing") from None


def require(module: str) -> Any:
    """Import an optional benchmark dependency, or raise :class:`Unavailable`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Unavailable(f"{module} not installed") from None


@contextmanager
def asyncio_loop_thread(use_uvloop: bool = False) -> Iterator[asyncio.AbstractEventLoop]:
    """A persistent asyncio (or uvloop) loop running forever in a daemon thread."""
    if use_uvloop:
        loop: asyncio.AbstractEventLoop = require("uvloop").new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def portal(backend: str = "asyncio") -> AbstractContextManager[BlockingPortal]:
    """An anyio blocking portal; ``"uvloop"`` is asyncio with ``use_uvloop``."""
    if backend == "uvloop":
        require("uvloop")
        return anyio.from_thread.start_blocking_portal("asyncio", {"use_uvloop": True})
    return anyio.from_thread.start_blocking_portal(backend)


def hosted_subject(key: str, label: str, backend: str, build: Build) -> Subject:
    """A subject whose operations run as async code on a ``backend`` host loop.

    The host loop (an anyio portal's) stays up across rounds, so its worker-thread pool
    stays warm as in a long-running application; each round runs a smaller batch
    untimed for :data:`~_harness.REWARM_SECONDS`, then times ``await run()`` on the
    loop itself.
    """

    @contextmanager
    def factory(ops: int) -> Iterator[Runner]:
        with portal(backend) as host:
            run = build(ops)
            warm = build(min(ops, 100))

            async def timed() -> float:
                # As simple_runner does: the hops are slow for a while after idling.
                warm_until = time.perf_counter() + REWARM_SECONDS
                while time.perf_counter() < warm_until:
                    await warm()
                began = time.perf_counter()
                await run()
                return time.perf_counter() - began

            yield lambda: host.call(timed)

    return Subject(key, label, factory)
