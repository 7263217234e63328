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
from ._portals import PortalManager, get_portal_manager
from ._routing import is_async_context, run_sync
from ._settings import BackendSpec, Policy, configure
from ._threads import check_cancelled, to_thread

__all__ = (
    "BackendSpec",
    "Policy",
    "PortalManager",
    "SyncContextManager",
    "SyncIterator",
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
