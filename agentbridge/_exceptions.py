"""The exception hierarchy of agentbridge.

Every error agentbridge raises on purpose derives from :class:`AgentBridgeError`,
and most also derive from the built-in type a caller would already catch::

    AgentBridgeError
    ├── ConfigurationError (ValueError)      bad backend name, option or variable
    ├── BridgeError                          a sync/async crossing went wrong
    │   ├── NotAwaitableError (TypeError)    run_sync() was given a plain function
    │   ├── BlockingCallError (RuntimeError) a blocking call was refused in a loop
    │   ├── BridgeTimeoutError (TimeoutError)
    │   └── PortalClosedError (RuntimeError) the portal stopped before the call ended
    └── WorkflowError
        ├── WorkflowValidationError (ValueError)
        ├── StepFailedError
        └── StepTimeoutError (TimeoutError)

Cancellation and :exc:`KeyboardInterrupt` are never wrapped: they cross the bridge
as themselves.
"""

from __future__ import annotations

__all__ = (
    "AgentBridgeError",
    "BlockingCallError",
    "BlockingCallWarning",
    "BridgeError",
    "BridgeTimeoutError",
    "ConfigurationError",
    "NotAwaitableError",
    "PortalClosedError",
    "WorkflowError",
)


class AgentBridgeError(Exception):
    """Base class of every exception agentbridge raises on purpose.

    .. versionadded:: 0.1
    """


class ConfigurationError(AgentBridgeError, ValueError):
    """A backend name, backend option, policy or environment variable is invalid.

    The message names the offending value, where it came from (argument or
    environment variable) and the values that would be accepted.

    .. versionadded:: 0.1
    """


class BridgeError(AgentBridgeError):
    """Base class of errors raised while crossing between sync and async code.

    .. versionadded:: 0.1
    """


class NotAwaitableError(BridgeError, TypeError):
    """:func:`agentbridge.run_sync` was given something that is not async.

    .. versionadded:: 0.1
    """


class BlockingCallError(BridgeError, RuntimeError):
    """A blocking bridge call was made from a thread whose event loop is running,
    and the ``on_running_loop`` policy is ``"raise"``.

    .. versionadded:: 0.1
    """


class BlockingCallWarning(RuntimeWarning):
    """Emitted when a blocking bridge call is made from a thread whose event loop is
    running and the ``on_running_loop`` policy is ``"warn"``.

    The call still completes (on another thread), but it blocks the caller's event
    loop for its whole duration.

    .. versionadded:: 0.1
    """


class BridgeTimeoutError(BridgeError, TimeoutError):
    """A bridged call did not finish within its ``timeout``.

    The coroutine was cancelled (its ``finally`` blocks and ``async with`` exits ran)
    before this was raised, unless :attr:`abandoned` is true, in which case the
    coroutine ignored the cancellation for longer than the grace period and was left
    running.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, timeout: float, abandoned: bool = False) -> None:
        super().__init__(message)
        #: The timeout, in seconds, that expired.
        self.timeout = timeout
        #: True if the coroutine did not finish its cleanup within the grace period.
        self.abandoned = abandoned


class PortalClosedError(BridgeError, RuntimeError):
    """The portal running a call was closed before the call finished.

    .. versionadded:: 0.1
    """


class WorkflowError(AgentBridgeError):
    """Base class of errors raised by the workflow runtime.

    .. versionadded:: 0.1
    """
