"""The ``process`` runner: steps executed in a pool of worker processes.

A :class:`ProcessRunner` owns a :class:`concurrent.futures.ProcessPoolExecutor`, made on
first use and kept until :meth:`~ProcessRunner.close`: it belongs to no event loop, so
one pool serves every run, on asyncio or trio, from any thread. An attempt is awaited
without a thread: the future's done-callback wakes the run's loop through the bridge's
thread-safe scheduler.
"""

from __future__ import annotations

import atexit
import os
import pickle
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio import get_cancelled_exc_class

from .._exceptions import ConfigurationError, RunnerError, WorkerCrashedError
from ..bridge._loops import thread_safe_scheduler
from ._plan import StepCall
from ._runner import StepRunner
from ._worker import Outcome, invoke

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# multiprocessing and the pool are imported on first use of a runner: importing the
# runtime does not pay for them (about 15 ms).

__all__ = ("ProcessRunner", "default_process_runner")


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Waiter:
    __slots__ = ("event", "granted", "schedule")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.schedule: Callable[..., object] = thread_safe_scheduler()
        self.granted = False


class _Workers:
    """The pool's free workers, counted across every loop and thread that uses it.

    An attempt is handed to the pool only once a worker is free, so one the pool has
    taken is one that runs: cancelling an attempt that waits here means it never
    starts (the pool's own queue marks work as running before a worker takes it, so it
    could not be cancelled there). Waiters are served first come, first served.
    """

    __slots__ = ("_free", "_lock", "_waiters")

    def __init__(self, total: int) -> None:
        self._free = total
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    async def take(self) -> None:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            waiter = _Waiter()
            self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except get_cancelled_exc_class():
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:
                self.give_back()
            raise

    def give_back(self, *_: object) -> None:
        """Free a worker (from any thread): hand it to the first waiter still there."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.schedule(waiter.event.set)
                except RuntimeError:  # its loop has ended, and the waiting task with it
                    continue
                waiter.granted = True
                return
            self._free += 1


class ProcessRunner(StepRunner):
    """Runs steps in a pool of worker processes, reused across steps and runs.

    Name it in a runtime's ``runners`` (``ab.Runtime(runners={"cpu":
    ab.ProcessRunner(max_workers=4)})``) and in a step's ``runner:``; the name
    ``process`` gives a shared default one without configuration. The pool starts on
    the first attempt; :meth:`close` (or leaving a ``with`` block) shuts it down, and
    an attempt after that fails with :class:`~agentbridge.RunnerError`.

    A step's callable and inputs are pickled to the worker and its output or exception
    pickled back, so it must be a module-level function (or another picklable
    callable) of a module the workers can import; an async callable is run to
    completion in the worker with :func:`asyncio.run`. A step that cannot cross is
    refused when the workflow is validated. Cancelling an attempt (a timeout, a failing
    sibling, the caller) drops it if it has not started; one already running cannot be
    interrupted, so the step is reported cancelled or timed out at once and its worker
    finishes the call in the background. A worker that dies fails its attempt with
    :class:`~agentbridge.WorkerCrashedError` (and the other attempts then running in
    the pool), and the runner starts a new pool.

    :param max_workers: worker processes (default: ``os.cpu_count()``)
    :param start_method: how workers start: ``"forkserver"`` (default where
        available, else ``"spawn"``) or ``"spawn"``; ``"fork"`` is refused, as forking
        a process that runs threads (the bridge's portals) can deadlock the child
    :raises ConfigurationError: for a bad ``max_workers`` or ``start_method``

    .. versionadded:: 0.2
    """

    __slots__ = ("__weakref__", "_closed", "_context", "_lock", "_pool", "_workers", "capacity")

    def __init__(self, max_workers: int | None = None, *, start_method: str | None = None) -> None:
        import multiprocessing

        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigurationError(
                f"max_workers must be a whole number, 1 or more, or None; got {max_workers!r}"
            )
        methods = [
            m for m in ("forkserver", "spawn") if m in multiprocessing.get_all_start_methods()
        ]
        if start_method is None:
            start_method = methods[0]
        if start_method not in methods:
            raise ConfigurationError(
                f"start_method must be one of {', '.join(methods)}, got {start_method!r}"
            )
        self.capacity = max_workers
        self._context = multiprocessing.get_context(start_method)
        self._closed = False
        self._reset()
        method = weakref.WeakMethod(self._after_fork)

        def after_fork() -> None:
            bound = method()
            if bound is not None:
                bound()

        os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        # Also in a fork child: the pool's workers and threads are the parent's, and a
        # lock may have been held by a thread that does not exist here. The child starts
        # a pool of its own on first use.
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._workers = _Workers(self.capacity)

    def _after_fork(self) -> None:
        self._reset()
        if self._context.get_start_method() == "forkserver":
            # The fork server is the parent's child, and multiprocessing in a fork
            # child still tries to wait on it as its own: a child's workers spawn.
            self._context = self._context.get_context("spawn")

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the pool down: attempts not started are dropped, running ones awaited.
        Closing twice does nothing."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def on_loop(self, call: StepCall) -> bool:
        """Never: every attempt runs in a worker process."""
        return False

    def cancelled_how(self, call: StepCall) -> str:
        """What cancelling a running attempt does."""
        return "its worker process finishes the call in the background"

    def runs_elsewhere(self, call: StepCall) -> bool:
        """Always: in a worker process."""
        return True

    def refuses(self, call: StepCall) -> str | None:
        """Why ``call`` cannot run in a worker process, or ``None``."""
        if call.step.kind == "agent":
            return "an agent step cannot run on a process runner; it stays in this process"
        try:
            pickle.dumps(call.fn)
        except Exception as exc:
            return (
                f"its {call.step.kind} {call.step.target_name} cannot be pickled to a "
                f"worker process ({type(exc).__name__}: {exc}); use a module-level function"
            )
        return None

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Run one attempt in a worker and await its outcome without blocking the loop."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            payload = pickle.dumps((call.fn, kwargs))
        except Exception as exc:
            raise RunnerError(
                f"step {call.step.id!r}: its inputs cannot be pickled to a worker process "
                f"({type(exc).__name__}: {exc})"
            ) from None
        await self._workers.take()
        try:
            pool, future = self._submit(call, payload)
        except BaseException:
            self._workers.give_back()
            raise
        future.add_done_callback(self._workers.give_back)
        woken = anyio.Event()
        schedule = thread_safe_scheduler()

        def wake(_: object) -> None:
            try:
                schedule(woken.set)
            except RuntimeError:  # the run's loop has ended: nobody waits any more
                pass

        future.add_done_callback(wake)
        try:
            await woken.wait()
        except get_cancelled_exc_class():
            future.cancel()  # a call the pool has taken runs to its end in the background
            raise
        try:
            outcome: Outcome = future.result()
        except BrokenProcessPool:
            self._drop(pool)
            raise WorkerCrashedError(
                f"step {call.step.id!r}: a worker process died while the step ran (it "
                f"exited, was killed or ran out of memory); the runner starts new workers"
            ) from None
        return _unpacked(call, outcome)

    def _submit(
        self, call: StepCall, payload: bytes
    ) -> tuple[ProcessPoolExecutor, Future[Outcome]]:
        from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

        for _ in range(2):
            with self._lock:
                if self._closed:
                    raise RunnerError(
                        f"step {call.step.id!r}: the process runner was closed; give the "
                        f"runtime an open one"
                    )
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(self.capacity, mp_context=self._context)
                pool = self._pool
            try:
                return pool, pool.submit(invoke, payload)
            except BrokenProcessPool:  # a worker died since the last attempt
                self._drop(pool)
        raise WorkerCrashedError(f"step {call.step.id!r}: the worker processes keep dying")

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        # Every attempt of a broken pool fails with it; the first to see it drops that
        # pool (never a newer one), and the next attempt starts a new one.
        with self._lock:
            if self._pool is not pool:
                return
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


def _unpacked(call: StepCall, outcome: Outcome) -> Any:
    how, data, text = outcome
    if how == "returned":
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise RunnerError(
                f"step {call.step.id!r} returned a value that cannot be unpickled here "
                f"({type(exc).__name__}: {exc}); return plain data"
            ) from None
    if how == "raised":
        cause = _RemoteTraceback(text)
        if data:
            try:
                error = pickle.loads(data)
            except Exception:
                pass
            else:
                raise error from cause
        last = text.rstrip().rsplit("\n", 1)[-1]
        raise RunnerError(
            f"step {call.step.id!r} raised {last}, and that exception cannot be pickled "
            f"back from its worker process (its traceback is the cause)"
        ) from cause
    raise RunnerError(
        f"step {call.step.id!r} returned a value that cannot be pickled back from its "
        f"worker process: {text}; return plain data"
    )


_default: ProcessRunner | None = None
_default_lock = threading.Lock()


def _new_default_lock() -> None:
    global _default_lock
    _default_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_default_lock)


def default_process_runner() -> ProcessRunner:
    """The shared runner the name ``process`` gives: ``os.cpu_count()`` workers, made on
    first use, closed at interpreter exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ProcessRunner()
            atexit.register(_default.close)
        return _default
