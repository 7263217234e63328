"""``loop_local``: one instance of a resource per event loop, closed with its loop.

The way to keep "one client" in a threaded program under per-thread portals: each
loop gets its own instance, made the first time a coroutine on that loop asks for it,
and closed when that loop shuts down (its portal's thread ended, the portal was
closed, the interpreter exits), so no transport is left open at exit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._exceptions import BridgeUsageError
from ._loops import loop_key, on_loop_exit, running_library

__all__ = ("LoopLocal", "loop_local")

T = TypeVar("T")


class LoopLocal(Generic[T]):
    """One instance of a resource per event loop; see :func:`loop_local`.

    .. versionadded:: 0.3
    """

    __slots__ = ("_close", "_factory", "_instances")

    def __init__(self, factory: Callable[[], T], close: Callable[[T], Any] | None) -> None:
        self._factory = factory
        self._close = close
        self._instances: dict[object, T] = {}

    def get(self) -> T:
        """This loop's instance, made now if it has none yet. Call it in async code, on
        the loop that will use the instance.

        :raises BridgeUsageError: if no event loop runs in this thread
        """
        if running_library() is None:
            raise BridgeUsageError(
                "loop_local(...).get() returns the instance of the event loop running the "
                "caller, and none runs in this thread; call it inside a coroutine (the one "
                "run_sync runs)"
            )
        key = loop_key()
        try:
            return self._instances[key]
        except KeyError:
            pass
        instance = self._instances[key] = self._factory()
        on_loop_exit(lambda: self._close_instance(key))
        return instance

    def __len__(self) -> int:
        """How many loops hold an instance now."""
        return len(self._instances)

    async def _close_instance(self, key: object) -> None:
        # Runs as the loop shuts down, in a task that must not raise.
        instance = self._instances.pop(key)
        try:
            if self._close is not None:
                outcome = self._close(instance)
            else:
                closer = getattr(instance, "aclose", None) or getattr(instance, "close", None)
                outcome = None if closer is None else closer()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            import sys
            import traceback  # only here: nothing else of the bridge needs it

            print(f"Exception ignored while closing {instance!r}:", file=sys.stderr)
            traceback.print_exc()


def loop_local(
    factory: Callable[[], T], *, close: Callable[[T], Any] | None = None
) -> LoopLocal[T]:
    """Give each event loop its own instance of a resource, closed when that loop ends.

    ``factory()`` makes the instance, the first time :meth:`LoopLocal.get` is called on
    a loop; it is called in that loop's thread, inside its coroutine, so a loop-bound
    object (``httpx.AsyncClient``, a database pool) binds to the loop that uses it::

        clients = ab.loop_local(httpx.AsyncClient)

        async def fetch(url: str) -> bytes:
            return (await clients.get().get(url)).content

        ab.run_sync(fetch, url)  # from any thread: each portal has its own client

    When the loop shuts down (a per-thread portal when its thread ends, any portal on
    :meth:`~agentbridge.PortalManager.close` or at interpreter exit, an ``asyncio.run``
    or ``trio.run`` as it returns), its instance is closed: ``close(instance)`` if
    given, else its ``aclose()`` or ``close()`` method, awaited if it returns an
    awaitable.

    :param factory: makes one instance; no arguments (use :func:`functools.partial`)
    :param close: closes one instance (a function or a coroutine function)

    .. versionadded:: 0.3
    """
    if not callable(factory):
        raise BridgeUsageError(
            f"loop_local() needs a callable that makes the resource, got {factory!r}"
        )
    return LoopLocal(factory, close)
