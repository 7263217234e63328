"""PortalManager: the portal API, counting, closing and isolation."""

from __future__ import annotations

import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def token() -> object:
    return anyio.lowlevel.current_token().native_token


def test_portal_is_a_blocking_portal_on_the_same_loop(portal_backend: str) -> None:
    manager = ab.PortalManager()
    try:
        portal = manager.portal(portal_backend)
        assert isinstance(portal, anyio.from_thread.BlockingPortal)
        assert portal.call(token) is ab.run_sync(token, backend=portal_backend, manager=manager)
    finally:
        manager.close()


def test_open_portals_counts_and_close_stops_them() -> None:
    manager = ab.PortalManager()
    assert manager.open_portals == 0
    first = ab.run_sync(token, manager=manager)
    ab.run_sync(token, backend="trio", manager=manager)
    assert manager.open_portals == 2
    manager.close()
    assert manager.open_portals == 0
    # Later calls open new portals lazily.
    assert ab.run_sync(token, manager=manager) is not first
    assert manager.open_portals == 1
    manager.close()


def test_close_cancels_calls_that_are_still_running() -> None:
    manager = ab.PortalManager()
    started = threading.Event()
    outcome: list[BaseException] = []

    async def waits() -> None:
        started.set()
        await anyio.sleep_forever()

    def caller() -> None:
        try:
            ab.run_sync(waits, manager=manager)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(10)
    manager.close()
    thread.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ab.PortalClosedError)


def test_managers_are_isolated() -> None:
    mine = ab.PortalManager()
    try:
        assert ab.run_sync(token, manager=mine) is not ab.run_sync(token)
        assert mine.open_portals == 1
    finally:
        mine.close()


def test_default_manager_is_shared() -> None:
    assert ab.get_portal_manager() is ab.get_portal_manager()


def test_missing_uvloop_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ab.ConfigurationError, match=r"agentbridge-runtime\[uvloop\]"):
        ab.run_sync(token, backend="uvloop", manager=ab.PortalManager())
