"""Adapters built on :func:`run_sync` and :func:`to_thread`: decorators, iterators and
context managers that cross between sync and async code."""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, overload

import anyio
from anyio import CancelScope, CapacityLimiter

from .._exceptions import PortalClosedError
from ._calls import Call, interpreter_exit
from ._loops import start_detached
from ._portals import PortalManager
from ._route import CallOptions, route
from ._routing import run_sync, run_with
from ._settings import Policy, blocking_wait, current_defaults, resolve_cancel_grace
from ._threads import HostLoop, to_thread

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

    .. versionadded:: 0.1
    """

    def decorate(async_fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
        @functools.wraps(async_fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return run_sync(
                functools.partial(async_fn, *args, **kwargs),
                timeout=timeout,
                backend=backend,
                on_running_loop=on_running_loop,
                manager=manager,
            )

        return wrapper

    return decorate if fn is None else decorate(fn)


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

    .. versionadded:: 0.1
    """

    def decorate(sync_fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
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
        self._iterator: AsyncIterator[T] = iterable.__aiter__()
        self._options = options
        self._closed = False

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        try:
            return run_with(self._options, self._iterator.__anext__, ())  # type: ignore[no-any-return]
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None

    def close(self) -> None:
        """Stop iterating and close the async iterator (running its ``aclose()``)."""
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            try:
                run_with(self._options, aclose, ())
            except PortalClosedError:
                if not interpreter_exit.in_progress:
                    raise
                # At exit the portal was closed first, cancelling the iterator's task:
                # there is nothing left to clean up, and nowhere to run it.

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
    async generator's cleanup when you stop early::

        with ab.iterate_sync(agen()) as items:
            for item in items:
                ...

    .. versionadded:: 0.1
    """
    if not isinstance(iterable, AsyncIterable):
        raise TypeError(
            f"iterate_sync() needs an async iterable (an object with __aiter__), got "
            f"{type(iterable).__name__}; for a regular iterable just use a for loop"
        )
    options = CallOptions.of(
        timeout=timeout, backend=backend, on_running_loop=on_running_loop, manager=manager
    )
    return SyncIterator(iterable, options)


class SyncContextManager(AbstractContextManager[T], Generic[T]):
    """A blocking context manager around an async one; see :func:`sync_context`.

    ``__aenter__`` and ``__aexit__`` run in one task, so async context managers that
    open task groups or cancel scopes work.

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
            raise RuntimeError("this sync_context() has already been entered; make a new one")
        host = route(self._options, current_defaults(), self._cm, stacklevel=2)
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
        self._exit_event = anyio.Event()
        try:
            value = await self._cm.__aenter__()
        except BaseException as exc:
            self._entered.set_exception(exc)
            return
        self._entered.set_result(value)
        try:
            await self._exit_event.wait()
        except BaseException as exc:
            # The portal is shutting down under us: still run the exit, then let the
            # cancellation continue. The waiting thread is told even if the exit raises.
            try:
                with CancelScope(shield=True):
                    await self._cm.__aexit__(type(exc), exc, exc.__traceback__)
            finally:
                self._exited.set_exception(PortalClosedError("the portal was closed"))
            raise
        try:
            suppress = await self._cm.__aexit__(*self._exc_info)
        except BaseException as exc:
            self._exited.set_exception(exc)
        else:
            self._exited.set_result(bool(suppress))

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
    if not isinstance(cm, AbstractAsyncContextManager):
        raise TypeError(
            f"sync_context() needs an async context manager (with __aenter__ and "
            f"__aexit__), got {type(cm).__name__}"
        )
    return SyncContextManager(
        cm, CallOptions.of(backend=backend, on_running_loop=on_running_loop, manager=manager)
    )
