"""Running an asyncio-only framework from a run on any loop.

On asyncio (uvloop included) the framework's coroutine is awaited where the run is. On
trio it runs on the bridge's asyncio portal of the run's thread: one asyncio loop in its
own thread, opened on first use and kept for the thread's life, so every asyncio-only
step of a trio run shares one loop (and what it binds to it). The run's loop waits
without a thread: the task's end wakes it through the bridge's thread-safe scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import sniffio
from anyio import get_cancelled_exc_class

from .._exceptions import PortalClosedError
from ..bridge import get_portal_manager
from ..bridge._loops import thread_safe_scheduler
from ..bridge._settings import resolve_cancel_grace

__all__ = ("on_asyncio",)

T = TypeVar("T")


async def on_asyncio(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """``await fn(*args, **kwargs)`` on an asyncio loop: this one, or on trio the bridge's
    asyncio portal of this thread.

    Cancelling the caller cancels the coroutine on the portal and waits (up to the
    bridge's cancel grace) for it to finish its cleanup, so a cancelled step has ended
    when it is recorded as cancelled.
    """
    if sniffio.current_async_library() == "asyncio":
        return await fn(*args, **kwargs)
    portal = get_portal_manager().portal("asyncio")
    schedule = thread_safe_scheduler()
    done = anyio.Event()  # the future has its outcome
    finished = anyio.Event()  # the coroutine has returned or raised, cleanup included

    def wake(event: anyio.Event) -> None:
        try:
            schedule(event.set)
        except RuntimeError:  # the run's loop has ended: nobody waits any more
            pass

    async def watched() -> T:
        try:
            return await fn(*args, **kwargs)
        finally:
            wake(finished)

    future = portal.start_task_soon(watched)
    future.add_done_callback(lambda _: wake(done))
    try:
        await done.wait()
    except get_cancelled_exc_class():
        if future.cancel():  # a cancelled future is done at once; its task is not
            with anyio.move_on_after(resolve_cancel_grace(), shield=True):
                await finished.wait()
        raise
    if future.cancelled():
        raise PortalClosedError(
            f"the bridge's asyncio portal closed while {_name(fn)} ran on it (the "
            f"interpreter is exiting, or its portals were closed)"
        )
    return future.result()


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__
