"""The Ray runner (``agentbridge-runtime[ray]``): steps executed as Ray tasks.

Imported only when :class:`~agentbridge.RayRunner` is first used: ``import
agentbridge`` never imports Ray.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .._exceptions import RunnerError, WorkerCrashedError
from ._engine import EngineRunner, RemoteTraceback
from ._plan import StepCall
from ._worker import Places, call_ahead, call_on_engine

if TYPE_CHECKING:
    from ray import ObjectRef

__all__ = ("RayRunner",)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Remote functions a runner keeps, the most recently used.
REMOTES = 256

#: Seconds a cancelled attempt waits for its task to end, before it is reported.
CANCEL_GRACE = 2.0

#: Seconds the collector's ``ray.wait`` lasts when some of its tasks go on running: the
#: shortest after any task ended or came in, doubling while none did, up to the longest.
#: An outcome reaches the run at most this late (at once when it is the only one
#: awaited); a long step costs the collector a few calls per second, not hundreds.
WAIT_SHORTEST, WAIT_LONGEST = 0.002, 0.02


class RayRunner(EngineRunner["ObjectRef[Any]"], engine="Ray", extra="ray", own="local Ray"):
    """Runs steps as Ray tasks: on the cluster at ``address``, or on a local Ray of the
    runner's own.

    Start it once, off the event loop (``with ab.RayRunner(num_cpus=2) as ray:``, or
    :meth:`start`; a local Ray takes seconds to start, and a run on a runner never
    started fails its steps with :class:`~agentbridge.RunnerError`), name it in a
    runtime's ``runners``, and use it for many runs, on asyncio or trio, from any
    thread. :meth:`close` shuts Ray down only if this runner started it. Ray allows one
    session per process: a runner made while one is up uses it, and leaves it up.

    Every attempt is a new task with Ray's retries off (``max_retries=0``,
    ``retry_exceptions=False``), so the step's ``retries:`` are the only ones; a worker
    that dies fails the attempt with :class:`~agentbridge.WorkerCrashedError`.
    Cancelling an attempt calls ``ray.cancel``: a queued task never starts, a running
    one is interrupted (``KeyboardInterrupt`` in the worker). A step's exception comes
    back as its own type and message (not Ray's ``RayTaskError`` wrapper), the worker's
    traceback as its cause. The callable, inputs and output are pickled (cloudpickle),
    so workers need agentbridge and the step's module; an async callable (which Ray
    refuses as a task) is run to completion on the worker with :func:`asyncio.run`.

    A local Ray of the runner's own listens on 127.0.0.1 only (it sets
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` unless set, before Ray is imported), with
    no dashboard. Ray itself writes its session under ``temp_dir`` and, for a new
    local cluster, a token to ``~/.ray/auth_token`` unless ``RAY_AUTH_TOKEN`` (with
    ``RAY_AUTH_MODE=token``) is set in the environment.

    :param address: a cluster's address (``"ray://10.0.0.5:10001"``, ``"auto"``), or
        ``None`` for a local Ray of the runner's own
    :param connect_timeout: seconds to reach ``address`` (a TCP connection to its host
        and port) before :meth:`start` fails; ``ray.init`` itself would retry an
        address nothing listens at for minutes
    :param num_cpus: the local Ray's CPUs (default: the machine's)
    :param temp_dir: the local Ray's session folder (default: Ray's, under ``/tmp/ray``)
    :param init_options: more keyword arguments for ``ray.init``
    :param capacity: attempts a run keeps waiting on Ray at once (default: four per CPU
        of the cluster when started, at least 1024)
    :param submit_ahead: whether a step that waits only on steps running on this
        runner is handed to the engine before they end, their tasks its arguments (a
        chain then runs back to back on the cluster; see the scaling guide for when a
        step qualifies and the one window in which its callable can run although its
        upstream was cancelled); ``False`` submits every step once its upstream ended
    :raises ConfigurationError: for options that contradict each other

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_batch_remotes",
        "_collector",
        "_owned",
        "_remotes",
        "_remotes_lock",
        "init_options",
    )

    def __init__(
        self,
        address: str | None = None,
        *,
        connect_timeout: float = 10.0,
        num_cpus: int | None = None,
        temp_dir: str | None = None,
        init_options: Mapping[str, Any] | None = None,
        capacity: int | None = None,
        submit_ahead: bool = True,
    ) -> None:
        own = {"num_cpus": num_cpus, "temp_dir": temp_dir}
        super().__init__(address, capacity, own, connect_timeout, submit_ahead)
        options: dict[str, Any] = {"include_dashboard": False}
        if address is None:
            options["_node_ip_address"] = "127.0.0.1"
        if num_cpus is not None:
            options["num_cpus"] = num_cpus
        if temp_dir is not None:
            options["_temp_dir"] = os.path.abspath(temp_dir)
        self.init_options = {**options, **(init_options or {})}
        self._owned = False
        #: A Ray remote function per step callable, by the callable's pickled bytes.
        self._remotes: OrderedDict[bytes, Any] = OrderedDict()
        self._remotes_lock = threading.Lock()
        #: The remote function of each callable the batch being submitted calls, by the
        #: callable's id (the batch keeps each alive): pickled once per batch, not once
        #: per attempt.
        self._batch_remotes: dict[tuple[int, _Form], Any] = {}
        self._collector: _Collector | None = None

    def _open(self) -> int:
        if self.address is None:
            # Read by Ray when it is imported: the node's address is then 127.0.0.1.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        if ray.is_initialized() and self.address is not None:
            raise RunnerError(
                f"Ray is already initialised in this process (one session per process), so "
                f"it cannot also connect to {self.address}; make the RayRunner without an "
                f"address to use that session"
            )
        if not ray.is_initialized():
            self._probe()
            try:
                ray.init(self.address, **self.init_options)
            except Exception as exc:
                where = f"at {self.address}" if self.address else "locally"
                raise RunnerError(
                    f"Ray could not be started or reached {where} ({type(exc).__name__}: "
                    f"{exc}); check the address, or the options given to ray.init"
                ) from None
            self._owned = True
        self._collector = _Collector()
        return int(ray.cluster_resources().get("CPU", 1))

    def _probe(self) -> None:
        """Fail within :attr:`connect_timeout` if nothing listens at :attr:`address`
        (``host:port`` or ``ray://host:port``; ``"auto"`` and the like are Ray's to
        resolve)."""
        host, _, port = (self.address or "").rpartition("://")[2].rpartition(":")
        if not host or not port.isdigit():
            return
        try:
            socket.create_connection((host.strip("[]"), int(port)), self.connect_timeout).close()
        except OSError as exc:
            raise self._unreachable(exc) from None

    def _shutdown(self) -> None:
        import ray

        with self._remotes_lock:
            self._remotes.clear()
        if self._collector is not None:
            self._collector.close()
        if self._owned:
            self._owned = False
            ray.shutdown()

    def _submit(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        key: str,
        upstream: tuple[ObjectRef[Any], ...],
        places: Places,
    ) -> ObjectRef[Any]:
        # Ray charges for every argument a task carries (tens of microseconds each, as
        # much as the rest of a tiny task's submission), so an attempt carries as few
        # as it can: its inputs if it has any, and its upstream tasks (Ray passes each
        # one's value once it succeeds, or fails this). Where their outputs go is part
        # of the remote function when they go whole (tasks of a chain share it), an
        # argument when a path walk picks from them (a remote function per step would
        # be shipped to the cluster for each).
        form: _Form = None
        if upstream:
            form = (places, bool(kwargs)) if all(path is None for *_, path in places) else PASSED
        args: tuple[Any, ...] = (kwargs,) if kwargs else ()
        if form == PASSED:
            args = ((kwargs, places),)
        ref: ObjectRef[Any] = self._remote_for(call.fn, form).remote(*args, *upstream)
        return ref

    def _batch_begins(self) -> None:
        self._batch_remotes.clear()

    def _discard(self, handle: ObjectRef[Any]) -> None:
        import ray

        ray.cancel(handle)

    def _remote_for(self, fn: Any, form: _Form) -> Any:
        """The Ray remote function that calls ``fn`` with arguments of ``form`` (see
        :func:`_calling`): one per callable, so the callable crosses to the cluster
        once, not with every task (that halved a fan-out's cost per task). Keyed by its
        pickled bytes, as a task carrying it would have them: a callable pickled by
        value whose state changed since gets a remote of its own."""
        remote = self._batch_remotes.get((id(fn), form))
        if remote is None:
            remote = self._batch_remotes[id(fn), form] = self._remote_by_value(fn, form)
        return remote

    def _remote_by_value(self, fn: Any, form: _Form) -> Any:
        import cloudpickle
        import ray

        key = cloudpickle.dumps((fn, form))
        with self._remotes_lock:
            remote = self._remotes.get(key)
            if remote is not None:
                self._remotes.move_to_end(key)
                return remote
        remote = ray.remote(max_retries=0, retry_exceptions=False)(_calling(fn, form))
        with self._remotes_lock:
            self._remotes[key] = remote
            if len(self._remotes) > REMOTES:
                self._remotes.popitem(last=False)
        return remote

    def _when_done(self, handle: ObjectRef[Any], callback: Callable[[object], None]) -> None:
        assert self._collector is not None  # made by _open, before any submission
        self._collector.add(handle, callback)

    def _outcome(self, call: StepCall, finished: ObjectRef[Any] | _Fetched | _Closed) -> Any:
        import ray
        from ray import exceptions

        if isinstance(finished, _Fetched):
            return finished.output
        if isinstance(finished, _Closed):
            raise RunnerError(f"step {call.step.id!r}: {finished.why}")
        try:
            return ray.get(finished)
        except exceptions.RayTaskError as exc:
            cause = exc.cause
            trace = RemoteTraceback(_ANSI.sub("", str(exc)))
            if isinstance(cause, Exception) and not isinstance(
                cause, exceptions.UnserializableException | exceptions.RayError
            ):
                raise cause.with_traceback(None) from trace
            raise RunnerError(
                f"step {call.step.id!r} raised an exception that cannot be brought back "
                f"from its Ray worker: {_ANSI.sub('', str(cause)).strip()}"
            ) from trace
        except exceptions.WorkerCrashedError:
            raise WorkerCrashedError(
                f"step {call.step.id!r}: the Ray worker running it died (it exited, was "
                f"killed or ran out of memory); Ray starts new workers"
            ) from None
        except exceptions.TaskCancelledError:
            raise RunnerError(
                f"step {call.step.id!r}: its Ray task was cancelled on the cluster"
            ) from None
        except exceptions.RayError as exc:
            raise RunnerError(
                f"step {call.step.id!r}: Ray could not run it or bring its output back "
                f"({type(exc).__name__}: {_ANSI.sub('', str(exc)).strip()})"
            ) from None

    def _cancel(self, handle: ObjectRef[Any]) -> str:
        import ray
        from ray import exceptions

        try:
            ray.cancel(handle)
            # ray.cancel only asks: the attempt is reported once the task has ended.
            ray.get(handle, timeout=CANCEL_GRACE)
        except exceptions.TaskCancelledError:
            return "its Ray task was cancelled: interrupted if it ran, dropped if queued"
        except exceptions.GetTimeoutError:
            return (
                f"its Ray task did not stop within {CANCEL_GRACE:g} s of ray.cancel (in code "
                f"that does not see KeyboardInterrupt) and may run on"
            )
        except Exception as exc:  # it failed, or Ray is gone: it runs no more
            return f"its Ray task ended before it could be cancelled ({type(exc).__name__})"
        return "its Ray task had finished before it could be cancelled"


#: How a task's arguments are laid out, besides the outputs of the attempts it was
#: submitted ahead of (top-level arguments, the only ones Ray resolves): ``None``, its
#: inputs or nothing; :data:`PASSED`, its inputs and their places as one argument; or
#: ``(places, inputs)``, places whose outputs go whole, then its inputs if ``inputs``.
_Form: TypeAlias = "tuple[Places, bool] | Literal['passed'] | None"
PASSED: Literal["passed"] = "passed"


def _calling(fn: Any, form: _Form) -> Callable[..., Any]:
    """A task that calls ``fn`` with arguments of ``form``: as :func:`call_on_engine`
    does without upstream outputs, as :func:`call_ahead` does with them."""
    task: Callable[..., Any]
    if form is None:

        def task(kwargs: dict[str, Any] | None = None) -> Any:
            return call_on_engine(fn, kwargs or {})

    elif form == PASSED:

        def task(passed: tuple[dict[str, Any], Places], *upstream: Any) -> Any:
            return call_ahead(fn, *passed, *upstream)

    else:
        places, inputs = form
        if inputs:

            def task(kwargs: dict[str, Any], *upstream: Any) -> Any:
                return call_ahead(fn, kwargs, places, *upstream)

        else:

            def task(*upstream: Any) -> Any:
                return call_ahead(fn, {}, places, *upstream)

    task.__qualname__ = task.__name__ = getattr(fn, "__name__", "step")
    return task


class _Fetched:
    """What a task's callback gets when its output was fetched with others'."""

    __slots__ = ("output",)

    def __init__(self, output: Any) -> None:
        self.output = output


class _Closed:
    """What a task's callback gets instead of its task when the runner stopped
    awaiting it."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class _Collector:
    """One thread of a runner's that learns which of its tasks ended, with
    ``ray.wait`` over all of them, and calls each one's callback there.

    Not ``ObjectRef.future()``: each of those futures is completed from Ray's own I/O
    thread, whose calls into Python then compete for the GIL with the run and with
    Ray's work for the next tasks (a 200-task fan-out took about a sixth longer than
    one ``ray.get`` of them all, measured side by side).
    """

    __slots__ = ("_changed", "_closed", "_inbox", "_thread")

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._inbox: list[tuple[ObjectRef[Any], Callable[[object], None]]] = []
        self._closed: _Closed | None = None
        self._thread: threading.Thread | None = None

    def add(self, ref: ObjectRef[Any], callback: Callable[[object], None]) -> None:
        """Call ``callback(ref)`` once ``ref``'s task ended (or a :class:`_Closed`, if
        the collector stops first), in the collector's thread."""
        with self._changed:
            if self._closed is None:
                self._inbox.append((ref, callback))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._collect, name="agentbridge-ray-collector", daemon=True
                    )
                    self._thread.start()
                self._changed.notify()
                return
            closed = self._closed
        callback(closed)

    def close(self) -> None:
        """Stop: the tasks awaited now get a :class:`_Closed`."""
        with self._changed:
            self._closed = _Closed("the Ray runner was closed while it ran; make a new one")
            self._changed.notify()

    def _collect(self) -> None:
        import ray

        awaited: dict[ObjectRef[Any], Callable[[object], None]] = {}
        wait = WAIT_SHORTEST
        while True:
            with self._changed:
                while not self._inbox and not awaited and self._closed is None:
                    self._changed.wait()
                closed = self._closed
                came, self._inbox = self._inbox, []
            awaited.update(came)
            if closed is not None:
                break
            if came:
                wait = WAIT_SHORTEST
            try:
                ended, _ = ray.wait(list(awaited), num_returns=len(awaited), timeout=wait)
            except Exception as exc:  # Ray is gone: nothing awaited can end any more
                closed = _Closed(
                    f"Ray stopped answering while it ran ({type(exc).__name__}: {exc})"
                )
                break
            wait = WAIT_SHORTEST if ended else min(2 * wait, WAIT_LONGEST)
            # Each callback records the outcome, and raises nothing.
            try:  # one fetch for all that ended, unless one failed
                fetched = ray.get(ended)
            except Exception:
                for ref in ended:
                    awaited.pop(ref)(ref)
            else:
                for ref, output in zip(ended, fetched, strict=True):
                    awaited.pop(ref)(_Fetched(output))
        with self._changed:
            self._closed = self._closed or closed
            came, self._inbox = self._inbox, []
        awaited.update(came)
        for callback in awaited.values():
            callback(closed)
