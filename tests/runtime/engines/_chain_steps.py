"""Steps of the submit-ahead tests that the engines' workers import by reference."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ("pause", "record", "shaped")


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
