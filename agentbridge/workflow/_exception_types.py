"""Exception types named by ``retry_on:``, resolved without letting a file import anything.

A name resolves, in this order, to:

- a type registered with :meth:`Registry.register_error
  <agentbridge.Registry.register_error>`, by the name it was registered under;
- a built-in exception (``TimeoutError``, ``ConnectionError``, ``OSError``...), by name;
- one of agentbridge's own (``StepTimeoutError``, ``WorkerCrashedError``...), by name or
  as ``agentbridge.NAME``;
- an import path (``httpx:TimeoutException``), under the ``allow_imports`` rules of
  :mod:`._imports`: only for modules the caller allowed, never a module the file picks.

Only subclasses of :class:`Exception` can be retried: a ``KeyboardInterrupt`` or a
cancellation is never an attempt's failure.
"""

from __future__ import annotations

import builtins
from typing import Any

from .. import _exceptions
from .._exceptions import Problem
from ._imports import import_target

__all__ = ("resolve_exception_type",)


def resolve_exception_type(
    name: str, registered: Any, prefixes: tuple[str, ...]
) -> type[Exception] | Problem:
    """The exception type ``name`` names, or a :class:`Problem` saying why there is none.

    :param registered: the type registered under ``name``, or ``None``
    """
    found: Any = registered
    if found is None:
        short = name.removeprefix("agentbridge.")
        if short in _exceptions.__all__:
            found = getattr(_exceptions, short)
        elif "." not in name and ":" not in name:
            found = builtins.__dict__.get(name)
            if not (isinstance(found, type) and issubclass(found, BaseException)):
                return Problem(
                    f"retry_on names unknown exception type {name!r}; built-in exceptions "
                    f"(TimeoutError, ConnectionError, OSError...) and agentbridge's own are "
                    f"known by name, others are registered with "
                    f"registry.register_error(cls) or named by import path with allow_imports"
                )
        else:
            found = import_target(name, "exception type", prefixes)
            if isinstance(found, Problem):
                return Problem(f"retry_on: {found.message}")
    if not _is_exception_type(found):
        return Problem(
            f"retry_on names {name!r}, which is {found!r}, not a subclass of Exception; "
            f"only exceptions a step raises can be retried"
        )
    return found  # type: ignore[no-any-return]


def _is_exception_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Exception)
