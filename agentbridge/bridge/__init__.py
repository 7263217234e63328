"""The sync/async bridge: run coroutines from blocking code and blocking code from
coroutines, on asyncio or trio, from any thread or host.

This package knows nothing of workflows; :mod:`agentbridge.runtime` is built on it.
"""

from __future__ import annotations

from ._adapters import (
    SyncContextManager,
    SyncIterator,
    asyncify,
    iterate_sync,
    sync_context,
    syncify,
)
from ._handle import Portal, current_portal, open_portal, run_in_loop
from ._inflight import dump_calls
from ._loop_local import LoopLocal, loop_local
from ._portals import PortalManager, get_portal_manager
from ._routing import is_async_context, run_sync
from ._settings import BackendSpec, Policy, PortalScope, configure
from ._threads import check_cancelled, to_thread

__all__ = (
    "BackendSpec",
    "LoopLocal",
    "Policy",
    "Portal",
    "PortalManager",
    "PortalScope",
    "SyncContextManager",
    "SyncIterator",
    "asyncify",
    "check_cancelled",
    "configure",
    "current_portal",
    "dump_calls",
    "get_portal_manager",
    "is_async_context",
    "iterate_sync",
    "loop_local",
    "open_portal",
    "run_in_loop",
    "run_sync",
    "sync_context",
    "syncify",
    "to_thread",
)
