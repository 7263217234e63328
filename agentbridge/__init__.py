"""agentbridge: a sync/async bridge for agent and workflow runtimes.

It works in every host: plain scripts, any thread, worker threads of a running loop,
FastAPI handlers, Jupyter cells and trio programs. See https://agentbridge.readthedocs.io
"""

# Importing agentbridge loads the exceptions only: each layer (the bridge, the runtime,
# the workflow model with its YAML loader) is imported on first use of one of its
# names (PEP 562), so a program that only bridges never pays for the workflow engine.
# Type checkers and IDEs see the real imports below.

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._exceptions import (
    AgentBridgeError,
    AlreadyEnteredError,
    AsyncCallableError,
    BlockingCallError,
    BlockingCallWarning,
    BridgeError,
    BridgeTimeoutError,
    BridgeUsageError,
    ConfigurationError,
    ExpressionError,
    LoopAffinityError,
    NotAwaitableError,
    PortalClosedError,
    Problem,
    RunnerError,
    StepFailedError,
    StepTimeoutError,
    WorkerCrashedError,
    WorkflowError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)

if _typing.TYPE_CHECKING:
    from .bridge import (
        BackendSpec,
        LoopLocal,
        Policy,
        Portal,
        PortalManager,
        PortalScope,
        SyncContextManager,
        SyncIterator,
        asyncify,
        check_cancelled,
        configure,
        current_portal,
        dump_calls,
        get_portal_manager,
        is_async_context,
        iterate_sync,
        loop_local,
        open_portal,
        run_in_loop,
        run_sync,
        sync_context,
        syncify,
        to_thread,
    )
    from .runtime import (
        Event,
        Executor,
        ProcessRunner,
        RunFinished,
        RunStarted,
        RunStatus,
        Runtime,
        StepFinished,
        StepResult,
        StepRetrying,
        StepStarted,
        StepStatus,
        WorkflowLike,
        WorkflowResult,
        run_workflow,
        run_workflow_async,
    )
    from .workflow import (
        InputSpec,
        LoadLimits,
        Registry,
        Step,
        StepKind,
        Workflow,
        agent,
        function,
        get_default_registry,
        tool,
    )

__version__ = "0.1.0"

#: The public names loaded on first use, and the subpackage of each.
_LAZY: dict[str, str] = {
    "LoopLocal": "bridge",
    "Portal": "bridge",
    "PortalScope": "bridge",
    "current_portal": "bridge",
    "dump_calls": "bridge",
    "loop_local": "bridge",
    "open_portal": "bridge",
    "run_in_loop": "bridge",
    "BackendSpec": "bridge",
    "Policy": "bridge",
    "PortalManager": "bridge",
    "SyncContextManager": "bridge",
    "SyncIterator": "bridge",
    "asyncify": "bridge",
    "check_cancelled": "bridge",
    "configure": "bridge",
    "get_portal_manager": "bridge",
    "is_async_context": "bridge",
    "iterate_sync": "bridge",
    "run_sync": "bridge",
    "sync_context": "bridge",
    "syncify": "bridge",
    "to_thread": "bridge",
    "Event": "runtime",
    "Executor": "runtime",
    "ProcessRunner": "runtime",
    "RunFinished": "runtime",
    "RunStarted": "runtime",
    "RunStatus": "runtime",
    "Runtime": "runtime",
    "StepFinished": "runtime",
    "StepResult": "runtime",
    "StepRetrying": "runtime",
    "StepStarted": "runtime",
    "StepStatus": "runtime",
    "WorkflowLike": "runtime",
    "WorkflowResult": "runtime",
    "run_workflow": "runtime",
    "run_workflow_async": "runtime",
    "InputSpec": "workflow",
    "LoadLimits": "workflow",
    "Registry": "workflow",
    "Step": "workflow",
    "StepKind": "workflow",
    "Workflow": "workflow",
    "agent": "workflow",
    "function": "workflow",
    "get_default_registry": "workflow",
    "tool": "workflow",
}


def __getattr__(name: str) -> _typing.Any:
    package = _LAZY.get(name)
    if package is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{package}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = (
    "AgentBridgeError",
    "AlreadyEnteredError",
    "AsyncCallableError",
    "BackendSpec",
    "BlockingCallError",
    "BlockingCallWarning",
    "BridgeError",
    "BridgeTimeoutError",
    "BridgeUsageError",
    "ConfigurationError",
    "Event",
    "Executor",
    "ExpressionError",
    "InputSpec",
    "LoadLimits",
    "LoopAffinityError",
    "LoopLocal",
    "NotAwaitableError",
    "Policy",
    "Portal",
    "PortalClosedError",
    "PortalManager",
    "PortalScope",
    "Problem",
    "ProcessRunner",
    "Registry",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "RunnerError",
    "Runtime",
    "Step",
    "StepFailedError",
    "StepFinished",
    "StepKind",
    "StepResult",
    "StepRetrying",
    "StepStarted",
    "StepStatus",
    "StepTimeoutError",
    "SyncContextManager",
    "SyncIterator",
    "WorkerCrashedError",
    "Workflow",
    "WorkflowError",
    "WorkflowLike",
    "WorkflowResult",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
    "__version__",
    "agent",
    "asyncify",
    "check_cancelled",
    "configure",
    "current_portal",
    "dump_calls",
    "function",
    "get_default_registry",
    "get_portal_manager",
    "is_async_context",
    "iterate_sync",
    "loop_local",
    "open_portal",
    "run_in_loop",
    "run_sync",
    "run_workflow",
    "run_workflow_async",
    "sync_context",
    "syncify",
    "to_thread",
    "tool",
)
