"""Ctrl-C at every point of a blocking call, one point at a time.

:class:`~tests.bridge._interrupts.InterruptAt` raises ``KeyboardInterrupt`` at the n-th
point of ``run_sync`` where Python can deliver a SIGINT. Sweeping n over the whole call
hits every window on purpose: before the coroutine exists, between its creation and
the hand-off, inside the hand-off, while waiting for the result, and, for a thread's
first call, while its portal starts. Whatever the point, the caller gets
``KeyboardInterrupt`` only once the coroutine can no longer run (never started, or
cancelled and finished), no coroutine is left un-awaited, and no portal thread is left
running outside its manager.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._interrupts import InterruptAt

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.version_info < (3, 11), reason="signal check points of 3.11+"),
]

#: More points than any call passes; the sweep stops at the first n past the end.
MAX_POINTS = 2000


class Coroutine:
    """What one coroutine did, as seen from the caller."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.caller_interrupted = False
        self.started_after_interrupt = False

    async def run(self) -> int:
        self.started = True
        self.started_after_interrupt = self.caller_interrupted
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return 42
        finally:
            self.finished = True

    def running(self) -> bool:
        return self.started and not self.finished


def target(kind: str, coroutine: Coroutine) -> tuple[Any, tuple[Any, ...]]:
    """``fn, args`` for ``run_sync`` in each form it accepts."""
    if kind == "function":
        return coroutine.run, ()
    if kind == "partial":
        return functools.partial(coroutine.run), ()
    return coroutine.run(), ()


async def loop_identity() -> object:
    return anyio.lowlevel.current_token().native_token


async def settle() -> None:
    """Return once every other task of the loop is blocked (or gone)."""
    await anyio.wait_all_tasks_blocked()


def portal_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("agentbridge-portal-")}


def interrupted_calls(
    backend: str, kind: str, manager_for: Callable[[int], ab.PortalManager]
) -> Iterator[tuple[InterruptAt, Coroutine, ab.PortalManager]]:
    """Make one call per point n, interrupted there; yield what happened after each.

    No warning may be issued meanwhile: a coroutine dropped un-awaited warns as soon
    as its last reference goes, and a last collection at the end catches any left in
    a reference cycle.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, MAX_POINTS):
            manager = manager_for(n)
            coroutine = Coroutine()
            fn, args = target(kind, coroutine)
            point = InterruptAt(n, ab.__file__)
            try:
                with point:
                    result = ab.run_sync(fn, *args, backend=backend, manager=manager)
            except KeyboardInterrupt:
                coroutine.caller_interrupted = True
                assert point.fired
                assert not coroutine.running(), f"point {n}: the coroutine runs on"
            else:
                assert result == 42
            del fn, args
            yield point, coroutine, manager
            assert [str(w.message) for w in caught] == [], f"point {n}"
            if not point.fired:
                assert n > 20, "the sweep passed too few points to be a sweep"
                break
        else:
            pytest.fail(f"the call passed more than {MAX_POINTS} points")
        gc.collect()
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("kind", ["function", "partial", "awaitable"])
def test_ctrl_c_at_any_point_of_a_call(portal_backend: str, kind: str) -> None:
    """A thread whose portal is already open: a Ctrl-C at any point of the call either
    stops it before the coroutine exists or was handed over, or cancels it and waits
    for it; the coroutine never starts after the caller got the interrupt, nothing is
    "never awaited", and the same portal serves the next call.
    """
    manager = ab.PortalManager()
    try:
        first = ab.run_sync(loop_identity, backend=portal_backend, manager=manager)
        for point, coroutine, _ in interrupted_calls(portal_backend, kind, lambda n: manager):
            # Anything handed to the loop before the interrupt has been spawned by now.
            ab.run_sync(settle, backend=portal_backend, manager=manager)
            where = f"point {point.n}"
            assert not coroutine.started_after_interrupt, f"{where}: started after Ctrl-C"
            assert not coroutine.running(), f"{where}: the coroutine runs on"
            assert manager.open_portals == 1, where
        again = ab.run_sync(loop_identity, backend=portal_backend, manager=manager)
        assert again is first
    finally:
        manager.close()


def test_ctrl_c_at_any_point_of_a_threads_first_call(portal_backend: str) -> None:
    """A thread's first call, which starts its portal: a Ctrl-C at any point leaves no
    loop thread running outside the manager. After ``close()`` no portal thread of the
    manager is alive and ``open_portals`` is 0; the next call opens exactly one.
    """
    before = portal_threads()
    # Kept alive to the end: a manager collected mid-call would run a weakref callback
    # there, where an interrupt is dropped by Python, not by the bridge.
    managers: list[ab.PortalManager] = []

    def new_manager(n: int) -> ab.PortalManager:
        managers.append(ab.PortalManager())
        return managers[-1]

    for point, _, manager in interrupted_calls(portal_backend, "function", new_manager):
        where = f"point {point.n}"
        manager.close(timeout=5)
        for thread in portal_threads() - before:
            thread.join(5)
            assert not thread.is_alive(), f"{where}: {thread.name} leaked"
        assert manager.open_portals == 0, where
        assert ab.run_sync(settle, backend=portal_backend, manager=manager) is None
        assert manager.open_portals == 1, where
        assert len([t for t in portal_threads() - before if t.is_alive()]) == 1, where
        manager.close(timeout=5)
