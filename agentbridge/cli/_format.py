"""How statuses, durations and targets read, in the progress view and the summaries."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ("STATUS_STYLES", "count", "duration", "status_name", "target_name")

#: The rich style of each step or run status.
STATUS_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "cancelled": "magenta",
    "skipped": "dim",
}


def status_name(status: object) -> str:
    """The plain name of a status, given as a str enum member or a str."""
    return str(getattr(status, "value", status))


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 step``, ``2 steps``; ``plural`` for irregular words."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def duration(seconds: float | None) -> str:
    """``0.42s``, ``12.3s`` or ``2m05s``; an empty string when not known."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def target_name(target: str | Callable[..., object]) -> str:
    """A step's registry name, or the qualified name of the callable it was given."""
    if isinstance(target, str):
        return target
    return str(getattr(target, "__qualname__", None) or type(target).__qualname__)
