"""Import-safe access to trio, for code that must not import it.

Most programs never touch trio, so the bridge only looks at it when it is already in
:data:`sys.modules`. It must then also be *fully* imported: while another thread is
still importing trio, the module object exists but its submodules do not yet.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class _Found:
    #: trio, once seen completely imported: a module stays imported, so the question
    #: is asked of sys.modules only until then (it is on every call's path).
    trio: ModuleType | None = None
    #: sniffio's thread-local, where trio names itself for the whole of a run.
    sniffio_local: Any = None


_found = _Found()


def loaded_trio() -> ModuleType | None:
    """Return the trio module if it has been completely imported, else ``None``."""
    trio = _found.trio
    if trio is not None:
        return trio
    trio = sys.modules.get("trio")
    if trio is None or getattr(trio.__spec__, "_initializing", False):
        return None
    _found.sniffio_local = sys.modules["sniffio"].thread_local  # trio imports sniffio
    _found.trio = trio
    return trio


def in_trio_run() -> bool:
    """Whether a trio run loop is running in the calling thread."""
    trio = loaded_trio()
    # trio names itself in sniffio's thread-local for the whole of a run (sniffio's
    # contract with async libraries). Reading it raises nothing, where
    # trio.lowlevel.in_trio_run() raises and catches an AttributeError in every thread
    # without a run: 1.3 us on each call from a worker thread.
    return (
        trio is not None
        and _found.sniffio_local.name == "trio"
        and bool(trio.lowlevel.in_trio_run())
    )
