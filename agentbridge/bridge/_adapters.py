"""Adapters built on :func:`run_sync` and :func:`to_thread`: decorators, iterators and
context managers that cross between sync and async code."""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, overload

import anyio
from anyio import CancelScope, CapacityLimiter

from .._exceptions import (
    AlreadyEnteredError,
    AsyncCallableError,
    NotAwaitableError,
    PortalClosedError,
)
from ._abandoned import Closer
from ._calls import Call, interpreter_exit
from ._loops import is_cancellation, start_detached
from ._portals import PortalManager
from ._route import CallOptions, route
from ._routing import run_sync, run_with
from ._settings import Policy, blocking_wait, current_defaults, resolve_cancel_grace
from ._threads import HostLoop, async_callable_message, is_async_callable, to_thread

__all__ = ("asyncify", "iterate_sync", "sync_context", "syncify")

T = TypeVar("T")
P = ParamSpec("P")


@overload
def syncify(fn: Callable[P, Awaitable[T]], /) -> Callable[P, T]: ...


@overload
def syncify(
    *,
    timeout: float | None = None,
    backend: str | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, T]]: ...


def syncify(
    fn: Callable[P, Awaitable[T]] | None = None,
    /,
    *,
    timeout: float | None = None,
    backend: str | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> Callable[P, T] | Callable[[Callable[P, Awaitable[T]]], Callable[P, T]]:
    """Turn a coroutine function into a blocking function with the same signature.

    Use it bare (``@syncify``) or with options (``@syncify(timeout=10)``); the options
    are those of :func:`~agentbridge.run_sync`. Keyword arguments are forwarded.

    :raises NotAwaitableError: when decorating an async generator function (iterate
        it with :func:`~agentbridge.iterate_sync`)

    .. versionadded:: 0.1
    """

    def decorate(async_fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
        return blocking_wrapper(
            "syncify",
            async_fn,
            lambda bound: run_sync(
                bound,
                timeout=timeout,
                backend=backend,
                on_running_loop=on_running_loop,
                manager=manager,
            ),
        )

    return decorate if fn is None else decorate(fn)


def blocking_wrapper(
    where: str, async_fn: Callable[P, Awaitable[T]], run: Callable[[Callable[[], Awaitable[T]]], T]
) -> Callable[P, T]:
    """``async_fn`` as a blocking function that hands each bound call to ``run``.

    :raises NotAwaitableError: for an async generator function
    """
    if inspect.isasyncgenfunction(async_fn):
        name = getattr(async_fn, "__qualname__", None) or repr(async_fn)
        raise NotAwaitableError(
            f"{where}() got {name}, an async generator function, whose calls are "
            f"iterated, not awaited; iterate them with agentbridge.iterate_sync({name}(...))"
        )

    @functools.wraps(async_fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(functools.partial(async_fn, *args, **kwargs))

    return wrapper


@overload
def asyncify(fn: Callable[P, T], /) -> Callable[P, Awaitable[T]]: ...


@overload
def asyncify(
    *, limiter: CapacityLimiter | None = None, abandon_on_cancel: bool = False
) -> Callable[[Callable[P, T]], Callable[P, Awaitable[T]]]: ...


def asyncify(
    fn: Callable[P, T] | None = None,
    /,
    *,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> Callable[P, Awaitable[T]] | Callable[[Callable[P, T]], Callable[P, Awaitable[T]]]:
    """Turn a blocking function into a coroutine function that runs it in a worker thread.

    Use it bare (``@asyncify``) or with the options of :func:`~agentbridge.to_thread`.
    Keyword arguments are forwarded.

    :raises AsyncCallableError: when decorating a function that is already async

    .. versionadded:: 0.1
    """

    def decorate(sync_fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
        if is_async_callable(sync_fn):
            raise AsyncCallableError(async_callable_message("asyncify", sync_fn))

        @functools.wraps(sync_fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await to_thread(
                functools.partial(sync_fn, *args, **kwargs),
                limiter=limiter,
                abandon_on_cancel=abandon_on_cancel,
            )

        return wrapper

    return decorate if fn is None else decorate(fn)


class SyncIterator(Iterator[T], AbstractContextManager["SyncIterator[T]"]):
    """A blocking iterator over an async iterable; see :func:`iterate_sync`.

    .. versionadded:: 0.1
    """

    def __init__(self, iterable: AsyncIterable[T], options: CallOptions) -> None:
        self._iterable = iterable
        self._iterator: AsyncIterator[T] | None = None
        self._closer: Closer | None = None
        self._options = options
        self._closed = False

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        try:
            return run_with(self._options, self._anext, ())  # type: ignore[no-any-return]
        except StopAsyncIteration:
            self._closed = True
            self._detach()
            raise StopIteration from None

    async def _anext(self) -> T:
        # __aiter__ and __anext__ are called here, on the loop, never in the caller's
        # thread: an async generator is registered with the loop's async-generator
        # hooks when it is first iterated, which is what later runs its cleanup when it
        # is dropped unfinished (the loop closes it), or left open until its loop stops.
        # A Closer then covers what the hooks do not (see _abandoned).
        if self._iterator is None:
            self._iterator = self._iterable.__aiter__()
            if hasattr(self._iterator, "aclose"):
                self._closer = Closer(self, self._iterator)
        return await self._iterator.__anext__()

    def _detach(self) -> None:
        if self._closer is not None:
            self._closer.detach()
            self._closer = None

    async def _aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()

    def close(self) -> None:
        """Stop iterating and close the async iterator (running its ``aclose()``)."""
        if self._closed:
            return
        self._closed = True
        if self._iterator is None:
            return  # never iterated, so nothing started that could need cleaning up
        self._detach()
        try:
            run_with(self._options, self._aclose, ())
        except PortalClosedError:
            if not interpreter_exit.in_progress:
                raise
            # At exit the portal was closed first, and closing its loop closed the
            # iterator: there is nothing left to clean up, and nowhere to run it.

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None:
        self.close()


def iterate_sync(
    iterable: AsyncIterable[T],
    *,
    timeout: float | None = None,
    backend: str | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> SyncIterator[T]:
    """Iterate over an async iterable from synchronous code.

    Each item is fetched with one :func:`~agentbridge.run_sync` call (``timeout``
    applies per item), so the iterable runs on the same loop as every other call of
    this thread. Use the result as a context manager, or call ``close()``, to run an
    async generator's cleanup as soon as you stop early (an iterator dropped unfinished
    or left open at exit is still closed on its loop, later)::

        with ab.iterate_sync(agen()) as items:
            for item in items:
                ...

    .. versionadded:: 0.1
    """
    options = CallOptions.of(
        timeout=timeout, backend=backend, on_running_loop=on_running_loop, manager=manager
    )
    return iterate_with(iterable, options)


def iterate_with(iterable: AsyncIterable[T], options: CallOptions) -> SyncIterator[T]:
    """:func:`iterate_sync` with its options checked and frozen."""
    if not isinstance(iterable, AsyncIterable):
        raise NotAwaitableError(
            f"iterate_sync() needs an async iterable (an object with __aiter__), got "
            f"{type(iterable).__name__}; for a regular iterable just use a for loop"
        )
    return SyncIterator(iterable, options)


class SyncContextManager(AbstractContextManager[T], Generic[T]):
    """A blocking context manager around an async one; see :func:`sync_context`.

    ``__aenter__`` and ``__aexit__`` run in one task, so async context managers that
    open task groups or cancel scopes work. One cancelled from inside while the block
    runs (its own deadline, a failing task group) is exited at once, and the ``with``
    statement raises its own outcome when the block ends.

    .. versionadded:: 0.1
    """

    def __init__(self, cm: AbstractAsyncContextManager[T], options: CallOptions) -> None:
        self._cm = cm
        self._options = options
        self._entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._exited: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._exit_event: anyio.Event | None = None
        self._exc_info: tuple[Any, Any, Any] = (None, None, None)
        self._signal: Callable[[Callable[[], object]], object] | None = None

    def __enter__(self) -> T:
        if self._signal is not None:
            raise AlreadyEnteredError(
                "this sync_context() has already been entered; make a new one for each "
                "with statement"
            )
        host = route(self._options, current_defaults(), self._cm)
        if isinstance(host, HostLoop):
            self._signal = host.run_sync
            host.run_sync(start_detached, self._hold)
            return self._entered.result()
        self._signal = host.call_soon
        holder: Call[None] = Call(self._hold(), None)
        host.submit(holder)
        waiting: list[concurrent.futures.Future[Any]] = [self._entered, holder.future]
        concurrent.futures.wait(waiting, return_when=concurrent.futures.FIRST_COMPLETED)
        if not self._entered.done():
            holder.future.result()
            raise PortalClosedError("the portal stopped before the context was entered")
        return self._entered.result()

    async def _hold(self) -> None:
        # Nothing may escape this task but a cancellation from outside: on a host loop it
        # runs detached (on trio as a system task, where any other exception crashes the
        # run), and on a portal it would only be lost.
        self._exit_event = anyio.Event()
        with CancelScope() as hold_scope:
            try:
                value = await self._cm.__aenter__()
            except BaseException as exc:
                self._entered.set_exception(exc)
                return
            self._entered.set_result(value)
            try:
                await self._exit_event.wait()
            except BaseException as exc:
                await self._exit_early(exc, hold_scope)
                return
            try:
                suppress = await self._cm.__aexit__(*self._exc_info)
            except BaseException as exc:
                self._exited.set_exception(exc)
            else:
                self._exited.set_result(bool(suppress))

    async def _exit_early(self, exc: BaseException, hold_scope: CancelScope) -> None:
        """Exit the context now: it was cancelled while the block was still running.

        Either from inside (its own deadline expired, a task group it opened failed), or
        from outside (the portal or loop is closing). Which one only the context's exit
        can tell, so it gets the cancellation, as ``async with`` would give it: its own
        scopes turn theirs into its own outcome (the deadline's ``TimeoutError``, the
        group's ``ExceptionGroup``), which the block's ``with`` statement raises when it
        ends; a cancellation from outside comes back out, and is passed on. The exit is
        shielded from outside cancellation, so its cleanup can await; the shield is set
        on a scope around the whole context, so the context's own scopes still nest.
        """
        hold_scope.shield = True
        try:
            await self._cm.__aexit__(type(exc), exc, exc.__traceback__)
        except BaseException as outcome:
            if not is_cancellation(outcome):
                self._exited.set_exception(outcome)
                return
            self._exited.set_exception(
                PortalClosedError("the loop running this context stopped before the block ended")
            )
            raise
        # It absorbed its own cancellation (say, a move_on_after): it has simply ended.
        self._exited.set_result(False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool:
        assert self._signal is not None, "__exit__ without __enter__"
        assert self._exit_event is not None
        self._exc_info = (exc_type, exc_value, traceback)
        self._signal(self._exit_event.set)
        if not interpreter_exit.in_progress:
            return self._exited.result()
        # At exit the portal may already be gone, with nobody left to answer: wait for
        # the context's exit (run by _hold as the portal closed) a bounded time only.
        try:
            return self._exited.result(blocking_wait(resolve_cancel_grace()))
        except (PortalClosedError, concurrent.futures.TimeoutError):
            return False


def sync_context(
    cm: AbstractAsyncContextManager[T],
    *,
    backend: str | None = None,
    on_running_loop: Policy | None = None,
    manager: PortalManager | None = None,
) -> SyncContextManager[T]:
    """Use an async context manager from synchronous code::

        with ab.sync_context(httpx.AsyncClient()) as client:
            ab.run_sync(client.get(url))

    The context is entered and exited on the loop that :func:`~agentbridge.run_sync`
    would use from this thread, so calls made inside the block share it.

    .. versionadded:: 0.1
    """
    return context_with(
        cm, CallOptions.of(backend=backend, on_running_loop=on_running_loop, manager=manager)
    )


def context_with(cm: AbstractAsyncContextManager[T], options: CallOptions) -> SyncContextManager[T]:
    """:func:`sync_context` with its options checked and frozen."""
    if not isinstance(cm, AbstractAsyncContextManager):
        raise NotAwaitableError(
            f"sync_context() needs an async context manager (with __aenter__ and "
            f"__aexit__), got {type(cm).__name__}"
        )
    return SyncContextManager(cm, options)
