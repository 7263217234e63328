"""Small building blocks shared by the runtime tests."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel

import agentbridge as ab

from ..workflow._helpers import build

__all__ = ("Rendezvous", "build", "collect", "loop_token")


async def loop_token() -> object:
    """The identity of the running event loop (asyncio loop or trio token)."""
    return anyio.lowlevel.current_token().native_token


async def collect(events: Any) -> list[ab.Event]:
    """Every event of an async event stream."""
    return [event async for event in events]


class Rendezvous:
    """Lets ``parties`` async steps through only once all of them are waiting.

    Steps that the runtime does not run concurrently never all arrive, so the wait is
    bounded: a missing party fails the test instead of hanging it.
    """

    def __init__(self, parties: int, *, timeout: float = 10) -> None:
        self.parties = parties
        self.arrived = 0
        self.timeout = timeout
        self._all_here = anyio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self._all_here.set()
        with anyio.fail_after(self.timeout):
            await self._all_here.wait()
