"""The run store interface: what a durable run writes, and what it reads back.

A store holds plain records only (strings, numbers, JSON text); the runtime turns
them into results. :class:`~agentbridge.SqliteRunStore` is the one built in; another
database can implement :class:`RunStore` the same way.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any, NamedTuple, TypeVar

__all__ = (
    "AttemptEnded",
    "AttemptStarted",
    "ReusableStep",
    "RunEnded",
    "RunStore",
    "StepEnded",
    "StoredAttempt",
    "StoredRun",
    "StoredStep",
    "Write",
    "maker",
)

R = TypeVar("R")


def maker(cls: type[R]) -> Callable[[dict[str, Any]], R]:
    """A fast constructor of frozen dataclass ``cls``: given a dict of its fields (at
    least those without a default; the dict is kept if it has them all), the instance
    holding them.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    several times the cost of the dict this sets at once; a resume makes a record and
    a result per stored step, so that is most of what reusing a step costs.
    """
    specs = dataclasses.fields(cls)  # type: ignore[arg-type]
    defaults = {spec.name: spec.default for spec in specs if spec.default is not MISSING}
    count = len(specs)
    new, assign = object.__new__, object.__setattr__

    def make(values: dict[str, Any]) -> R:
        made = new(cls)
        assign(made, "__dict__", values if len(values) == count else {**defaults, **values})
        return made

    return make


@dataclass(frozen=True)
class _Outcome:
    """When something started, how long it took, and how it failed."""

    #: When it started, as seconds since the epoch.
    started_at: float | None = field(default=None, kw_only=True)
    #: Seconds it took, once it ended.
    duration: float | None = field(default=None, kw_only=True)
    #: The type name of its error, if it failed.
    error_type: str | None = field(default=None, kw_only=True)
    #: Its error's message.
    error_message: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class StoredStep(_Outcome):
    """A step of a stored run, as it last ended (or ``"running"`` if it never did).

    .. versionadded:: 0.3
    """

    #: The step's id.
    step_id: str
    #: ``"agent"``, ``"function"`` or ``"tool"``.
    kind: str
    #: A :class:`~agentbridge.StepStatus` value, ``"running"`` or ``"interrupted"``.
    status: str
    #: Attempts of the step's last execution.
    attempts: int = 0
    #: Its output as JSON text, or ``None`` if it was not stored.
    output: str | None = None
    #: The hash of its target, version and inputs when it ran; ``None`` if its inputs
    #: were not JSON (then it is never reused).
    input_key: str | None = None
    #: Why a succeeded step's output was not stored (``persist: false``, not JSON,
    #: too large), or ``None``.
    not_stored: str | None = None


@dataclass(frozen=True)
class StoredAttempt(_Outcome):
    """One attempt of a step, in the run's history (every process that ran it).

    .. versionadded:: 0.3
    """

    #: The step's id.
    step_id: str
    #: The attempt's number within its execution, from 1.
    attempt: int
    #: How it ended: a step status, ``"running"`` or ``"interrupted"`` (its process
    #: stopped before it ended).
    status: str


class ReusableStep(NamedTuple):
    """A step of a stored run that a resume may reuse: it succeeded and its output was
    stored. Only what the reuse reads; :class:`StoredStep` has every field.

    A tuple, so a store makes one from its row at next to no cost: a resume reads one
    per stored step, and that was most of what reusing a step cost.

    .. versionadded:: 0.3
    """

    #: The step's id.
    step_id: str
    #: Attempts of the execution that succeeded.
    attempts: int
    #: Its output as JSON text.
    output: str
    #: The hash of its target, version and inputs when it ran; ``None`` if its inputs
    #: were not JSON (then it is never reused).
    input_key: str | None
    #: When its first attempt started, as seconds since the epoch.
    started_at: float | None
    #: Seconds it took.
    duration: float | None


@dataclass(frozen=True)
class StoredRun:
    """A run as its store holds it.

    .. versionadded:: 0.3
    """

    #: The run's id.
    run_id: str
    #: The workflow's name.
    workflow: str
    #: The workflow file it was read from, if any.
    source: str | None
    #: The run's inputs, as JSON text.
    inputs: str
    #: A :class:`~agentbridge.RunStatus` value, or ``"running"``.
    status: str
    #: When it was first started, as seconds since the epoch.
    created_at: float
    #: When it was last written.
    updated_at: float
    #: Seconds its last execution took, once it ended.
    duration: float | None = None
    #: The type name of what ended it, if it did not succeed.
    error_type: str | None = None
    #: That error's message.
    error_message: str | None = None
    #: Its outputs as JSON text, once it succeeded.
    outputs: str | None = None
    #: Its workflow steps, by id, in the order they were first recorded, as
    #: :meth:`RunStore.get_run` reads them (:meth:`RunStore.claim` leaves this empty);
    #: not the records of ``for_each`` items.
    steps: Mapping[str, StoredStep] = field(default_factory=dict)
    #: The steps a resume may reuse, by id, in any order, as :meth:`RunStore.claim`
    #: reads them (:meth:`RunStore.get_run` leaves this empty); with them the
    #: succeeded items of ``for_each`` steps, each a record of id ``STEP_ID[INDEX]``.
    reusable: Mapping[str, ReusableStep] = field(default_factory=dict)


# The writes are tuples: the journal makes two or three per step, and a named tuple
# costs a fifth of a frozen dataclass to make.


class AttemptStarted(NamedTuple):
    """Write: an attempt of a step started."""

    step_id: str
    kind: str
    attempt: int
    started_at: float


class AttemptEnded(NamedTuple):
    """Write: an attempt failed and the step will be retried."""

    step_id: str
    status: str
    ended_at: float
    error_type: str | None
    error_message: str | None


class StepEnded(NamedTuple):
    """Write: a step ended; closes its running attempt with the same status. The
    fields of a :class:`StoredStep`, in its order."""

    step_id: str
    kind: str
    status: str
    attempts: int
    output: str | None
    input_key: str | None
    not_stored: str | None
    started_at: float | None
    duration: float | None
    error_type: str | None
    error_message: str | None


class RunEnded(NamedTuple):
    """Write: the run ended; releases its lease."""

    status: str
    duration: float
    error_type: str | None
    error_message: str | None
    outputs: str | None


Write = AttemptStarted | AttemptEnded | StepEnded | RunEnded


class RunStore(abc.ABC):
    """Where durable runs are recorded. Every method is async, so a store may run its
    I/O anywhere (the SQLite one uses worker threads); each write is fenced by the
    owner token given when the run was claimed.

    .. versionadded:: 0.3
    """

    #: Seconds a claim lasts without a heartbeat.
    lease: float
    #: The most characters of JSON a step's output may take to be stored; a larger
    #: one is not stored (the step runs again on resume).
    max_output: int = 16 * 1024 * 1024

    @abc.abstractmethod
    async def claim(
        self,
        run_id: str,
        owner: str,
        *,
        workflow: str,
        source: str | None,
        inputs: str,
        succeeded: bool = False,
    ) -> StoredRun | None:
        """Make ``owner`` the owner of run ``run_id`` for :attr:`lease` seconds,
        creating it if new (then ``None`` is returned), else returning what a resume
        reads of it: the run, with the steps it can reuse (those that succeeded with
        their output stored) in :attr:`StoredRun.reusable`, and no
        :attr:`StoredRun.steps`. :meth:`get_run` reads every step.

        A run that already succeeded is only read, not claimed (nothing is written),
        unless ``succeeded`` is true: resuming it returns its stored result. Attempts
        left running by an earlier owner are marked ``"interrupted"``.

        :raises RunOwnershipError: if another owner's lease has not expired
        """

    @abc.abstractmethod
    async def write(self, run_id: str, owner: str, writes: Sequence[Write]) -> None:
        """Apply ``writes`` at once (one transaction) and renew the lease.

        :raises RunOwnershipError: if ``owner`` no longer owns the run; nothing is
            written
        :raises StoreBusyError: if another process kept the store locked for too long;
            nothing is written, and the run tries again while its lease lasts
        """

    @abc.abstractmethod
    async def release(self, run_id: str, owner: str) -> None:
        """Give up the lease of a run, if ``owner`` still holds it."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run, or ``None`` if there is none with that id. Its
        :attr:`StoredRun.steps` leave out the records of ``for_each`` items (written
        as steps whose id is ``STEP_ID[INDEX]``; a bracket is in no step id)."""

    @abc.abstractmethod
    async def list_runs(self, limit: int = 100) -> list[StoredRun]:
        """The latest runs, newest first, without their steps."""

    @abc.abstractmethod
    async def history(self, run_id: str) -> list[StoredAttempt]:
        """Every recorded attempt of the run's steps, oldest first."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's connections; a closed store opens them again when used."""
