"""What a run produces: a :class:`WorkflowResult` with one :class:`StepResult` per step."""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

from ..workflow import StepKind

__all__ = ("RunStatus", "StepResult", "StepStatus", "WorkflowResult")


class StepStatus(str, enum.Enum):
    """How a step ended.

    .. versionadded:: 0.1
    """

    #: The step returned a value.
    SUCCEEDED = "succeeded"
    #: Its last attempt raised.
    FAILED = "failed"
    #: It was running when the run was cancelled (a sibling failed, or the caller
    #: cancelled or timed out).
    CANCELLED = "cancelled"
    #: Its last attempt did not finish within the step's timeout.
    TIMED_OUT = "timed_out"
    #: It never started: its `when` condition was false, a dependency did not succeed,
    #: or the run stopped first.
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


class RunStatus(str, enum.Enum):
    """How a whole run ended.

    .. versionadded:: 0.1
    """

    #: Every step succeeded.
    SUCCEEDED = "succeeded"
    #: A step failed or timed out.
    FAILED = "failed"
    #: The run was cancelled by its caller.
    CANCELLED = "cancelled"
    #: The run's own ``timeout`` expired.
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step.

    .. versionadded:: 0.1
    """

    #: The step's id.
    step_id: str
    #: ``"agent"``, ``"function"`` or ``"tool"``.
    kind: StepKind
    #: How the step ended.
    status: StepStatus
    #: What the step returned (``None`` unless it succeeded).
    output: Any = None
    #: How many times the step's callable was called.
    attempts: int = 0
    #: When the first attempt started (UTC), or ``None`` if the step never started.
    started_at: datetime | None = None
    #: Seconds from the first attempt's start to the step's end, or ``None``.
    duration: float | None = None
    #: The exception of the last attempt, for a failed or timed-out step.
    error: BaseException | None = None
    #: For a step cancelled or timed out while an attempt ran: what became of that
    #: attempt, as its runner tells it (e.g. ``"its thread was abandoned"``, ``"its Dask
    #: task was dropped before it started"``); ``None`` otherwise.
    #:
    #: .. versionadded:: 0.2
    cancelled_how: str | None = field(default=None, kw_only=True)
    #: Whether the output was taken from the run's store instead of running the step
    #: (a resumed durable run); its attempts and times are those recorded then.
    #:
    #: .. versionadded:: 0.3
    reused: bool = field(default=False, kw_only=True)
    #: Why a succeeded step's output was not stored by a durable run (``persist:
    #: false``, not JSON, too large), so a resume runs it again; ``None`` otherwise.
    #:
    #: .. versionadded:: 0.3
    not_stored: str | None = field(default=None, kw_only=True)
    #: What the step reported using, such as an agent framework's token counts (its own
    #: usage object: pydantic-ai's ``RunUsage``, the OpenAI Agents SDK's ``Usage``,
    #: LangChain's usage metadata by model name), or ``None``. A ``for_each`` step's is
    #: the list of its items' usages, in item order (``None`` for an item that reported
    #: none or did not finish), or ``None`` if none reported any. See
    #: :class:`~agentbridge.integrations.StepOutput`.
    usage: Any = field(default=None, kw_only=True)
    #: For a ``for_each`` step that failed or timed out: the index of the item whose
    #: failure ended it (the other items were cancelled); else ``None``.
    item: int | None = field(default=None, kw_only=True)

    @property
    def finished_at(self) -> datetime | None:
        """When the step ended (UTC): ``started_at`` plus the monotonic ``duration``, or
        ``None`` if the step never started.
        """
        return _end(self.started_at, self.duration)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable data; times are ISO 8601 strings."""
        finished_at = self.finished_at
        return {
            "kind": self.kind,
            "status": self.status.value,
            "output": jsonable(self.output),
            "attempts": self.attempts,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": finished_at.isoformat() if finished_at else None,
            "duration": self.duration,
            "error": _error_dict(self.error),
            "cancelled_how": self.cancelled_how,
            "reused": self.reused,
            "not_stored": self.not_stored,
            "usage": jsonable(self.usage),
            "item": self.item,
        }


@dataclass(frozen=True)
class WorkflowResult:
    """The outcome of one run of a workflow.

    .. versionadded:: 0.1
    """

    #: The workflow's name.
    workflow: str
    #: How the run ended.
    status: RunStatus
    #: The declared outputs, or every succeeded step's output by id when the workflow
    #: declares none. A plain dict of this result's own, so ``json.dumps`` can take it.
    outputs: dict[str, Any]
    #: Every step's result, by step id, in the order of the workflow.
    steps: Mapping[str, StepResult]
    #: When the run started (UTC).
    started_at: datetime
    #: Seconds the run took.
    duration: float
    #: What ended a run that did not succeed: the first failing step's exception, or
    #: the timeout or cancellation.
    error: BaseException | None = None
    #: The run's id, also on its events: the one given to a durable run, else a new
    #: ``uuid4`` hex string for every run.
    run_id: str = field(kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", dict(self.outputs))
        object.__setattr__(self, "steps", MappingProxyType(dict(self.steps)))

    @property
    def succeeded(self) -> bool:
        """Whether every step succeeded."""
        return self.status is RunStatus.SUCCEEDED

    @property
    def finished_at(self) -> datetime:
        """When the run ended (UTC): ``started_at`` plus the monotonic ``duration``."""
        return self.started_at + timedelta(seconds=self.duration)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable data (``json.dumps`` accepts it as is); times
        are ISO 8601 strings."""
        return {
            "workflow": self.workflow,
            "run_id": self.run_id,
            "status": self.status.value,
            "outputs": jsonable(dict(self.outputs)),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": self.duration,
            "error": _error_dict(self.error),
            "steps": {step_id: step.to_dict() for step_id, step in self.steps.items()},
        }


def _end(started_at: datetime | None, duration: float | None) -> datetime | None:
    if started_at is None or duration is None:
        return None
    return started_at + timedelta(seconds=duration)


def _error_dict(error: BaseException | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": type(error).__qualname__, "message": str(error)}


def jsonable(value: Any) -> Any:
    """``value`` as data ``json.dumps`` takes, converted by these rules, in order:

    * ``None``, booleans, numbers and strings as they are; enums as their values;
    * a pydantic model as its own ``model_dump(mode="json")`` (its private attributes
      are not fields, so they never appear);
    * mappings as dicts with string keys; lists, tuples and sets as lists;
    * a dataclass as a dict of its fields, less those whose name starts with ``_``
      (private state, such as a pydantic-ai run result's message history);
    * dates and times as ISO 8601 strings;
    * anything else as its ``repr()``, as is a container met again inside itself.
    """
    return _jsonable(value, set())


def _jsonable(value: Any, seen: set[int]) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, seen)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if id(value) in seen:
        return repr(value)
    seen.add(id(value))
    try:
        return _container(value, seen)
    finally:
        seen.discard(id(value))


def _container(value: Any, seen: set[int]) -> Any:
    dumped = _pydantic_dump(value)
    if dumped is not _NOT_PYDANTIC:
        return dumped
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, seen) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item, seen) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name), seen)
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    return repr(value)


_NOT_PYDANTIC: Any = object()


def _pydantic_dump(value: Any) -> Any:
    # pydantic is looked up, never imported: a model exists only once it is imported.
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(value, pydantic.BaseModel):
        return _NOT_PYDANTIC
    try:
        return value.model_dump(mode="json")
    except ValueError:  # a field JSON cannot hold: pydantic's own rule fails, so use ours
        return jsonable(value.model_dump())
