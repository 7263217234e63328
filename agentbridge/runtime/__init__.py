"""The workflow runtime: runs :class:`~agentbridge.Workflow` steps concurrently as their
dependencies allow, through sync and async entry points that work in every host.

It is built on :mod:`agentbridge.bridge` and :mod:`agentbridge.workflow`.
"""

from __future__ import annotations

from ._context import StepContext, current_step
from ._dask import DaskRunner
from ._events import Event, RunFinished, RunStarted, StepFinished, StepRetrying, StepStarted
from ._process import ProcessRunner
from ._ray import RayRunner
from ._results import RunStatus, StepResult, StepStatus, WorkflowResult
from ._runtime import Executor, Runtime, WorkflowLike, run_workflow, run_workflow_async
from ._sqlite import SqliteRunStore
from ._store import ReusableStep, RunStore, StoredAttempt, StoredRun, StoredStep

__all__ = (
    "DaskRunner",
    "Event",
    "Executor",
    "ProcessRunner",
    "RayRunner",
    "ReusableStep",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "RunStore",
    "Runtime",
    "SqliteRunStore",
    "StepContext",
    "StepFinished",
    "StepResult",
    "StepRetrying",
    "StepStarted",
    "StepStatus",
    "StoredAttempt",
    "StoredRun",
    "StoredStep",
    "WorkflowLike",
    "WorkflowResult",
    "current_step",
    "run_workflow",
    "run_workflow_async",
)
