"""What the Dask and Ray runners share: a life cycle started off the loop, and attempts
submitted, awaited and cancelled through an engine's blocking client on any loop.

Both engines' asyncio-style clients fail on trio, so a runner uses the blocking one:
the attempt is submitted by the runner's submitting thread (pickling and the engine's
bookkeeping never block the run's loop, and the loop does not wait for it), its
outcome is fetched where the engine learns of it (Ray: a thread of its own; Dask: the
client's own loop), and the run's loop is woken from there through the bridge's
thread-safe scheduler. Cancelling the
awaiting task cancels the engine's task too, before the step is recorded: queued work
never starts.
"""

from __future__ import annotations

import abc
import contextvars
import functools
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio import CancelScope, get_cancelled_exc_class

from .._distribution import install_hint
from .._exceptions import ConfigurationError, RunnerError
from ..bridge._loops import thread_safe_scheduler
from ._plan import StepCall
from ._runner import StepRunner
from ._worker import Places, Returned, Unpicklable

__all__ = ("EngineRunner", "Pending", "RemoteTraceback")

Handle = TypeVar("Handle")

#: The least default capacity of an engine runner: wide enough that a fan-out of
#: hundreds of steps is queued on the engine at once (which hands each task to a free
#: worker without a round trip to the run), while a fan-out of many thousands still
#: keeps a bounded number of tasks in flight.
MIN_CAPACITY = 1024

#: What cancelling the current task's last engine attempt did, for its step's result.
_cancelled_how: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentbridge_engine_cancelled_how", default=None
)


class RemoteTraceback(Exception):
    """The traceback of an exception raised on an engine's worker, as text."""

    def __str__(self) -> str:
        return str(self.args[0])


class Pending:
    """One attempt on its way through the engine: what :meth:`EngineRunner.begin`
    gives, for :meth:`~EngineRunner.wait` or :meth:`~EngineRunner.drop`."""

    __slots__ = (
        "call",
        "done",
        "dropped",
        "handle",
        "key",
        "kwargs",
        "loop",
        "outcome",
        "places",
        "submitted",
        "upstream",
    )

    def __init__(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        key: str,
        loop: _Loop,
        upstream: tuple[Pending, ...],
        places: Places,
    ) -> None:
        self.call = call
        self.kwargs = kwargs
        self.key = key
        self.loop = loop
        #: The attempts whose outputs this one takes as arguments (see :meth:`begin`),
        #: kept until it is done so their engine tasks stay wanted.
        self.upstream = upstream
        self.places = places
        self.handle: Any = None
        #: ``(True, output)`` or ``(False, exception)``, once it is known.
        self.outcome: tuple[bool, Any] | None = None
        #: Set by the submitting thread once the engine took the attempt or refused it.
        self.submitted = threading.Event()
        self.done = anyio.Event()
        #: Set on the loop when nobody will await it any more: not submitted if it
        #: was not yet, cancelled on the engine otherwise.
        self.dropped = False


class _Loop:
    """What one event loop's attempts on one runner share: the batch being gathered for
    submission, and the outcomes waiting to wake the loop. Engine threads wake it once
    per burst of outcomes, not once per attempt."""

    __slots__ = ("attempts", "batch", "lock", "schedule", "waking", "woken")

    def __init__(self, schedule: Callable[..., object]) -> None:
        self.schedule = schedule
        self.attempts = 0
        self.batch: list[Pending] = []
        self.lock = threading.Lock()
        self.woken: list[Pending] = []
        self.waking = False

    def wake(self, attempt: Pending, outcome: tuple[bool, Any]) -> None:
        """From any thread: record ``attempt``'s outcome and have the loop set its
        ``done``."""
        attempt.outcome = outcome
        with self.lock:
            self.woken.append(attempt)
            if self.waking:  # a wake-up is already on its way, and takes this along
                return
            self.waking = True
        try:
            self.schedule(self._set_done)
        except RuntimeError:  # the run's loop has ended: nobody waits any more
            pass

    def _set_done(self) -> None:
        with self.lock:
            woken, self.woken, self.waking = self.woken, [], False
        for attempt in woken:
            attempt.done.set()


