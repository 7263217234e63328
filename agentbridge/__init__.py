"""agentbridge: a sync/async bridge for agent and workflow runtimes.

It works in every host: plain scripts, any thread, worker threads of a running loop,
FastAPI handlers, Jupyter cells and trio programs. See https://agentbridge.readthedocs.io
"""

from __future__ import annotations

from ._exceptions import (
    AgentBridgeError,
    BlockingCallError,
    BlockingCallWarning,
    BridgeError,
    BridgeTimeoutError,
    ConfigurationError,
    NotAwaitableError,
    PortalClosedError,
    WorkflowError,
)
from .bridge import (
    BackendSpec,
    Policy,
    PortalManager,
    SyncContextManager,
    SyncIterator,
    asyncify,
    check_cancelled,
    configure,
    get_portal_manager,
    is_async_context,
    iterate_sync,
    run_sync,
    sync_context,
    syncify,
    to_thread,
)

__version__ = "0.1.0"

__all__ = (
    "AgentBridgeError",
    "BackendSpec",
    "BlockingCallError",
    "BlockingCallWarning",
    "BridgeError",
    "BridgeTimeoutError",
    "ConfigurationError",
    "NotAwaitableError",
    "Policy",
    "PortalClosedError",
    "PortalManager",
    "SyncContextManager",
    "SyncIterator",
    "WorkflowError",
    "__version__",
    "asyncify",
    "check_cancelled",
    "configure",
    "get_portal_manager",
    "is_async_context",
    "iterate_sync",
    "run_sync",
    "sync_context",
    "syncify",
    "to_thread",
)
