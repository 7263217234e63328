"""iterate_sync runs an async generator's cleanup even when its caller never closes it.

Dropped mid-iteration, or left open until the interpreter exits, the generator's
``finally`` still runs to its end, an ``await`` in it included, on the generator's own
loop, and nothing is written to stderr ("Exception ignored in: <async_generator ...>").
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._subproc import run_snippet

pytestmark = pytest.mark.timeout(30)


def endless(cleaned: threading.Event) -> AsyncIterator[int]:
    async def numbers() -> AsyncIterator[int]:
        n = 0
        try:
            while True:
                await anyio.lowlevel.checkpoint()
                yield n
                n += 1
        finally:
            await anyio.lowlevel.checkpoint()  # an await that a cancelled cleanup would stop at
            cleaned.set()

    return numbers()


def iterate_two_and_drop(cleaned: threading.Event, **options: str) -> None:
    items = ab.iterate_sync(endless(cleaned), **options)
    assert [next(items), next(items)] == [0, 1]
    del items
    gc.collect()


def test_dropped_iterator_runs_its_cleanup_on_its_portal(portal_backend: str) -> None:
    cleaned = threading.Event()
    iterate_two_and_drop(cleaned, backend=portal_backend)
    assert cleaned.wait(10), "the generator's finally did not run to its end"


@pytest.mark.anyio
async def test_dropped_iterator_runs_its_cleanup_on_the_host_loop() -> None:
    cleaned = threading.Event()
    await ab.to_thread(iterate_two_and_drop, cleaned)
    with anyio.fail_after(10):
        while not cleaned.is_set():
            await anyio.lowlevel.checkpoint()


def test_closed_or_exhausted_iterator_is_not_closed_again(portal_backend: str) -> None:
    cleaned = threading.Event()
    with ab.iterate_sync(endless(cleaned), backend=portal_backend) as items:
        assert next(items) == 0
    assert cleaned.is_set()

    async def three() -> AsyncIterator[int]:
        for n in range(3):
            yield n

    assert list(ab.iterate_sync(three(), backend=portal_backend)) == [0, 1, 2]


LEFT_OPEN_AT_EXIT = """
    import anyio
    import agentbridge as ab

    async def numbers():
        try:
            while True:
                yield 1
        finally:
            await anyio.sleep(0)
            print("cleanup finished", flush=True)

    ITEMS = ab.iterate_sync(numbers())
    print("first", next(ITEMS), flush=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_iterator_left_open_at_exit_runs_its_cleanup_quietly(backend: str) -> None:
    outcome = run_snippet(
        LEFT_OPEN_AT_EXIT,
        flags=["-X", "dev"],
        env={"AGENTBRIDGE_BACKEND": backend},
        timeout=15,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines == ["first 1", "cleanup finished"], outcome.describe()
    assert outcome.stderr == "", outcome.describe()
