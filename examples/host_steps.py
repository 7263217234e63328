"""Steps and workflows shared by the host examples; every step reports where it ran.

The FastAPI, Flask, trio and script examples run the same small workflows, so a reader
(and the tests in ``tests/hosts/``) can see, in every host, which event loop and thread
each step ran on, and that the caller's context variables reached it:

* ``probe``: an async ``agent`` step that runs on the run's loop, and a blocking
  ``function`` step that runs in a worker thread and calls back into the loop with
  :func:`agentbridge.run_sync`.
* ``fail``: a ``tool`` step that raises :class:`InventoryError`.
* ``park``: an ``agent`` step that waits at a :class:`Gate` until it is opened, so a
  host can be shown to keep serving while workflows are parked in it.
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from typing import Any

import anyio
import trio

import agentbridge as ab

__all__ = (
    "FAIL",
    "PARK",
    "PROBE",
    "WORKFLOWS",
    "Gate",
    "InventoryError",
    "current_loop",
    "gate",
    "loop_identity",
    "registry",
    "request_id",
)

#: Set by the host (a middleware, a view) before it runs a workflow; steps read it.
request_id: ContextVar[str] = ContextVar("request_id", default="-")

registry = ab.Registry()


class InventoryError(Exception):
    """The user's own exception type, raised by the ``fail`` workflow's step."""


def loop_identity() -> str:
    """Name the event loop running in this thread: ``asyncio:<id>`` or ``trio:<id>``.

    For trio the id is that of the run's :func:`trio.lowlevel.current_trio_token`,
    which is the same object for the whole ``trio.run`` call.
    """
    if trio.lowlevel.in_trio_run():
        return f"trio:{id(trio.lowlevel.current_trio_token()):x}"
    return f"asyncio:{id(asyncio.get_running_loop()):x}"


async def current_loop() -> str:
    """The coroutine version of :func:`loop_identity`, for :func:`agentbridge.run_sync`."""
    return loop_identity()


def _where() -> dict[str, str]:
    return {"thread": threading.current_thread().name, "request_id": request_id.get()}


@registry.agent("describe")
async def describe(n: int) -> dict[str, Any]:
    """An async step: runs on the loop that drives the run."""
    await anyio.sleep(0)
    return {"n": n, "loop": loop_identity(), **_where()}


@registry.function("blocking_double")
def blocking_double(n: int) -> dict[str, Any]:
    """A blocking step: runs in a worker thread; ``run_sync`` there goes back to the loop."""
    return {"doubled": 2 * n, "loop": ab.run_sync(current_loop), **_where()}


@registry.tool("check_stock")
async def check_stock(item: str) -> str:
    """A step that fails with the user's own exception type."""
    raise InventoryError(f"item {item!r} is out of stock")


class Gate:
    """Parks async steps until :meth:`open` is called from the loop they wait on.

    :attr:`parked` counts the steps waiting now, so a test can tell by ordering (not by
    timing) that its requests are in flight.
    """

    def __init__(self) -> None:
        # An anyio.Event belongs to one loop, and the same app parks steps on its own
        # loop and on portal loops: one event, and one count, per loop.
        self._events: dict[str, anyio.Event] = {}
        self._parked: dict[str, int] = {}

    @property
    def parked(self) -> int:
        """How many steps wait at the gate now, on every loop."""
        return sum(list(self._parked.values()))

    async def wait(self) -> None:
        """Wait until the gate opens on this loop."""
        loop = loop_identity()
        event = self._events.get(loop)
        if event is None:
            event = self._events[loop] = anyio.Event()
        self._parked[loop] = self._parked.get(loop, 0) + 1
        try:
            await event.wait()
        finally:
            self._parked[loop] -= 1

    def open(self) -> int:
        """Release the steps parked on the calling loop; return how many there were."""
        loop = loop_identity()
        event = self._events.pop(loop, None)
        if event is not None:
            event.set()
        return self._parked.get(loop, 0)


#: The gate the ``park`` workflow waits at (one per process).
gate = Gate()


@registry.agent("wait_at_gate")
async def wait_at_gate(n: int) -> dict[str, Any]:
    """A step that waits at :data:`gate`, then reports where it ran.

    If it is cancelled while waiting, it says so on stdout, so that a host can be seen
    to have cancelled it (rather than dropped it) when shutting down.
    """
    try:
        await gate.wait()
    except anyio.get_cancelled_exc_class():
        print(f"park step n={n} cancelled: cleanup ran", flush=True)
        raise
    return {"n": n, "loop": loop_identity(), **_where()}


PROBE = ab.Workflow.from_dict(
    {
        "name": "probe",
        "inputs": ["n"],
        "steps": [
            {"id": "describe", "agent": "describe", "inputs": {"n": "${inputs.n}"}},
            {"id": "offload", "function": "blocking_double", "inputs": {"n": "${inputs.n}"}},
        ],
    }
)
FAIL = ab.Workflow.from_dict(
    {
        "name": "fail",
        "inputs": ["item"],
        "steps": [{"id": "check", "tool": "check_stock", "inputs": {"item": "${inputs.item}"}}],
    }
)
PARK = ab.Workflow.from_dict(
    {
        "name": "park",
        "inputs": ["n"],
        "steps": [{"id": "park", "agent": "wait_at_gate", "inputs": {"n": "${inputs.n}"}}],
    }
)

#: The workflows a host example can run, by name.
WORKFLOWS = {"probe": PROBE, "fail": FAIL, "park": PARK}
