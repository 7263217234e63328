"""What a worker process of a :class:`~agentbridge.ProcessRunner` runs for one attempt.

Kept apart from the runner so the worker side is plain: no loop, no bridge. The parent
pickles the callable and its arguments itself, and the worker pickles the outcome
itself, so anything that cannot cross is reported as the step's error rather than
breaking the pool (a payload that fails to unpickle in the pool's own thread marks the
whole pool broken).
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import traceback
from typing import Any

__all__ = ("Outcome", "invoke")

#: ``("returned", pickled output, "")``; ``("raised", pickled exception or b"" if it
#: cannot cross, its traceback as text)``; or ``("unpicklable", b"", why the output
#: cannot cross)``.
Outcome = tuple[str, bytes, str]


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def invoke(payload: bytes) -> Outcome:
    """Call the pickled ``(fn, kwargs)``; an awaitable it returns is run to completion
    with :func:`asyncio.run`, in this worker, on a new event loop."""
    fn, kwargs = pickle.loads(payload)
    try:
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        try:
            error = pickle.dumps(exc)
            pickle.loads(error)  # an exception whose class cannot be rebuilt: as text
        except Exception:
            error = b""
        return "raised", error, text
    try:
        return "returned", pickle.dumps(result), ""
    except Exception as exc:
        detail = f"{type(result).__qualname__} cannot be pickled: {type(exc).__name__}: {exc}"
        return "unpicklable", b"", detail
