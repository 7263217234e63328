"""Loop-affinity mistakes, named: an object of one event loop used on another.

asyncio reports the mistake in a handful of messages (a future "attached to a different
loop", a lock "bound to a different event loop", "Event loop is closed" from an object
whose loop has ended); a call that crossed the bridge and failed with one of them is
raised again as :class:`~agentbridge.LoopAffinityError`, which says where the call ran
and how to fix it. The check runs only on the way out of a failed call.
"""

from __future__ import annotations

from typing import Final

from .._exceptions import LoopAffinityError

__all__ = ("affinity_error",)

#: What asyncio says when an object of another loop is used (asyncio's futures and
#: tasks, its ``_LoopBoundMixin`` primitives, a closed loop's call_soon).
_SIGNS: Final = (
    "attached to a different loop",
    "bound to a different event loop",
    "Event loop is closed",
)

#: How deep the ``__cause__``/``__context__`` chain is searched: a client library
#: wraps the loop's error in one or two of its own (``httpx.ReadError``).
_CHAIN_DEPTH: Final = 3

_subclasses: dict[type[BaseException], type[BaseException] | None] = {}

FIXES: Final = (
    "Loop-bound objects (httpx.AsyncClient, MCP sessions, database pools) work only on "
    "the loop that made them, and each thread has its own portal by default. Three fixes: "
    "(1) share one portal: portal = ab.open_portal(), then portal.run_sync(...) from every "
    "thread; (2) serve every thread from one portal per backend: "
    "ab.configure(portal_scope='process') or AGENTBRIDGE_PORTAL_SCOPE=process; "
    "(3) keep one instance per loop: clients = ab.loop_local(httpx.AsyncClient), then "
    "clients.get() inside the coroutine. See the guide 'Sharing clients across threads'."
)


def affinity_error(exc: BaseException, portal: str) -> BaseException | None:
    """The :class:`LoopAffinityError` to raise instead of ``exc``, or ``None`` if ``exc``
    is no affinity mistake (or its type cannot be extended: then a note is added).

    :param portal: the name of the portal thread the call ran on
    """
    if not isinstance(exc, Exception) or not _is_affinity(exc):
        return None
    message = (
        f"{exc} (agentbridge: the call ran on the loop of portal thread {portal!r}, but "
        f"used an object bound to another event loop, one made in another thread's call "
        f"or on a loop that has ended.) {FIXES}"
    )
    cls = _subclass_for(type(exc))
    if cls is None:
        if hasattr(exc, "add_note"):  # 3.11+
            exc.add_note(message)
        return None
    error = cls.__new__(cls, message)
    error.args = (message,)
    error.__dict__.update(getattr(exc, "__dict__", {}))
    error.__cause__ = exc
    return error.with_traceback(exc.__traceback__)


def _is_affinity(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None:
            return False
        if isinstance(current, RuntimeError) and any(sign in str(current) for sign in _SIGNS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _subclass_for(original: type[BaseException]) -> type[BaseException] | None:
    """:class:`LoopAffinityError`, or a subclass of it and of ``original``."""
    if issubclass(original, LoopAffinityError) or original is RuntimeError:
        return LoopAffinityError
    if original in _subclasses:
        return _subclasses[original]
    try:
        cls: type[BaseException] | None = type(
            "LoopAffinityError",
            (LoopAffinityError, original),
            {
                "__module__": "agentbridge",
                "__qualname__": f"LoopAffinityError[{original.__name__}]",
            },
        )
    except TypeError:  # a C layout that cannot be combined
        cls = None
    _subclasses[original] = cls
    return cls
