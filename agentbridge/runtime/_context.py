"""What a running step can ask about itself: :func:`current_step`."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ("StepContext", "current_step", "step_context")


@dataclass(frozen=True)
class StepContext:
    """The run and step an attempt belongs to, as :func:`current_step` gives it.

    .. versionadded:: 0.3
    """

    #: The run's id: stable across resumes of a durable run.
    run_id: str
    #: The step's id.
    step_id: str
    #: The attempt's number within this execution of the step, from 1.
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """``"RUN_ID:STEP_ID"``: the same for every attempt of the step in this run,
        before and after a resume. Pass it to external systems that deduplicate
        requests (payment APIs, queues), since a durable run executes a step at least
        once, not exactly once.
        """
        return f"{self.run_id}:{self.step_id}"


#: The attempt running in this context; the driver sets it around each attempt.
step_context: ContextVar[StepContext | None] = ContextVar("agentbridge_step", default=None)


def current_step() -> StepContext | None:
    """The step whose attempt is running in this context, or ``None`` outside a step.

    Set for async steps and for sync steps in worker threads (the thread runs in a
    copy of the step's context); not inside a worker process
    (:class:`~agentbridge.ProcessRunner`), which would need the key passed as an input.

    .. versionadded:: 0.3
    """
    return step_context.get()
