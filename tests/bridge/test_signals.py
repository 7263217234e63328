"""Ctrl-C: SIGINT to a script blocked in ``run_sync`` cancels the coroutine, waits for its
cleanup (up to the cancel grace), then raises KeyboardInterrupt in the caller.

Each test runs a child script, waits for the coroutine to print ``started`` (so the
signal arrives while the call is running, not before), sends SIGINT and reads the
order in which the child reports what happened.
"""

from __future__ import annotations

import signal
import sys

import pytest

from ._subproc import BACKENDS, Outcome, Snippet

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

BLOCKED_IN_RUN_SYNC = """
    import sys
    import anyio, anyio.lowlevel
    import agentbridge as ab

    backend, cleanup, catch = sys.argv[1:4]

    async def identity():
        return anyio.lowlevel.current_token().native_token

    before = ab.run_sync(identity, backend=backend)

    async def work():
        try:
            print("started", flush=True)
            if cleanup == "ignores-cancellation":
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(30)
            await anyio.sleep_forever()
        finally:
            if cleanup == "slow":
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.2)
            print("cleanup done", flush=True)

    if catch == "catch":
        try:
            ab.run_sync(work, backend=backend)
        except KeyboardInterrupt:
            print("caught KeyboardInterrupt", flush=True)
        if cleanup != "ignores-cancellation":
            print("same loop after", ab.run_sync(identity, backend=backend) is before, flush=True)
    else:
        ab.run_sync(work, backend=backend)
"""


def interrupt(
    backend: str, cleanup: str, catch: str = "catch", env: dict[str, str] | None = None
) -> tuple[float, float | None, Outcome]:
    """Run the script, SIGINT it once the coroutine started; return when it caught it."""
    with Snippet(BLOCKED_IN_RUN_SYNC, args=[backend, cleanup, catch], env=env) as child:
        child.expect("started", timeout=30)
        sent = child.send_signal(signal.SIGINT)
        caught = child.expect("caught KeyboardInterrupt", timeout=15) if catch == "catch" else None
        outcome = child.finish(timeout=15)
    return sent, caught, outcome


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_cancels_the_coroutine_then_raises_keyboard_interrupt(backend: str) -> None:
    """The coroutine's ``finally`` runs before KeyboardInterrupt reaches the caller, and
    the thread's portal survives: the next call runs on the same loop.
    """
    sent, caught, outcome = interrupt(backend, "fast")
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines == [
        "started",
        "cleanup done",
        "caught KeyboardInterrupt",
        "same loop after True",
    ], outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert caught is not None
    assert caught - sent < 5, "KeyboardInterrupt waited out the cancel grace"


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_bounded_cleanup_completes_before_keyboard_interrupt(backend: str) -> None:
    """A ``finally`` that awaits 0.2 s (shielded) still finishes before KeyboardInterrupt
    surfaces: the caller waits for the cleanup instead of abandoning it.
    """
    sent, caught, outcome = interrupt(backend, "slow")
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines[:3] == ["started", "cleanup done", "caught KeyboardInterrupt"], (
        outcome.describe()
    )
    assert outcome.lines[3:] == ["same loop after True"], outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert caught is not None
    assert 0.18 <= caught - sent < 5, f"caught {caught - sent:.3f} s after SIGINT"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_coroutine_ignoring_cancellation_is_left_after_the_grace(backend: str) -> None:
    """With ``AGENTBRIDGE_CANCEL_GRACE=0.5``, a coroutine that shields itself from
    cancellation delays KeyboardInterrupt by the grace period, no more; the script
    then exits normally (status 0, quiet), without waiting for the coroutine.
    """
    sent, caught, outcome = interrupt(
        backend, "ignores-cancellation", env={"AGENTBRIDGE_CANCEL_GRACE": "0.5"}
    )
    assert caught is not None
    assert 0.45 <= caught - sent < 5, f"caught {caught - sent:.3f} s after SIGINT"
    assert outcome.lines[:2] == ["started", "caught KeyboardInterrupt"], outcome.describe()
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    assert outcome.elapsed < 15


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_uncaught_ctrl_c_ends_the_script_as_an_interrupt(backend: str) -> None:
    """Uncaught, the KeyboardInterrupt ends the script the way Ctrl-C ends any Python
    program (killed by SIGINT, a KeyboardInterrupt traceback), after the cleanup ran.
    """
    _, _, outcome = interrupt(backend, "fast", catch="raise")
    assert outcome.lines == ["started", "cleanup done"], outcome.describe()
    assert outcome.returncode == -signal.SIGINT, outcome.describe()
    assert outcome.stderr.rstrip().splitlines()[-1] == "KeyboardInterrupt", outcome.describe()
    assert "Exception ignored" not in outcome.stderr, outcome.describe()
