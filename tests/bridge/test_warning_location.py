"""A BlockingCallWarning names the user's line that made the blocking call.

Every public entry point reaches the warning through its own depth of wrappers
(syncify's wrapper, the runtime's methods, stream_sync's generator), so each one is
checked: the warning must carry this file and the line of the call, never a line
inside agentbridge.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def one() -> int:
    await anyio.lowlevel.checkpoint()
    return 1


async def numbers() -> AsyncIterator[int]:
    for n in range(2):
        await anyio.lowlevel.checkpoint()
        yield n


@asynccontextmanager
async def resource() -> AsyncIterator[str]:
    await anyio.lowlevel.checkpoint()
    yield "resource"


def here() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def registry() -> ab.Registry:
    reg = ab.Registry()

    @reg.function
    async def double(n: int) -> int:
        await anyio.lowlevel.checkpoint()
        return n * 2

    return reg


WORKFLOW = {
    "name": "located",
    "inputs": {"n": {}},
    "steps": [{"id": "d", "function": "double", "inputs": {"n": "${inputs.n}"}}],
    "outputs": {"n": "${steps.d.output}"},
}


# Each returns the line of its blocking call, made from this file.
def call_run_sync() -> int:
    line = here()
    ab.run_sync(one)
    return line


def call_syncified() -> int:
    blocking_one = ab.syncify(one)
    line = here()
    blocking_one()
    return line


def call_sync_context() -> int:
    line = here()
    with ab.sync_context(resource()):
        pass
    return line


def call_iterate_sync() -> int:
    line = here()
    for _ in ab.iterate_sync(numbers()):
        pass
    return line


def call_run_workflow() -> int:
    reg = registry()
    line = here()
    ab.run_workflow(WORKFLOW, {"n": 2}, registry=reg)
    return line


def call_runtime_run() -> int:
    runtime = ab.Runtime(registry())
    line = here()
    runtime.run(WORKFLOW, {"n": 2})
    return line


def call_executor_run() -> int:
    executor = ab.Executor(WORKFLOW, registry())
    line = here()
    executor.run({"n": 2})
    return line


def call_stream_sync() -> int:
    events: Iterator[ab.Event] = ab.Runtime(registry()).stream_sync(WORKFLOW, {"n": 2})
    line = here()
    for _ in events:
        pass
    return line


ENTRY_POINTS: dict[str, Callable[[], int]] = {
    "run_sync": call_run_sync,
    "syncify": call_syncified,
    "sync_context": call_sync_context,
    "iterate_sync": call_iterate_sync,
    "run_workflow": call_run_workflow,
    "Runtime.run": call_runtime_run,
    "Executor.run": call_executor_run,
    "Runtime.stream_sync": call_stream_sync,
}


@pytest.mark.anyio
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_blocking_call_warning_names_the_callers_line(entry: str) -> None:
    ab.configure(on_running_loop="warn")
    with pytest.warns(ab.BlockingCallWarning) as record:
        line = ENTRY_POINTS[entry]()
    places: list[Any] = sorted({(w.filename, w.lineno) for w in record})
    assert places == [(__file__, line)]