class EngineRunner(StepRunner, Generic[Handle]):
    """A runner on a distributed engine: started once (off the loop), used by many runs
    from any thread and loop, closed by its owner. Subclasses say how to open and shut
    the engine, submit one attempt, learn its outcome and cancel it."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "_loops",
        "_state",
        "_submitter",
        "address",
        "capacity",
        "capacity_hint",
        "connect_timeout",
        "submit_ahead",
    )

    #: The engine's name, for messages.
    engine: str
    #: The extra that installs it.
    extra: str

    #: What the runner starts when given no address, for messages.
    own: str

    def __init_subclass__(cls, *, engine: str, extra: str, own: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.engine, cls.extra, cls.own = engine, extra, own

    def __init__(
        self,
        address: str | None,
        capacity: int | None,
        own_options: Mapping[str, object],
        connect_timeout: float,
        submit_ahead: bool,
    ) -> None:
        given = [
            name
            for name, value in own_options.items()
            if (value if isinstance(value, Mapping) else value is not None)
        ]
        if address is not None and given:
            raise ConfigurationError(
                f"a {type(self).__name__} given an address connects to that cluster: leave "
                f"out the {self.own}'s options ({', '.join(own_options)})"
            )
        self.address = address
        self.connect_timeout = connect_timeout
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ConfigurationError(
                f"capacity must be a whole number, 1 or more, or None; got {capacity!r}"
            )
        self.capacity_hint = capacity
        if not isinstance(submit_ahead, bool):
            raise ConfigurationError(f"submit_ahead must be True or False; got {submit_ahead!r}")
        #: Whether a chain's dependents are handed to the engine before their upstream
        #: ended (see :mod:`._ahead`).
        self.submit_ahead = submit_ahead
        #: Attempts a run keeps waiting on the engine at once: the ``capacity`` given,
        #: else four per worker slot the engine had when it started (at least
        #: :data:`MIN_CAPACITY`). More than it has slots: the engine queues them, and
        #: ships the next as soon as a slot frees, without a round trip to the run.
        self.capacity = capacity or 1
        self._lock = threading.Lock()
        self._state = "new"
        #: The loops awaiting attempts on this runner now, by their anyio token.
        self._loops: dict[anyio.lowlevel.EventLoopToken, _Loop] = {}
        #: Submits every loop's batches, in order; the loop hands a batch over and
        #: moves on, woken only by outcomes (no thread hop to await per batch).
        self._submitter = ThreadPoolExecutor(
            1, thread_name_prefix=f"agentbridge-{self.engine.lower()}-submit"
        )

    def __enter__(self: Any) -> Any:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect to the engine, or start one of the runner's own; blocks until it is
        up (from a loop, call it in a worker thread: ``await
        anyio.to_thread.run_sync(runner.start)``). Starting twice does nothing.

        :raises RunnerError: if the engine cannot be reached or started, or the runner
            was closed
        """
        with self._lock:
            if self._state == "started":
                return
            if self._state == "closed":
                raise RunnerError(f"this {self.engine} runner was closed; make a new one")
            try:
                slots = self._open()
            except ImportError as exc:
                raise RunnerError(
                    f"the {self.engine} runner needs its extra ({exc}): {install_hint(self.extra)}"
                ) from None
            if self.capacity_hint is None:
                self.capacity = max(MIN_CAPACITY, 4 * slots)
            self._state = "started"

    def close(self) -> None:
        """Shut down what :meth:`start` started (a cluster or session of the runner's
        own; a connection only, for an engine it connected to). Attempts running then
        fail; closing twice does nothing."""
        with self._lock:
            started, self._state = self._state == "started", "closed"
            if started:
                self._shutdown()
            self._submitter.shutdown(wait=False)

    def _unreachable(self, exc: BaseException) -> RunnerError:
        """The error of :meth:`start` for an :attr:`address` it could not reach."""
        return RunnerError(
            f"the {self.engine} cluster at {self.address} could not be reached within "
            f"{self.connect_timeout:g} s ({type(exc).__name__}: {exc}); check the address "
            f"and that the cluster runs"
        )

    def on_loop(self, call: StepCall) -> bool:
        """Never: every attempt runs on the engine."""
        return False

    def refuses(self, call: StepCall) -> str | None:
        """Why ``call`` cannot run on the engine: an agent step, or a callable that
        cannot be pickled (with cloudpickle, as the engine does)."""
        try:
            import cloudpickle
        except ImportError:
            return f"the {self.engine} runner needs its extra: {install_hint(self.extra)}"
        if call.step.kind == "agent":
            return f"an agent step cannot run on a {self.engine} runner; it stays in this process"
        try:
            cloudpickle.dumps(call.fn)
        except Exception as exc:
            return (
                f"its {call.step.kind} {call.step.target_name} cannot be pickled to a "
                f"{self.engine} worker ({type(exc).__name__}: {exc})"
            )
        return None

    def cancelled_how(self, call: StepCall) -> str:
        """What cancelling this task's last attempt of ``call`` did to its engine task."""
        return _cancelled_how.get() or f"its {self.engine} task was cancelled"

    def submits_ahead(self, call: StepCall) -> EngineRunner[Any] | None:
        """This runner, unless made with ``submit_ahead=False``: it takes attempts
        whose inputs are other attempts' outputs."""
        return self if self.submit_ahead else None

    def runs_elsewhere(self, call: StepCall) -> bool:
        """Always: on the engine's workers."""
        return True

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Submit one attempt off the loop, with the others of this loop that are ready
        now (one thread hop for all of them), await its outcome without a thread, and
        cancel the engine's task if this is cancelled."""
        return await self.wait(self.begin(call, kwargs))

    def begin(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        upstream: tuple[Pending, ...] = (),
        places: Places = (),
    ) -> Pending:
        """On the run's loop, without waiting: hand one attempt of ``call`` to the
        engine, with the attempts begun on this loop until it next runs its callbacks
        (one thread hop for all of them). ``upstream``: attempts on this runner whose
        outputs the engine passes to this one when they succeed (it never runs if one
        fails); ``places`` says which inputs they give. Then :meth:`wait` for it, or
        :meth:`drop` it."""
        token = anyio.lowlevel.current_token()
        loop = self._loops.get(token)
        if loop is None:  # only this loop's thread writes its key: no lock needed
            loop = self._loops[token] = _Loop(thread_safe_scheduler())
        # Never deduplicated, never cached: a fresh key per attempt, and distinct from
        # other runners' on a shared cluster (and from a forked copy's).
        key = f"{call.step.id}-{uuid.uuid4().hex}"
        attempt = Pending(call, kwargs, key, loop, upstream, places)
        loop.attempts += 1
        batch = loop.batch
        batch.append(attempt)
        if len(batch) == 1:  # the first attempt of a batch has it handed over soon
            loop.schedule(self._hand_over, loop)
        return attempt

    async def wait(self, attempt: Pending, on_cancel: Callable[[], object] | None = None) -> Any:
        """The output of an attempt :meth:`begin` handed over, or raise its exception;
        cancelled, call ``on_cancel`` (on the loop, at once), then cancel its engine task
        (what that did: :meth:`cancelled_how`)."""
        _cancelled_how.set(None)
        try:
            try:
                await attempt.done.wait()
            except get_cancelled_exc_class():
                if on_cancel is not None:
                    on_cancel()
                with CancelScope(shield=True):
                    how = await anyio.to_thread.run_sync(self._cancel_submitted, attempt)
                    if how is not None:
                        _cancelled_how.set(how)
                raise
        finally:
            self._forget(attempt)
        assert attempt.outcome is not None
        ok, value = attempt.outcome
        if not ok:
            raise value
        if isinstance(value, Unpicklable):
            raise RunnerError(
                f"step {attempt.call.step.id!r} returned a value that cannot be pickled "
                f"back from its {self.engine} worker ({value.why}); return plain data"
            )
        return value.value if isinstance(value, Returned) else value

    def drop(self, attempt: Pending) -> None:
        """On the run's loop: nobody will wait for ``attempt``; never submit it, or
        cancel its engine task (without waiting for the engine)."""
        attempt.dropped = True
        self._forget(attempt)
        try:
            self._submitter.submit(self._discard_submitted, attempt)
        except RuntimeError:  # the runner closed: its tasks went with it
            pass

    def _forget(self, attempt: Pending) -> None:
        loop = attempt.loop
        loop.attempts -= 1
        if not loop.attempts:
            token = anyio.lowlevel.current_token()
            if self._loops.get(token) is loop:
                del self._loops[token]

    def _hand_over(self, loop: _Loop) -> None:
        # On the loop, once the tasks ready when the batch began have run.
        batch, loop.batch = loop.batch, []
        try:
            self._submitter.submit(self._submit_all, batch, loop)
        except RuntimeError:  # the runner closed: each attempt fails as closed
            self._submit_all(batch, loop)

    def _submit_all(self, batch: list[Pending], loop: _Loop) -> None:
        """In the submitting thread: submit each attempt of ``batch``, and have the
        engine record its outcome and wake ``loop`` when it is done."""
        self._batch_begins()
        for attempt in batch:
            try:
                if not attempt.dropped:
                    upstream = tuple(before.handle for before in attempt.upstream)
                    attempt.handle = self._submit_checked(attempt, upstream)
                    self._when_done(
                        attempt.handle, functools.partial(self._finished, attempt, loop)
                    )
            except BaseException as exc:
                loop.wake(attempt, (False, exc))
            finally:
                attempt.submitted.set()

    def _discard_submitted(self, attempt: Pending) -> None:
        # In the submitting thread, after any batch that held the attempt.
        if attempt.handle is not None:
            try:
                self._discard(attempt.handle)
            except Exception:  # the engine is gone: nothing runs there any more
                pass

    def _cancel_submitted(self, attempt: Pending) -> str | None:
        """In a worker thread: once ``attempt`` is submitted, cancel its engine task;
        what that did, or ``None`` if the engine never took it."""
        attempt.submitted.wait()
        return None if attempt.handle is None else self._cancel(attempt.handle)

    def _finished(self, attempt: Pending, loop: _Loop, finished: object) -> None:
        # Where the engine learned the outcome (its thread or its client's loop).
        attempt.upstream = ()
        try:
            outcome: tuple[bool, Any] = (True, self._outcome(attempt.call, finished))
        except BaseException as exc:
            outcome = (False, exc)
        loop.wake(attempt, outcome)

    def _submit_checked(self, attempt: Pending, upstream: tuple[Handle, ...]) -> Handle:
        call = attempt.call
        state = self._state
        if state != "started":
            fix = "make a new one" if state == "closed" else "call its start() first"
            raise RunnerError(
                f"step {call.step.id!r}: the {self.engine} runner was "
                f"{'closed' if state == 'closed' else 'never started'}; {fix}"
            )
        try:
            if None in upstream:  # an upstream attempt the engine refused: it fails too
                raise RunnerError(f"step {call.step.id!r}: a step it depends on was not submitted")
            return self._submit(call, attempt.kwargs, attempt.key, upstream, attempt.places)
        except RunnerError:
            raise
        except Exception as exc:
            raise RunnerError(
                f"step {call.step.id!r}: {self.engine} could not take the attempt "
                f"({type(exc).__name__}: {exc}); check that its inputs can be pickled and "
                f"the engine is reachable"
            ) from None

    def _batch_begins(self) -> None:
        """In the submitting thread, before a batch is submitted: what a subclass
        remembers from one attempt to the next may be forgotten now."""

    @abc.abstractmethod
    def _open(self) -> int:
        """Connect or start the engine; the worker slots it has."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Undo :meth:`_open`."""

    @abc.abstractmethod
    def _submit(
        self,
        call: StepCall,
        kwargs: dict[str, Any],
        key: str,
        upstream: tuple[Handle, ...],
        places: Places,
    ) -> Handle:
        """Hand one attempt to the engine under the unique ``key``; with ``upstream``
        tasks, as :func:`~._worker.call_ahead` with them as top-level arguments."""

    @abc.abstractmethod
    def _when_done(self, handle: Handle, callback: Callable[[object], None]) -> None:
        """Have the engine call ``callback`` once ``handle`` is done (in a thread or on
        a loop of the engine's, never the run's), with what :meth:`_outcome` reads the
        outcome from."""

    @abc.abstractmethod
    def _outcome(self, call: StepCall, finished: Any) -> Any:
        """The output of a done attempt, or raise its exception as the step's own (or a
        :class:`RunnerError`); may block."""

    @abc.abstractmethod
    def _cancel(self, handle: Handle) -> str:
        """Cancel the attempt on the engine (blocking); what that did, for messages."""

    @abc.abstractmethod
    def _discard(self, handle: Handle) -> None:
        """Cancel the attempt on the engine, without waiting for it to end."""
