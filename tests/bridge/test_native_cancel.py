"""asyncio's own cancellation of ``ab.to_thread`` behaves as anyio's does.

``asyncio.wait_for``, ``asyncio.timeout`` and ``task.cancel()`` bypass anyio's shielded
wait for the thread. The documented behaviour must hold for them too: without
``abandon_on_cancel`` the caller resumes only once ``fn`` has returned; either way,
the worker's ``check_cancelled`` raises and a coroutine ``fn`` sent back to the loop
with ``run_sync`` is cancelled.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import anyio
import pytest

import agentbridge as ab

pytestmark = [pytest.mark.timeout(30), pytest.mark.anyio]

MODES = ["wait_for", "task.cancel"] + (["timeout"] if sys.version_info >= (3, 11) else [])


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Native asyncio cancellation exists on asyncio loops only."""
    if request.param[1]:
        pytest.importorskip("uvloop")
    return request.param


class Worker:
    """A blocking function that sends a coroutine back to the loop and reports what
    the cancellation did to it, to itself and to its ``check_cancelled``.

    With ``release``, it first waits for it (set once the caller has resumed), then
    checks for the cancellation and sends the coroutine back.
    """

    def __init__(self, release: threading.Event | None = None) -> None:
        self.started = threading.Event()
        self.sent_back_started = threading.Event()
        self.sent_back_cancelled = threading.Event()
        self.returned = threading.Event()
        self.seen: list[str] = []
        self._release = release
        #: Whether it waits for ``release`` before calling back into the loop.
        self.released = release is not None

    async def sent_back(self) -> None:
        self.sent_back_started.set()
        try:
            await anyio.sleep(10)
        except BaseException:
            self.sent_back_cancelled.set()
            raise

    def __call__(self) -> str:
        self.started.set()
        if self._release is not None:
            assert self._release.wait(10)
            self._check()
            self._send_back()
        else:
            self._send_back()
            self._check()
        self.returned.set()
        return "returned"

    def _send_back(self) -> None:
        try:
            ab.run_sync(self.sent_back)
        except BaseException as exc:
            self.seen.append(f"run_sync: {type(exc).__name__}")

    def _check(self) -> None:
        try:
            ab.check_cancelled()
        except BaseException as exc:
            self.seen.append(f"check_cancelled: {type(exc).__name__}")


async def cancel_natively(mode: str, worker: Worker, abandon: bool) -> BaseException:
    offload = ab.to_thread(worker, abandon_on_cancel=abandon)
    try:
        if mode == "wait_for":
            await asyncio.wait_for(offload, 0.2)
        elif mode == "timeout":
            async with asyncio.timeout(0.2):  # type: ignore[attr-defined]
                await offload
        else:
            task = asyncio.ensure_future(offload)
            started = worker.started if worker.released else worker.sent_back_started
            await anyio.to_thread.run_sync(started.wait, 10)
            task.cancel()
            await task
    except BaseException as exc:
        return exc
    raise AssertionError("the offload was not cancelled")


def expected_exception(mode: str) -> type[BaseException]:
    # asyncio.TimeoutError is the built-in TimeoutError only since 3.11.
    return asyncio.CancelledError if mode == "task.cancel" else asyncio.TimeoutError


@pytest.mark.parametrize("mode", MODES)
async def test_native_cancellation_waits_for_fn_and_cancels_what_it_sent_back(
    mode: str,
) -> None:
    worker = Worker()
    outcome = await cancel_natively(mode, worker, abandon=False)
    assert isinstance(outcome, expected_exception(mode)), repr(outcome)
    assert worker.returned.is_set(), "the caller resumed before fn returned"
    assert worker.sent_back_cancelled.is_set() or not worker.sent_back_started.is_set()
    assert worker.seen == ["run_sync: CancelledError", "check_cancelled: CancelledError"]


@pytest.mark.parametrize("mode", MODES)
async def test_native_cancellation_with_abandon_resumes_at_once(mode: str) -> None:
    """The abandoned thread still sees the cancellation: its ``check_cancelled`` raises
    and it can send nothing back. (A coroutine it had already sent back when the
    cancellation came runs on: see docs/semantics.md.)"""
    release = threading.Event()
    worker = Worker(release)
    try:
        outcome = await cancel_natively(mode, worker, abandon=True)
        assert isinstance(outcome, expected_exception(mode)), repr(outcome)
        assert not worker.returned.is_set(), "the caller waited for an abandoned thread"
    finally:
        release.set()
    assert await anyio.to_thread.run_sync(worker.returned.wait, 10)
    assert worker.seen == ["check_cancelled: CancelledError", "run_sync: CancelledError"]
    assert not worker.sent_back_started.is_set()


async def test_result_and_exceptions_cross_unchanged_on_the_child_task_path() -> None:
    assert await ab.to_thread(divmod, 17, 5) == (3, 2)
    with pytest.raises(LookupError, match="missing"):
        await ab.to_thread(lambda: {}["missing"])
