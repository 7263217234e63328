"""Affinity mistakes fail loudly: the named error, the stall warning, dump_calls()."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)

FIXES = ("ab.open_portal()", "portal_scope='process'", "ab.loop_local(")


def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """``fn(*args)`` in a new plain thread (so on that thread's own portal); its outcome."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(fn(*args))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="other-caller")
    thread.start()
    thread.join()
    return outcome[0]


# --- the named error ------------------------------------------------------------------------


def test_an_object_of_another_portals_loop_raises_the_affinity_error() -> None:
    state: dict[str, asyncio.Event] = {}

    async def make_and_bind() -> None:
        event = state["event"] = asyncio.Event()
        with anyio.move_on_after(0):  # waiting once binds it to this loop
            await event.wait()

    async def use() -> None:
        await state["event"].wait()

    ab.run_sync(make_and_bind)
    error = in_thread(ab.run_sync, use)
    assert isinstance(error, ab.LoopAffinityError)
    assert isinstance(error, RuntimeError), "existing handlers still catch it"
    assert "bound to a different event loop" in str(error)
    assert "agentbridge-portal-asyncio-for-other-caller" in str(error)
    for fix in FIXES:
        assert fix in str(error)
    assert type(error.__cause__) is RuntimeError


def test_a_future_of_another_loop_raises_the_affinity_error() -> None:
    futures: list[asyncio.Future[None]] = []

    async def make() -> None:
        futures.append(asyncio.get_running_loop().create_future())

    async def use() -> None:
        await futures[0]

    ab.run_sync(make)
    error = in_thread(ab.run_sync, use)
    assert isinstance(error, ab.LoopAffinityError)
    assert "attached to a different loop" in str(error)


class ClientError(Exception):
    """A client library's own error, wrapping the loop's."""

    def __init__(self, message: str, *, request: str) -> None:
        super().__init__(message)
        self.request = request


def test_a_wrapped_affinity_error_keeps_its_own_type_and_attributes() -> None:
    async def client_call() -> None:
        try:
            raise RuntimeError("Event loop is closed")
        except RuntimeError as exc:
            raise ClientError("read failed", request="GET /") from exc

    with pytest.raises(ClientError) as info:
        ab.run_sync(client_call)
    assert isinstance(info.value, ab.LoopAffinityError)
    assert info.value.request == "GET /"
    assert str(info.value).startswith("read failed (agentbridge: the call ran on the loop")


def test_other_errors_pass_unchanged() -> None:
    async def plain() -> None:
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match=r"^something else$") as info:
        ab.run_sync(plain)
    assert type(info.value) is RuntimeError


# --- the stall warning and dump_calls() -------------------------------------------------------


class _Warned(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.seen.set()


@pytest.fixture
def warned() -> Iterator[_Warned]:
    handler = _Warned()
    logger = logging.getLogger("agentbridge")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _stuck_call(
    backend: str, released: threading.Event, reached: threading.Event | None = None
) -> tuple[threading.Thread, list[object]]:
    """Start a call that waits in ``wait_for_release`` until ``released`` is set (and sets
    ``reached`` once it runs)."""

    async def wait_for_release() -> str:
        if reached is not None:
            reached.set()
        await anyio.to_thread.run_sync(released.wait)
        return "released"

    outcome: list[object] = []
    thread = threading.Thread(
        target=lambda: outcome.append(ab.run_sync(wait_for_release, backend=backend)),
        name="stuck-caller",
    )
    thread.start()
    return thread, outcome


def test_a_stalled_call_is_logged_with_its_await_stack(
    portal_backend: str, warned: _Warned
) -> None:
    ab.configure(stall_warning=0.2)
    released = threading.Event()
    thread, outcome = _stuck_call(portal_backend, released)
    try:
        assert warned.seen.wait(10), "no stall warning"
    finally:
        released.set()
        thread.join()
    assert outcome == ["released"], "the call still returns once unblocked"
    [message] = warned.messages
    assert "wait_for_release()" in message
    assert f"portal thread 'agentbridge-portal-{portal_backend}-for-stuck-caller'" in message
    assert "(caller thread 'stuck-caller')" in message
    assert "has waited 0." in message
    assert "in wait_for_release" in message, "the coroutine's own frame is in the stack"
    assert "run_sync" in message.split("in wait_for_release", 1)[1], "and what it awaits"


def test_the_stall_threshold_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, warned: _Warned
) -> None:
    monkeypatch.setenv("AGENTBRIDGE_STALL_WARNING", "0.2")
    released = threading.Event()
    thread, _ = _stuck_call("asyncio", released)
    try:
        assert warned.seen.wait(10)
    finally:
        released.set()
        thread.join()
    monkeypatch.setenv("AGENTBRIDGE_STALL_WARNING", "soon")
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_STALL_WARNING='soon'"):
        ab.run_sync(asyncio.sleep, 0)


def test_no_warning_below_the_threshold_or_when_off(warned: _Warned) -> None:
    async def quick() -> int:
        await anyio.sleep(0.05)
        return 1

    ab.configure(stall_warning=30)
    assert ab.run_sync(quick) == 1
    ab.configure(stall_warning=float("inf"))
    assert ab.run_sync(quick) == 1
    assert warned.messages == []


def test_a_timeout_shorter_than_the_threshold_still_applies(warned: _Warned) -> None:
    ab.configure(stall_warning=0.05)
    with pytest.raises(ab.BridgeTimeoutError):
        ab.run_sync(anyio.sleep_forever, timeout=0.3)
    assert len(warned.messages) == 1, "the stall was logged, then the timeout cancelled it"


def test_dump_calls_lists_every_call_in_flight(portal_backend: str) -> None:
    released = threading.Event()
    reached = threading.Event()
    thread, _ = _stuck_call(portal_backend, released, reached)
    try:
        assert reached.wait(10)
        report = ab.dump_calls()
    finally:
        released.set()
        thread.join()
    assert report.startswith("1 agentbridge call(s) in flight:")
    assert ".wait_for_release() from thread 'stuck-caller'" in report
    assert f"on portal thread 'agentbridge-portal-{portal_backend}-for-stuck-caller'" in report
    assert "in wait_for_release" in report
    assert ab.dump_calls() == "no agentbridge calls in flight"
