"""Steps that worker processes import by reference: module-level, picklable."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = (
    "add",
    "announce_then_sleep",
    "async_pid",
    "barrier_pid",
    "count_then_succeed",
    "crash",
    "double",
    "fail",
    "fail_unpicklable",
    "log",
    "mark",
    "meet_then_wait",
    "pid",
    "release",
    "unpicklable_result",
    "wait_for",
)


def add(a: int, b: int) -> int:
    """The sum."""
    return a + b


def double(x: int) -> int:
    """Twice ``x``."""
    return 2 * x


def pid() -> int:
    """The worker's process id."""
    return os.getpid()


def barrier_pid(barrier: Any) -> int:
    """Wait until the other party arrives (a manager's barrier, bounded by its own
    timeout), then give this worker's pid: passes only if both ran at once."""
    barrier.wait()
    return os.getpid()


async def async_pid(x: int) -> tuple[int, str, int]:
    """An async step: the worker's pid, the library running it, and ``x`` doubled."""
    await asyncio.sleep(0)
    return os.getpid(), type(asyncio.get_running_loop()).__module__, 2 * x


def fail(message: str) -> None:
    """Raise a ValueError."""
    raise ValueError(message)


def log(entries: Any, name: str) -> int:
    """Append ``name`` on entry and on exit to a manager's list."""
    entries.append(f"{name} in")
    entries.append(f"{name} out")
    return os.getpid()


def count_then_succeed(path: str, succeed_on: int) -> int:
    """Count this call in ``path``; fail until the ``succeed_on``-th call."""
    file = Path(path)
    count = int(file.read_text()) + 1 if file.exists() else 1
    file.write_text(str(count))
    if count < succeed_on:
        raise ConnectionError(f"attempt {count} fails")
    return count


def wait_for(event: Any, timeout: float) -> bool:
    """Block on a manager's event (bounded): a step that runs until the test lets it go."""
    return bool(event.wait(timeout))


def release(event: Any, value: int) -> int:
    """Set a manager's event, letting a step blocked on it go; give ``value`` back."""
    event.set()
    return value


def mark(path: str) -> str:
    """Leave a mark that this step started."""
    Path(path).write_text("ran")
    return path


def crash() -> None:
    """Kill this worker process at once, as a segfault or the OOM killer would."""
    os._exit(3)


def unpicklable_result() -> threading.Lock:
    """Return something that cannot cross back."""
    return threading.Lock()


def meet_then_wait(barrier: Any, event: Any, path: str, timeout: float) -> bool:
    """Meet the other parties at a manager's barrier (so the test knows this runs), block
    on a manager's event (bounded), then mark ``path``: a mark means the call ran on
    after its attempt was cancelled, none that it was interrupted."""
    barrier.wait()
    # Short waits, so Python code runs between them: Ray interrupts a task by raising
    # KeyboardInterrupt in its code, which a single long blocking wait would delay.
    deadline = time.monotonic() + timeout
    released = False
    while not released and time.monotonic() < deadline:
        released = bool(event.wait(0.05))
    Path(path).write_text("ran on")
    return released


class _Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("this exception does not pickle")


def fail_unpicklable() -> None:
    """Raise an exception that cannot be pickled back."""
    raise _Unpicklable("stuck in the worker")


def announce_then_sleep(seconds: float) -> float:
    """Say on stdout that this step runs, then sleep: a step to interrupt."""
    print("step started", flush=True)
    time.sleep(seconds)
    return seconds


class Scaler:
    """A callable with state, pickled by value with each run's state."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> dict[str, int]:
        return {"scaled": x * self.factor}
