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
from collections.abc import Callable
from typing import Any

from .._exceptions import RunnerError

__all__ = (
    "Outcome",
    "Places",
    "Returned",
    "Unpicklable",
    "call_ahead",
    "call_on_engine",
    "call_to_completion",
    "invoke",
)

#: ``("returned", pickled output, "")``; ``("raised", pickled exception or b"" if it
#: cannot cross, its traceback as text)``; or ``("unpicklable", b"", why the output
#: cannot cross)``.
Outcome = tuple[str, bytes, str]


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def call_to_completion(fn: Any, kwargs: dict[str, Any]) -> Any:
    """``fn(**kwargs)``; an awaitable it returns is run to completion with
    :func:`asyncio.run`, in this worker, on a new event loop. What a Dask or Ray worker
    runs for an attempt."""
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return result


def invoke(payload: bytes) -> Outcome:
    """Call the pickled ``(fn, kwargs)`` with :func:`call_to_completion`; the outcome,
    pickled."""
    fn, kwargs = pickle.loads(payload)
    try:
        result = call_to_completion(fn, kwargs)
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


class Unpicklable:
    """What comes back from an engine's worker instead of an output that cannot be
    pickled: why not."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class Returned:
    """An output on its way back from an engine's worker, pickled on its own so that
    one that cannot be pickled comes back as an :class:`Unpicklable` rather than
    breaking the engine's own serialisation (a bare ``TypeError`` of Dask's or Ray's,
    indistinguishable from the step's own). Engines that keep it in one process never
    pickle it, as for a local step."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        import cloudpickle

        try:
            return _loaded, (cloudpickle.dumps(self.value),)
        except Exception as exc:
            why = f"{type(self.value).__qualname__} cannot be pickled: {type(exc).__name__}: {exc}"
            return Unpicklable, (why,)


def _loaded(data: bytes) -> Returned:
    return Returned(pickle.loads(data))


#: Output types that always pickle: they cross bare, saving a pickling on the worker
#: and a slower unpickling on the driver per attempt (a fifth of a tiny Ray task).
_BARE = frozenset((int, float, str, bytes, bool, type(None)))


def call_on_engine(fn: Any, kwargs: dict[str, Any]) -> Any:
    """What a Dask or Ray worker runs for an attempt: :func:`call_to_completion`, its
    output as :class:`Returned` (or bare, if its exact type always pickles); an
    exception that could not be pickled back is raised as a
    :class:`~agentbridge.RunnerError` that says so."""
    try:
        output = call_to_completion(fn, kwargs)
        return output if type(output) in _BARE else Returned(output)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception as why:
            problem = (
                f"it raised {type(exc).__qualname__}: {exc}, and that exception cannot be "
                f"pickled back from its worker ({type(why).__name__}: {why})"
            )
        else:
            raise
    # Raised outside the handler: an error whose context is the unpicklable one would
    # not pickle either.
    raise RunnerError(problem)


#: Where the outputs of the steps an attempt was submitted ahead of go: for each input
#: so handed over, its name, the position of the output among the attempt's upstream
#: arguments, and the path walk that gives the input's value from that output (``None``:
#: the whole output).
Places = tuple[tuple[str, int, Callable[[Any], Any] | None], ...]


def call_ahead(fn: Any, kwargs: dict[str, Any], places: Places, *upstream: Any) -> Any:
    """What a worker runs for an attempt submitted before the steps it depends on
    ended: their outputs arrive as ``upstream`` (top-level arguments, the only ones
    both Dask and Ray resolve), the inputs they give are placed as ``places`` says,
    then :func:`call_on_engine`. The engine calls this only once every upstream task
    succeeded; an output that could not cross fails the attempt without calling
    ``fn``."""
    outputs = []
    for output in upstream:
        if isinstance(output, Unpicklable):
            raise RunnerError(
                f"a step this one depends on returned a value that cannot cross to its "
                f"worker ({output.why})"
            )
        outputs.append(output.value if isinstance(output, Returned) else output)
    kwargs = dict(kwargs)  # not the caller's: Dask's threads share it
    for name, index, path in places:
        kwargs[name] = outputs[index] if path is None else path(outputs[index])
    return call_on_engine(fn, kwargs)
