"""The Dask runner (``agentbridge-runtime[dask]``): steps executed on a ``distributed`` cluster.

Imported only when :class:`~agentbridge.DaskRunner` is first used: ``import
agentbridge`` never imports Dask.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import traceback
from asyncio import CancelledError
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import RunnerError, WorkerCrashedError
from ._engine import EngineRunner, RemoteTraceback
from ._plan import StepCall
from ._worker import Places, call_ahead, call_on_engine

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster

__all__ = ("DaskRunner",)

#: Seconds a finished attempt's future is kept at most, waiting for a submission to go
#: with (see :meth:`DaskRunner._retire`).
RELEASE_AFTER = 0.05


class DaskRunner(EngineRunner["Future[Any]"], engine="Dask", extra="dask", own="local cluster"):
    """Runs steps on a Dask cluster through a ``distributed.Client``: one at
    ``address``, or a ``LocalCluster`` of the runner's own.

    Start it once, off the event loop (``with ab.DaskRunner() as dask:``, or
    :meth:`start`; a run on a runner never started fails its steps with
    :class:`~agentbridge.RunnerError`), name it in a runtime's ``runners``, and use it
    for as many runs as you like, on asyncio or trio, from any thread. :meth:`close`
    shuts down only what it started: its own cluster, or just its connection.

    Every attempt is a task of its own (``pure=False`` and a fresh key: Dask never
    merges two attempts nor returns a cached error), and the step's ``retries:`` are the
    only retries: the runner's own cluster gives up on a task at the first worker that
    dies with it (``distributed.scheduler.allowed-failures`` is 0 there; set it on a
    scheduler you connect to), and that attempt fails with
    :class:`~agentbridge.WorkerCrashedError`. Cancelling an attempt (a timeout, a
    failing sibling, the caller) cancels its task: one still queued never starts, one
    already on a worker runs to its end there (Dask cannot interrupt it), and the
    step's result says which. The callable, its inputs and its output are pickled
    (cloudpickle), so workers need agentbridge and the step's module installed; an
    async callable is run to completion on the worker with :func:`asyncio.run`.

    :param address: a scheduler's address (``"tcp://10.0.0.5:8786"``), or ``None`` to
        start a ``LocalCluster`` that listens on 127.0.0.1 only (its HTTP endpoints on
        a free port)
    :param n_workers: the local cluster's workers (default: Dask's)
    :param threads_per_worker: the local cluster's threads per worker (default: Dask's)
    :param processes: whether the local cluster's workers are processes (default) or
        threads of this process (only pickling-free Python code gains nothing from it)
    :param local_directory: where the local cluster's workers keep their files (default:
        a temporary folder, removed on :meth:`close`)
    :param cluster_options: more keyword arguments for ``LocalCluster``
    :param connect_timeout: seconds to reach ``address`` before :meth:`start` fails
    :param capacity: attempts a run keeps waiting on the cluster at once (default: four
        per worker thread when started, at least 1024)
    :param submit_ahead: whether a step that waits only on steps running on this
        runner is handed to the engine before they end, their tasks its arguments (a
        chain then runs back to back on the cluster; see the scaling guide for when a
        step qualifies and the one window in which its callable can run although its
        upstream was cancelled); ``False`` submits every step once its upstream ended
    :raises ConfigurationError: for options that contradict each other

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_client",
        "_cluster",
        "_releasing",
        "_retired",
        "_retired_lock",
        "_scratch",
        "cluster_options",
        "local_directory",
    )

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        processes: bool = True,
        local_directory: str | None = None,
        cluster_options: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
        capacity: int | None = None,
        submit_ahead: bool = True,
    ) -> None:
        local = {"n_workers": n_workers, "threads_per_worker": threads_per_worker}
        own = {**local, "local_directory": local_directory, "cluster_options": cluster_options}
        super().__init__(address, capacity, own, connect_timeout, submit_ahead)
        self.local_directory = local_directory
        self.cluster_options: dict[str, Any] = {
            **{k: v for k, v in local.items() if v is not None},
            "processes": processes,
            **(cluster_options or {}),
        }
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        #: Finished attempts' futures, kept until the next submission (see _retire).
        self._retired: list[Future[Any]] = []
        self._retired_lock = threading.Lock()
        self._releasing = False
        self._scratch: str | None = None

    @property
    def client(self) -> Client:
        """The runner's ``distributed.Client``, once started.

        :raises RunnerError: before :meth:`start` or after :meth:`close`
        """
        if self._client is None:
            raise RunnerError("this Dask runner is not started; call its start() first")
        return self._client

    def _open(self) -> int:
        import dask
        from distributed import Client, LocalCluster

        if self.address is not None:
            try:
                self._client = Client(
                    self.address, timeout=self.connect_timeout, set_as_default=False
                )
            except (OSError, TimeoutError) as exc:
                raise self._unreachable(exc) from None
        else:
            directory = self.local_directory
            if directory is None:
                directory = self._scratch = tempfile.mkdtemp(prefix="agentbridge-dask-")
            # Every listening socket on the loopback interface, the HTTP endpoints of
            # the scheduler and workers included (Dask's default binds them outward).
            options: dict[str, Any] = {
                "dashboard_address": "127.0.0.1:0",
                "worker_dashboard_address": "127.0.0.1:0",
                "local_directory": directory,
            }
            if self.cluster_options["processes"]:  # threads talk in-process, not over TCP
                options["host"] = "127.0.0.1"
            options.update(self.cluster_options)
            # The step's retries are the only ones: a task whose worker dies fails at once.
            # And Dask's own scratch files (its lock files) go to the runner's folder too,
            # not to /tmp/dask-scratch-space.
            settings = {
                "distributed.scheduler.allowed-failures": 0,
                "temporary-directory": directory,
            }
            with dask.config.set(settings):
                self._cluster = LocalCluster(**options)
            self._client = Client(self._cluster, set_as_default=False)
        return sum(self._client.nthreads().values())

    def _shutdown(self) -> None:
        self._release()
        client, cluster, scratch = self._client, self._cluster, self._scratch
        self._client = self._cluster = self._scratch = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _submit(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        key: str,
        upstream: tuple[Future[Any], ...],
        places: Places,
    ) -> Future[Any]:
        client = self.client
        if upstream:  # Dask passes each one's result once it succeeds, or fails this
            future = client.submit(
                call_ahead, call.fn, kwargs, places, *upstream, key=key, pure=False, retries=0
            )
        else:
            future = client.submit(call_on_engine, call.fn, kwargs, key=key, pure=False, retries=0)
        self._release()  # after the submission, so they go to the scheduler with it
        return future

    def _discard(self, handle: Future[Any]) -> None:
        handle.client.cancel([handle])

    def _when_done(self, handle: Future[Any], callback: Callable[[object], None]) -> None:
        # Awaited on the client's own loop, where Dask learns of the outcome: the
        # gathers waiting at once go to the cluster as one request (Dask joins them, as
        # a raw ``client.gather`` of a list), and the callback wakes the run's loop from
        # there without blocking it. Through ``add_done_callback`` and a thread that
        # gathers, each outcome took three thread hops more (about 2 ms of a chain's
        # step, measured with distributed 2026.8 on threads).
        handle.client.loop.add_callback(self._fetch, handle, callback)

    async def _fetch(self, future: Future[Any], callback: Callable[[object], None]) -> None:
        try:
            value = await future.client.gather(future, asynchronous=True)
        except BaseException as exc:  # the loop's own cancellation too: nobody hangs
            if isinstance(exc, Exception):
                _trace_as_text(exc)
            callback(_Failed(exc))
            if not isinstance(exc, Exception):
                raise
        else:
            callback(_Fetched(value))
        self._retire(future)

    def _retire(self, future: Future[Any]) -> None:
        """Keep a finished attempt's future until the next submission, or for
        :data:`RELEASE_AFTER` at most: released with a submission, its key goes to the
        scheduler in the same message, which drops it on the worker in the same message
        as the next task. Dask sends each stream's messages at most every few
        milliseconds (10 ms from a client, 5 ms from the scheduler to a worker, in
        distributed 2026.8): released alone as a chain's step ended, the next step's
        submission waited for that interval twice."""
        with self._retired_lock:
            self._retired.append(future)
            if self._releasing:
                return
            self._releasing = True
        future.client.loop.call_later(RELEASE_AFTER, self._release)

    def _release(self) -> None:
        with self._retired_lock:
            retired, self._retired, self._releasing = self._retired, [], False
        del retired  # the last references: Dask releases the keys

    def _outcome(self, call: StepCall, finished: _Fetched | _Failed) -> Any:
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        if isinstance(finished, _Fetched):
            return finished.value
        try:
            raise finished.error
        except KilledWorker:
            raise WorkerCrashedError(
                f"step {call.step.id!r}: the Dask worker running it died (it exited, was "
                f"killed or ran out of memory); the cluster replaces it"
            ) from None
        except (FutureCancelledError, CancelledError) as exc:
            raise RunnerError(
                f"step {call.step.id!r}: its Dask task was cancelled on the cluster "
                f"({exc or type(exc).__name__}); was the runner closed?"
            ) from None

    def _cancel(self, handle: Future[Any]) -> str:
        client = handle.client
        try:
            holders = [w for w, keys in client.processing().items() if handle.key in keys]
            started = holders and any(client.run(_executing, handle.key, workers=holders).values())
            client.cancel([handle])
        except Exception as exc:  # the cluster is gone: nothing runs there any more
            return f"its Dask task could not be cancelled ({type(exc).__name__}: {exc})"
        if started:
            return "its Dask task was already running on a worker, which runs it to its end"
        return "its Dask task was dropped before it started"


class _Fetched:
    """The output of a finished attempt."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Failed:
    """The exception of a finished attempt, or of fetching its output."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _trace_as_text(error: Exception) -> None:
    """Put the traceback Dask gave ``error`` (the worker's frames, after the client's)
    in its cause, as text: the run drops the tracebacks of its engine steps' errors
    when it ends (see ``StepRunner.runs_elsewhere``)."""
    lines = traceback.format_tb(error.__traceback__)
    trace = RemoteTraceback("".join(["Traceback (most recent call last):\n", *lines]).rstrip())
    trace.__cause__ = error.__cause__
    error.__cause__ = trace


def _executing(key: str, dask_worker: Any) -> bool:
    """On a worker: whether it is executing the task ``key`` (not just holding it)."""
    task = dask_worker.state.tasks.get(key)
    return task is not None and task.state in ("executing", "long-running")
