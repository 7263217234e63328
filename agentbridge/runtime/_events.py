"""The typed events a run reports while it goes, for progress displays and logs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..workflow import StepKind
from ._results import StepResult, WorkflowResult

__all__ = ("Event", "RunFinished", "RunStarted", "StepFinished", "StepRetrying", "StepStarted")


@dataclass(frozen=True)
class Event:
    """Base class of the events of a run.

    .. versionadded:: 0.1
    """

    #: The name of the workflow being run.
    workflow: str
    #: The id of the run, as in its :attr:`WorkflowResult.run_id
    #: <agentbridge.WorkflowResult.run_id>`.
    run_id: str = field(kw_only=True)
    #: When it happened, by :func:`time.monotonic`: for intervals within one process.
    at: float = field(default_factory=time.monotonic, kw_only=True)
    #: When it happened, by the wall clock (UTC): for logs and other processes.
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc), kw_only=True)


@dataclass(frozen=True)
class RunStarted(Event):
    """The run has checked its inputs and is starting its first steps.

    .. versionadded:: 0.1
    """

    #: The inputs of the run, defaults filled in.
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class StepStarted(Event):
    """An attempt of a step has started.

    .. versionadded:: 0.1
    """

    #: The step's id.
    step_id: str
    #: The step's kind.
    kind: StepKind
    #: The attempt number, from 1 (of the item, in a ``for_each`` step).
    attempt: int
    #: In a ``for_each`` step, the index of the item this attempt runs; else ``None``.
    item: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class StepRetrying(Event):
    """An attempt of a step failed or timed out, and the step will be tried again.

    .. versionadded:: 0.1
    """

    #: The step's id.
    step_id: str
    #: The step's kind.
    kind: StepKind
    #: The number of the attempt that failed, from 1.
    attempt: int
    #: What the attempt raised (a :class:`~agentbridge.StepTimeoutError` if it timed out).
    error: BaseException
    #: Seconds before the next attempt.
    delay: float
    #: In a ``for_each`` step, the index of the item that will be tried again.
    item: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class StepFinished(Event):
    """A step has ended, in any way: see ``result.status``.

    .. versionadded:: 0.1
    """

    #: The step's id.
    step_id: str
    #: The step's kind.
    kind: StepKind
    #: The step's result.
    result: StepResult


@dataclass(frozen=True)
class RunFinished(Event):
    """The run has ended; this is always the last event.

    .. versionadded:: 0.1
    """

    #: The run's result.
    result: WorkflowResult
