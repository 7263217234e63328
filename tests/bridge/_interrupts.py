"""Ctrl-C at an exact point: a KeyboardInterrupt raised at the n-th profiler event.

A real SIGINT is turned into ``KeyboardInterrupt`` by Python when the main thread next
checks for pending signals: on entry to a Python function, and just after a call to a
C function returns (or, while blocked, in the wait itself). A profile function sees
exactly those points as its ``call``, ``c_call`` and ``c_return`` events, and an
exception raised by it is raised at that point of the profiled code. Raising
``KeyboardInterrupt`` at the n-th such event, for n = 1, 2, 3, ..., therefore lands a
Ctrl-C at every point of a call where a real one can land, one at a time, on purpose.

``return`` events are skipped: a function returning to its Python caller passes no
such check point (Python 3.11 and later), so a real signal cannot land there. Only
the points in the code under test count (a call made from it, or a C call it makes):
inside the standard library a signal can break the library's own state (a ``with
lock:`` whose ``__enter__`` returned, but whose block was never entered, keeps the
lock forever), which no caller can repair. For the same reason the context-manager
protocol itself (``__enter__``, ``__exit__``) and finalisers (``__del__``, where
Python prints an interrupt and drops it) are not interrupted.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any

__all__ = ("InterruptAt",)

_COUNTED = frozenset({"call", "c_call", "c_return"})
_PROTOCOL = frozenset({"__enter__", "__exit__", "__del__"})


def _in_finaliser(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a ``__del__`` (the collector runs them anywhere)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class InterruptAt:
    """Raise ``KeyboardInterrupt`` in this thread at the ``n``-th check point of the code
    under ``package`` reached after entering its function named ``inside`` (the entry
    itself is the caller's).

    Use it as a context manager around the call; :attr:`fired` says whether the
    interrupt was raised (if not, the call returned after fewer than ``n`` check
    points).
    """

    def __init__(self, n: int, package: str, inside: str = "run_sync") -> None:
        self.n = n
        self.inside = inside
        self._package = os.path.dirname(package) + os.sep
        self.fired = False
        self._frame: FrameType | None = None
        self._done = False
        self._seen = 0

    def __enter__(self) -> InterruptAt:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.setprofile(None)

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.fired or self._done:
            return
        if self._frame is None:
            if event == "call" and frame.f_code.co_name == self.inside:
                self._frame = frame
            return
        if event == "return" and frame is self._frame:
            self._done = True  # the call is over: later points are not its own
            return
        if event not in _COUNTED:
            return
        caller = frame.f_back if event == "call" else frame
        if caller is None or not caller.f_code.co_filename.startswith(self._package):
            return
        callee = frame.f_code.co_name if event == "call" else getattr(arg, "__name__", "")
        if callee in _PROTOCOL or _in_finaliser(caller):
            return
        self._seen += 1
        if self._seen == self.n:
            self.fired = True
            sys.setprofile(None)
            raise KeyboardInterrupt
