"""Settings: validated together and early, and timeouts of any size (``inf`` = none)."""

from __future__ import annotations

import math
import threading

import anyio
import anyio.to_thread
import pytest

import agentbridge as ab

from ._subproc import BACKENDS, run_snippet

pytestmark = pytest.mark.timeout(30)

ALL_BAD = {
    "AGENTBRIDGE_BACKEND": "curio",
    "AGENTBRIDGE_ON_RUNNING_LOOP": "ignor",
    "AGENTBRIDGE_SYNC_TIMEOUT": "soon",
    "AGENTBRIDGE_CANCEL_GRACE": "-1",
    "AGENTBRIDGE_PORTAL_SCOPE": "global",
    "AGENTBRIDGE_STALL_WARNING": "0",
}


async def add(a: int, b: int) -> int:
    return a + b


async def outlast(seconds: float) -> str:
    """A coroutine that runs longer than the short default timeouts set below."""
    await anyio.sleep(seconds)
    return "finished"


# --- item 8: every variable validated at once, on first use ----------------------------------


def test_one_error_names_every_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in ALL_BAD.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ab.ConfigurationError) as info:
        ab.run_sync(add, 1, 1)
    message = str(info.value)
    for variable, value in ALL_BAD.items():
        assert f"{variable}={value!r}" in message
    # ... and what each accepts.
    for accepted in ("asyncio, trio, uvloop", "thread, warn, raise", "inf for no deadline"):
        assert accepted in message


def test_configure_names_every_bad_value() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.configure(backend="curio", on_running_loop="ignor", timeout=-1, cancel_grace="x")  # type: ignore[arg-type]
    message = str(info.value)
    for name, value in (
        ("backend", "'curio'"),
        ("on_running_loop", "'ignor'"),
        ("timeout", "-1"),
        ("cancel_grace", "'x'"),
    ):
        assert name in message
        assert value in message
    assert ab.run_sync(add, 1, 1) == 2, "nothing was changed by the refused configure()"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AGENTBRIDGE_ON_RUNNING_LOOP", "ignor"), ("AGENTBRIDGE_CANCEL_GRACE", "soon")],
)
def test_a_setting_this_call_does_not_need_is_still_checked(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # A plain thread never applies the running-loop policy, and a call that finishes in
    # time never needs the grace: a typo in either used to pass until much later.
    monkeypatch.setenv(variable, value)
    with pytest.raises(ab.ConfigurationError, match=variable):
        ab.run_sync(add, 1, 1)


def test_a_changed_environment_is_seen_by_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ab.run_sync(add, 1, 1) == 2
    monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "soon")
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_CANCEL_GRACE"):
        ab.run_sync(add, 1, 1)
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_CANCEL_GRACE"):
        ab.run_sync(add, 1, 1)  # still bad: still refused, not remembered as checked
    monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "2")
    assert ab.run_sync(add, 1, 1) == 2


@pytest.mark.anyio
async def test_a_worker_thread_checks_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTBRIDGE_ON_RUNNING_LOOP", "ignor")
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_ON_RUNNING_LOOP"):
        await ab.to_thread(ab.run_sync, add, 1, 1)


@pytest.mark.anyio
async def test_a_worker_thread_sees_a_variable_set_after_its_last_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No variable set is the case each call checks in one step: setting one, then
    # changing its value, must each be seen by the next call.
    def calls() -> None:
        assert ab.run_sync(add, 1, 1) == 2
        monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "soon")
        with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_CANCEL_GRACE"):
            ab.run_sync(add, 1, 1)
        monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "2")
        assert ab.run_sync(add, 1, 1) == 2
        monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "later")
        with pytest.raises(ab.ConfigurationError, match="later"):
            ab.run_sync(add, 1, 1)
        monkeypatch.delenv("AGENTBRIDGE_CANCEL_GRACE")
        assert ab.run_sync(add, 1, 1) == 2

    await ab.to_thread(calls)


EXIT_WITH_BAD_GRACE = """
import os, threading
import anyio
import agentbridge as ab

async def hold(started):
    try:
        started.set()
        await anyio.sleep_forever()
    finally:
        print("cleanup ran", flush=True)

started = threading.Event()
threading.Thread(target=ab.run_sync, args=(hold, started), daemon=True).start()
started.wait(10)
print("open", ab.get_portal_manager().open_portals, flush=True)
os.environ["AGENTBRIDGE_CANCEL_GRACE"] = "soon"
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_exit_hook_closes_portals_with_a_bad_environment(backend: str) -> None:
    outcome = run_snippet(EXIT_WITH_BAD_GRACE, env={"AGENTBRIDGE_BACKEND": backend})
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert outcome.lines == ["open 1", "cleanup ran"], outcome.describe()


# --- item 7: timeouts too large for a thread's wait ---------------------------------------


HUGE = [math.inf, 1e10, 1e300, 10**400]


@pytest.mark.parametrize("timeout", HUGE, ids=["inf", "1e10", "1e300", "10**400"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_huge_timeout_is_no_deadline(backend: str, timeout: float) -> None:
    # A call still running when the caller starts waiting: the wait is what overflowed.
    assert ab.run_sync(outlast, 0.02, timeout=timeout, backend=backend) == "finished"


def test_infinity_overrides_a_default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", "0.05")
    assert ab.run_sync(outlast, 0.3, timeout=math.inf) == "finished"
    ab.configure(timeout=0.05)
    assert ab.run_sync(outlast, 0.3, timeout=math.inf) == "finished"


@pytest.mark.parametrize("where", ["configure", "environment"])
def test_an_infinite_default_timeout(
    monkeypatch: pytest.MonkeyPatch, portal_backend: str, where: str
) -> None:
    if where == "configure":
        monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", "0.05")
        ab.configure(timeout=math.inf)  # beats the variable: no deadline
    else:
        monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", "inf")
    assert ab.run_sync(outlast, 0.3, backend=portal_backend) == "finished"


@pytest.mark.parametrize("where", ["configure", "environment"])
def test_an_infinite_cancel_grace_waits_for_the_cleanup(
    monkeypatch: pytest.MonkeyPatch, portal_backend: str, where: str
) -> None:
    if where == "configure":
        ab.configure(cancel_grace=math.inf)
    else:
        monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "inf")
    cleaned = threading.Event()

    async def slow_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.1)
            cleaned.set()

    with pytest.raises(ab.BridgeTimeoutError) as info:
        ab.run_sync(slow_cleanup, timeout=0.05, backend=portal_backend)
    assert info.value.abandoned is False
    assert cleaned.is_set()


def test_closing_a_manager_without_a_limit(portal_backend: str) -> None:
    manager = ab.PortalManager()
    ab.run_sync(add, 1, 1, backend=portal_backend, manager=manager)
    manager.close(timeout=math.inf)
    assert manager.open_portals == 0


@pytest.mark.anyio
async def test_a_worker_thread_with_a_huge_timeout() -> None:
    for timeout in HUGE:
        assert await ab.to_thread(lambda t=timeout: ab.run_sync(add, 1, 1, timeout=t)) == 2
