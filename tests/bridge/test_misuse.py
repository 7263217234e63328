"""Mistakes at the sync/async boundary get an agentbridge error that names the fix.

Async callables in blocking slots (the mirror of NotAwaitableError), awaitables given
arguments, async generator objects, keyword arguments run_sync does not take, and
adapters used the wrong way: each raises a subclass of AgentBridgeError (and of the
built-in type a caller would catch), never a bare TypeError or an un-awaited coroutine.
"""

from __future__ import annotations

import functools
import gc
import warnings
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def fetch(n: int = 1) -> int:
    await anyio.lowlevel.checkpoint()
    return n


async def ticks() -> AsyncIterator[int]:
    yield 1


class AsyncCallable:
    async def __call__(self) -> int:
        return 1


def no_coroutine_left_unawaited() -> Any:
    """Collect garbage with RuntimeWarnings as errors: a leaked coroutine fails here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        gc.collect()


ASYNC_CALLABLES: dict[str, Callable[[], Callable[..., Any]]] = {
    "coroutine function": lambda: fetch,
    "partial of one": lambda: functools.partial(fetch, 2),
    "async __call__": AsyncCallable,
}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(ASYNC_CALLABLES))
async def test_to_thread_refuses_an_async_callable(kind: str) -> None:
    fn = ASYNC_CALLABLES[kind]()
    with pytest.raises(ab.AsyncCallableError, match=r"await it directly") as caught:
        await ab.to_thread(fn)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ab.BridgeError)
    name = "AsyncCallable" if kind == "async __call__" else "fetch"
    assert name in str(caught.value)
    no_coroutine_left_unawaited()


def test_asyncify_refuses_an_async_function_when_decorating() -> None:
    for fn in (fetch, functools.partial(fetch, 2), ticks):
        with pytest.raises(ab.AsyncCallableError, match=r"asyncify\(\).*(fetch|ticks)"):
            ab.asyncify(fn)
        with pytest.raises(ab.AsyncCallableError):
            ab.asyncify(limiter=None)(fn)


def test_syncify_refuses_an_async_generator_function_when_decorating() -> None:
    with pytest.raises(ab.NotAwaitableError, match=r"iterate_sync\(ticks\(\.\.\.\)\)"):
        ab.syncify(ticks)


def test_run_sync_names_an_awaitable_given_arguments() -> None:
    with pytest.raises(ab.NotAwaitableError, match=r"awaitable .* positional arguments"):
        ab.run_sync(fetch(1), 2)  # type: ignore[call-overload]
    no_coroutine_left_unawaited()


def test_run_sync_names_an_async_generator_object() -> None:
    with pytest.raises(ab.NotAwaitableError, match=r"async generator ticks\(\).*iterate_sync"):
        ab.run_sync(ticks())  # type: ignore[call-overload]


def test_run_sync_refuses_keyword_arguments_naming_functools_partial() -> None:
    with pytest.raises(ab.BridgeUsageError, match=r"config=.*functools\.partial") as caught:
        ab.run_sync(fetch, 1, config={"a": 1})  # type: ignore[call-overload]
    assert isinstance(caught.value, TypeError)
    with pytest.raises(ab.BridgeUsageError, match=r"config="):
        ab.run_sync(fetch(1), config={})  # type: ignore[call-overload]
    no_coroutine_left_unawaited()
    assert ab.run_sync(functools.partial(fetch, n=3)) == 3


@asynccontextmanager
async def resource() -> AsyncIterator[str]:
    yield "resource"


def test_adapters_misuse_raises_agentbridge_errors() -> None:
    with pytest.raises(ab.NotAwaitableError, match="for loop"):
        ab.iterate_sync([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ab.NotAwaitableError, match="async context manager"):
        ab.sync_context(open)  # type: ignore[arg-type]
    context = ab.sync_context(resource())
    with context:
        pass
    with pytest.raises(ab.AlreadyEnteredError, match="make a new one") as caught, context:
        pass
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.anyio
async def test_to_thread_still_returns_an_awaitable_that_a_blocking_callable_returns() -> None:
    """What a blocking callable returns is not looked at: the runtime awaits an
    awaitable that a sync step returns."""

    class Later:
        def __await__(self) -> Generator[Any, None, int]:
            return fetch(4).__await__()

    awaitable = await ab.to_thread(Later)
    assert await awaitable == 4


def test_syncify_still_takes_plain_functions_that_return_awaitables() -> None:
    """Only a kind that is certain is refused when decorating."""
    blocking = ab.syncify(lambda: fetch(5))
    assert blocking() == 5
