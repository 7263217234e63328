"""1,000 short-lived threads, each with its own portal, a loop-local resource holding a
socket, and calls on a shared portal: nothing grows (threads, fds, RSS)."""

from __future__ import annotations

import os
import socket
import sys
import threading

import anyio
import pytest

import agentbridge as ab

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self"),
]

THREADS = 1000
AT_ONCE = 10
WARMUP = 100
#: Far below what one leaked portal per thread would cost (about 34 KB each).
RSS_SLACK = 12 * 1024 * 1024


class Connection:
    """A loop-local resource owning a real socket pair, closed with its loop."""

    def __init__(self) -> None:
        self.sockets = socket.socketpair()

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()
        for sock in self.sockets:
            sock.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _short_lived_threads(
    count: int, backend: str, portal: ab.Portal, connections: ab.LoopLocal[Connection]
) -> None:
    async def use() -> int:
        return connections.get().sockets[0].fileno()

    errors: list[BaseException] = []

    def work() -> None:
        try:
            assert ab.run_sync(use, backend=backend) > 0
            assert portal.run_sync(use) > 0
        except BaseException as exc:
            errors.append(exc)

    for batch in range(count // AT_ONCE):
        threads = [threading.Thread(target=work, name=f"short-{batch}-{i}") for i in range(AT_ONCE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    # The portals of ended threads stop on their own, soon after; wait for every one.
    for thread in threading.enumerate():
        if thread.name.startswith("agentbridge-portal-") and "-for-short-" in thread.name:
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} outlived its thread"


def test_no_growth_over_a_thousand_short_lived_threads(portal_backend: str) -> None:
    connections = ab.loop_local(Connection)  # the shared portal's lives as long as it does
    with ab.open_portal(portal_backend, name="many") as portal:
        _short_lived_threads(WARMUP, portal_backend, portal, connections)
        threads, fds, rss = threading.active_count(), _fds(), _rss()
        _short_lived_threads(THREADS, portal_backend, portal, connections)
        assert threading.active_count() == threads
        assert _fds() == fds
        assert _rss() - rss < RSS_SLACK, f"RSS grew by {(_rss() - rss) / 2**20:.1f} MiB"
        assert len(connections) == 1, "only the shared portal's loop still holds one"
