"""Calls in flight: the stall warning, and :func:`dump_calls`.

A mistake the loops give no signal for (a future only another loop will ever resolve)
leaves a call waiting forever. The waiting thread itself notices: it waits for the
outcome at most the stall threshold, then logs a warning naming the call, its portal
thread, how long it has waited and where the coroutine is awaiting, and waits on. So a
call with no stall costs nothing more than a wait with a timeout.

The await stack is read from the waiting side, from the coroutine objects' public
``cr_await``/``cr_frame`` attributes (what :mod:`inspect` documents): a snapshot, which
the loop thread may be changing meanwhile, good enough to say where a call is stuck.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Final

from ._calls import Call
from ._portals import PortalHost, all_managers, borrowed_loops

__all__ = ("dump_calls", "report_stall")

logger: Final = logging.getLogger("agentbridge")

#: More frames than this are elided (a deep recursion, say).
_MAX_FRAMES: Final = 40


def report_stall(host: PortalHost, call: Call[Any]) -> None:
    """Log that ``call``, submitted to ``host``, is still waiting."""
    logger.warning(
        "agentbridge: the call %s has waited %.1f s on portal thread %r (caller thread %r) "
        "and is still running; if it never returns, an object it awaits may belong to "
        "another event loop (see the guide 'Sharing clients across threads'). It is "
        "awaiting:\n%s",
        _call_name(call),
        time.monotonic() - call.since,
        host.name,
        _thread_name(call.caller),
        _stack_text(call),
    )


def dump_calls() -> str:
    """A readable report of every bridged call waiting on a portal now.

    One entry per call: what it runs, the thread that waits for it, the portal thread it
    runs on, how long it has been waiting, and where its coroutine is awaiting,
    innermost last. Calls that worker threads sent back to their host loop are not
    listed (they wait on that loop's own machinery). Safe to call from any thread; it
    never waits for a loop.

    :return: the report; ``"no agentbridge calls in flight"`` when there are none

    .. versionadded:: 0.3
    """
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    now = time.monotonic()
    entries = []
    for host in _every_host():
        for call in sorted(host.in_flight(), key=lambda call: call.since):
            caller = names.get(call.caller, f"thread-{call.caller}")
            entries.append(
                f"call {_call_name(call)} from thread {caller!r}, on portal thread "
                f"{host.name!r}, waiting {now - call.since:.1f} s, awaiting:\n{_stack_text(call)}"
            )
    if not entries:
        return "no agentbridge calls in flight"
    return f"{len(entries)} agentbridge call(s) in flight:\n" + "\n".join(entries)


def _every_host() -> list[PortalHost]:
    hosts: list[PortalHost] = [*borrowed_loops()]
    for manager in all_managers():
        hosts.extend(manager.hosts())
    return hosts


def _call_name(call: Call[Any]) -> str:
    subject = call.awaiting if call.awaiting is not None else call.target
    name = getattr(subject, "__qualname__", None)
    return f"{name}()" if name else repr(subject)


def _thread_name(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread-{ident}"


def _stack_text(call: Call[Any]) -> str:
    lines = [f"    {line}" for line in await_stack(call.awaiting)]
    return "\n".join(lines) if lines else "    (not started yet)"


def await_stack(awaitable: object) -> list[str]:
    """Where ``awaitable`` is suspended: one line per coroutine or generator frame,
    outermost first, then what the innermost one awaits."""
    lines: list[str] = []
    current = awaitable
    while current is not None and len(lines) < _MAX_FRAMES:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            if hasattr(current, "cr_code") or hasattr(current, "gi_code"):
                break  # a finished coroutine or generator
            lines.append(f"awaiting {current!r}")  # a future, a trio trap, an object
            break
        code = frame.f_code
        lines.append(f'File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return lines
