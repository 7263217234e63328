"""Steps of the submit-ahead tests that the engines' workers import by reference."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

__all__ = ("hold", "pause", "record", "shaped")


def shaped(n: int) -> dict[str, Any]:
    """An output to read into: ``{"n": n, "items": [n, n + 1]}``."""
    return {"n": n, "items": [n, n + 1]}


def record(entries: Any, name: str, value: Any, extra: Any = None) -> Any:
    """Append ``[name, value, extra]`` to a manager's list (the proof that this ran, and
    with what); return ``value``."""
    entries.append([name, value, extra])
    return value


def pause(seconds: float) -> float:
    """Take ``seconds``: a slow step (its duration is the point, not a synchronisation)."""
    threading.Event().wait(seconds)
    return seconds


def hold(event: Any, path: str, timeout: float) -> bool:
    """Block on a manager's event (bounded), then mark ``path``: a mark means the call
    ran to its end after its attempt was cancelled, none that it was interrupted."""
    # Short waits, so Python code runs between them: Ray interrupts a task by raising
    # KeyboardInterrupt in its code, which a single long blocking wait would delay.
    deadline = time.monotonic() + timeout
    released = False
    while not released and time.monotonic() < deadline:
        released = bool(event.wait(0.05))
    Path(path).write_text("ran on")
    return released
