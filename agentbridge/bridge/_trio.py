"""Import-safe access to trio, for code that must not import it.

Most programs never touch trio, so the bridge only looks at it when it is already in
:data:`sys.modules`. It must then also be *fully* imported: while another thread is
still importing trio, the module object exists but its submodules do not yet.
"""

from __future__ import annotations

import sys
from types import ModuleType


def loaded_trio() -> ModuleType | None:
    """Return the trio module if it has been completely imported, else ``None``."""
    trio = sys.modules.get("trio")
    if trio is None or getattr(trio.__spec__, "_initializing", False):
        return None
    return trio


def in_trio_run() -> bool:
    """Whether a trio run loop is running in the calling thread."""
    trio = loaded_trio()
    if trio is None:
        return False
    # trio names itself in sniffio's thread-local for the whole of a run (sniffio's
    # contract with async libraries; trio imports sniffio). Reading it raises nothing,
    # where trio.lowlevel.in_trio_run() raises and catches an AttributeError in every
    # thread without a run: 1.3 us on each call from a worker thread.
    sniffio = sys.modules["sniffio"]
    return sniffio.thread_local.name == "trio" and bool(trio.lowlevel.in_trio_run())
