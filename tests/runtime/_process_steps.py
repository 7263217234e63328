"""Steps that worker processes import by reference: module-level, picklable."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

__all__ = (
    "add",
    "async_pid",
    "barrier_pid",
    "count_then_succeed",
    "crash",
    "fail",
    "log",
    "mark",
    "pid",
    "unpicklable_result",
    "wait_for",
)


def add(a: int, b: int) -> int:
    """The sum."""
    return a + b


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
