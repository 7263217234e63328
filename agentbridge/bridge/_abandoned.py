"""Closing the async iterators that ``iterate_sync`` callers dropped or left open.

An async generator's cleanup (its ``finally`` blocks, which may await) only runs if
someone closes it on its loop. A caller who stops iterating early without closing,
or who keeps an iterator until the interpreter exits, leaves that to the loop's
async-generator hooks, and those do not suffice: trio runs the cleanup of a dropped
generator in a cancelled scope (its first ``await`` raises ``Cancelled``), and at exit
the portals are closed before the generators are finalised. So each started iterator
gets a :class:`Closer`, which closes it on its own loop, uncancelled, when its owner is
garbage collected, and just before the portals close at interpreter exit.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import sys
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from ._loops import start_detached, thread_safe_scheduler
from ._settings import resolve_cancel_grace

__all__ = ("Closer",)

_open: set[Closer] = set()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


class Closer:
    """Closes one started async iterator on its loop unless its owner did it first.

    Make it on the loop the iterator runs on, when the iterator is first advanced.
    """

    __slots__ = ("_call_soon", "_finalizer", "_iterator")

    def __init__(self, owner: object, iterator: AsyncIterator[Any]) -> None:
        _register_exit_hook()
        self._iterator = iterator
        self._call_soon = thread_safe_scheduler()
        self._finalizer = weakref.finalize(owner, self._close_dropped)
        self._finalizer.atexit = False  # exit has its own hook, run before the portals close
        _open.add(self)

    def running(self) -> bool:
        """Whether a call is advancing the iterator at this moment."""
        return bool(getattr(self._iterator, "ag_running", False))

    def detach(self) -> None:
        """The owner closed or exhausted the iterator: there is nothing left to do."""
        self._finalizer.detach()
        _open.discard(self)

    def _close_dropped(self) -> None:
        # Garbage collection, in whatever thread: schedule, never block.
        _open.discard(self)
        self.close_soon()

    def close_soon(self) -> concurrent.futures.Future[None]:
        """Start closing the iterator on its loop; the future completes when it is closed."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        aclose = functools.partial(_aclose, self._iterator, done)
        try:
            self._call_soon(start_detached, aclose)
        except RuntimeError:  # its loop has stopped, and closed it on the way out
            done.set_result(None)
        return done


async def _aclose(iterator: AsyncIterator[Any], done: concurrent.futures.Future[None]) -> None:
    # Runs detached (a system task on trio): it must not raise.
    try:
        await iterator.aclose()  # type: ignore[attr-defined]
    except Exception:
        import traceback  # only here: nothing else of the bridge needs it

        print(f"Exception ignored while closing {iterator!r}:", file=sys.stderr)
        traceback.print_exc()
    finally:
        done.set_result(None)


def _register_exit_hook() -> None:
    # Registered on first use, so after the portal manager's own hook (registered when
    # it was imported): atexit runs the later one first, while the portals still work.
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            atexit.register(_close_open_at_exit)
            _exit_hook_registered = True


def _close_open_at_exit() -> None:
    waiting = []
    for closer in list(_open):
        closer.detach()
        if not closer.running():
            # One still running belongs to a call the portal's closing will cancel.
            waiting.append(closer.close_soon())
    concurrent.futures.wait(waiting, timeout=resolve_cancel_grace())
