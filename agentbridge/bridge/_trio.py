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
    return trio is not None and bool(trio.lowlevel.in_trio_run())
