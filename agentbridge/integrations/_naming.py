"""Names for adapters, so messages and results name the agent, not the wrapper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ("named",)

F = TypeVar("F", bound=Callable[..., Any])


def named(adapter: F, target: object, name: object) -> F:
    """``adapter``, named after ``target``: its ``name`` if it has a string one.

    Not ``functools.wraps``: ``__wrapped__`` would make :func:`inspect.signature` report
    the target's signature (or fail on an object), not the inputs the adapter takes.
    """
    label = name if isinstance(name, str) and name else type(target).__qualname__
    adapter.__name__ = adapter.__qualname__ = label
    return adapter
