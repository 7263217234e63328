"""Where a blocking call runs: one decision, made from one options object.

Every blocking entry point (:func:`~agentbridge.run_sync`, :func:`~agentbridge.sync_context`,
:func:`~agentbridge.iterate_sync`, and so the runtime's sync API) asks :func:`route`, with
its options as a :class:`CallOptions`. The three rules, in the order they are checked:

* rule 3, a thread whose own loop is running: the ``on_running_loop`` policy decides,
  then the thread's portal, a loop in another thread;
* rule 2, a worker thread spawned by a running loop: that loop, with no new loop or
  thread; unless the call names a ``backend=`` of the other library (trio from an
  asyncio worker, or the reverse), which the host loop cannot run: then the thread's
  portal of that backend;
* rule 1, any other thread: the thread's own portal, or with the ``"process"`` portal
  scope the portal every thread shares.

A call made through a portal handle (:class:`~agentbridge.Portal`) skips the rules: it
runs on that handle's loop, from any thread but the loop's own.

Rule 2 is the hot path of a server's threadpool, so its questions are the cheap ones:
no exception is raised and caught on the way to a worker's host loop.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .._exceptions import BlockingCallError, BlockingCallWarning
from ._loops import running_library, stacklevel_outside
from ._portals import PortalHost, PortalManager, get_portal_manager
from ._settings import (
    Defaults,
    Policy,
    check_backend_name,
    check_policy,
    check_seconds,
    options_tuple,
    resolve_spec,
)
from ._threads import HostLoop, host_loop_of_current_thread

__all__ = ("DEFAULT_OPTIONS", "CallOptions", "PortalSource", "Route", "route")

#: Where a call runs: the host loop of this worker thread (rule 2), or this thread's
#: portal (rules 1 and 3).
Route = HostLoop | PortalHost


class PortalSource(Protocol):
    """What a portal handle gives the router: the host its calls run on."""

    def host(self) -> PortalHost:
        """The running host, reopened if needed; raises :class:`PortalClosedError`."""
        ...  # pragma: no cover - a protocol


@dataclass(frozen=True, slots=True)
class CallOptions:
    """The bridge options of one blocking call (or of every call of one adapter), checked.

    ``None`` in a field means "the default" (:func:`~agentbridge.configure`, then the
    environment); a ``timeout`` of ``math.inf`` means "no deadline", whatever the
    default says. Build it with :meth:`of`, which checks every value. ``portal``, set by a
    portal handle, sends the call to that handle's loop whatever the thread.
    """

    timeout: float | None = None
    backend: str | None = None
    backend_options: tuple[tuple[str, Any], ...] | None = None
    on_running_loop: Policy | None = None
    manager: PortalManager | None = None
    portal: PortalSource | None = None

    @classmethod
    def of(
        cls,
        *,
        timeout: float | None = None,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
        on_running_loop: Policy | None = None,
        manager: PortalManager | None = None,
        portal: PortalSource | None = None,
    ) -> CallOptions:
        """Check the options of a call and freeze them.

        :raises ConfigurationError: naming the first invalid value
        """
        return cls(
            None if timeout is None else check_seconds(timeout, "timeout"),
            None if backend is None else check_backend_name(backend, "backend"),
            None if backend_options is None else options_tuple(backend_options),
            None if on_running_loop is None else check_policy(on_running_loop, "on_running_loop"),
            manager,
            portal,
        )


#: The options of a call that passes none.
DEFAULT_OPTIONS: Final = CallOptions()


def route(options: CallOptions, defaults: Defaults, what: object) -> Route:
    """Decide where a blocking call made now, from this thread, runs.

    :param defaults: the settings for the options ``options`` leaves to the default
    :param what: the coroutine function, awaitable or context manager the call is
        for, named in the policy's warning or error
    :raises BlockingCallError: if a loop runs in this thread and the policy is ``"raise"``,
        or if the call would wait in the very thread whose loop must run it
    """
    if options.portal is not None:
        return _own_loop_refused(options.portal.host(), what)
    running = running_library()
    if running is None:
        host_loop = host_loop_of_current_thread()
        if host_loop is not None and (
            options.backend is None or host_loop.library == _library_of(options.backend)
        ):
            return host_loop
    else:
        policy = options.on_running_loop or defaults.on_running_loop
        _apply_policy(policy, running, what)
    spec = resolve_spec(options.backend, options.backend_options, defaults)
    manager = options.manager or get_portal_manager()
    if defaults.portal_scope == "process" and options.manager is None:
        shared = manager.shared_host(spec)
        if shared.loop_ident != threading.get_ident():
            return shared
        # A coroutine on the shared loop made a blocking call (rule 3): as in the
        # thread scope, it runs on this thread's own portal.
    return manager.host(spec)


def _library_of(backend: str) -> str:
    """The library whose loop runs ``backend``'s portals: uvloop is an asyncio loop."""
    return "trio" if backend == "trio" else "asyncio"


def _own_loop_refused(host: PortalHost, what: object) -> PortalHost:
    """``host``, unless this thread is its loop's: waiting here would stop the loop that
    must run the call, forever. (Once that loop has ended, the call is refused as
    closed instead.)"""
    if host.loop_ident == threading.get_ident() and host.alive and running_library():
        name = getattr(what, "__qualname__", None) or type(what).__name__
        raise BlockingCallError(
            f"a blocking call for {name} was made in the thread of the loop that must run "
            f"it ({host.name!r}); it would wait for itself forever. In async code on that "
            f"loop, await {name} directly; blocking code should run in a worker thread "
            f"(ab.to_thread, asyncio.to_thread, a thread of its own) and call from there"
        )
    return host


#: Warnings name the first frame outside this directory (agentbridge's): each entry point
#: reaches the warning through its own depth of wrappers, so no fixed stacklevel fits.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _apply_policy(policy: Policy, running: str, what: object) -> None:
    if policy == "thread":
        return
    name = getattr(what, "__qualname__", None) or type(what).__name__
    message = (
        f"a blocking run_sync() call was made from a thread whose {running} event loop "
        f"is running, which stops that loop until the call returns; await {name} "
        f"directly (or use the async API, e.g. run_workflow_async) instead"
    )
    if policy == "raise":
        raise BlockingCallError(message + " (this is an error because on_running_loop='raise')")
    warnings.warn(BlockingCallWarning(message), stacklevel=stacklevel_outside(_PACKAGE_DIR))
