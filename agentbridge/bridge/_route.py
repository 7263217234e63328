"""Where a blocking call runs: one decision, made from one options object.

Every blocking entry point (:func:`~agentbridge.run_sync`, :func:`~agentbridge.sync_context`,
:func:`~agentbridge.iterate_sync`, and so the runtime's sync API) asks :func:`route`, with
its options as a :class:`CallOptions`. The three rules, in the order they are checked:

* rule 3, a thread whose own loop is running: the ``on_running_loop`` policy decides,
  then the thread's portal, a loop in another thread;
* rule 2, a worker thread spawned by a running loop: that loop, with no new loop or
  thread;
* rule 1, any other thread: the thread's own portal.

Rule 2 is the hot path of a server's threadpool, so its questions are the cheap ones:
no exception is raised and caught on the way to a worker's host loop.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

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

__all__ = ("DEFAULT_OPTIONS", "CallOptions", "Route", "route")

#: Where a call runs: the host loop of this worker thread (rule 2), or this thread's
#: portal (rules 1 and 3).
Route = HostLoop | PortalHost


@dataclass(frozen=True, slots=True)
class CallOptions:
    """The bridge options of one blocking call (or of every call of one adapter), checked.

    ``None`` in a field means "the default" (:func:`~agentbridge.configure`, then the
    environment); a ``timeout`` of ``math.inf`` means "no deadline", whatever the
    default says. Build it with :meth:`of`, which checks every value.
    """

    timeout: float | None = None
    backend: str | None = None
    backend_options: tuple[tuple[str, Any], ...] | None = None
    on_running_loop: Policy | None = None
    manager: PortalManager | None = None

    @classmethod
    def of(
        cls,
        *,
        timeout: float | None = None,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
        on_running_loop: Policy | None = None,
        manager: PortalManager | None = None,
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
        )


#: The options of a call that passes none.
DEFAULT_OPTIONS: Final = CallOptions()


def route(options: CallOptions, defaults: Defaults, what: object) -> Route:
    """Decide where a blocking call made now, from this thread, runs.

    :param defaults: the settings for the options ``options`` leaves to the default
    :param what: the coroutine function, awaitable or context manager the call is
        for, named in the policy's warning or error
    :raises BlockingCallError: if a loop runs in this thread and the policy is ``"raise"``
    """
    running = running_library()
    if running is None:
        host_loop = host_loop_of_current_thread()
        if host_loop is not None:
            return host_loop
    else:
        policy = options.on_running_loop or defaults.on_running_loop
        _apply_policy(policy, running, what)
    spec = resolve_spec(options.backend, options.backend_options, defaults)
    return (options.manager or get_portal_manager()).host(spec)


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
