"""Where the bridge's options come from: call argument, :func:`configure`, environment.

Every option is resolved in that order, on every call, so a test or an application
can change the environment or call :func:`configure` at any time and the next call
sees it.

The ``AGENTBRIDGE_*`` variables are validated together: on the first use of the
bridge, and again whenever one of their raw values changes. One
:class:`~agentbridge.ConfigurationError` then names every bad variable, so a typo in a
setting that only some code paths read (the running-loop policy, the cancel grace)
fails at the first call, not later inside an ``async def`` route or at interpreter
exit. Each call reads the raw values and compares them, with the configuration, to
those its cached :class:`Defaults` were made from: a tuple comparison.

Seconds: ``math.inf`` means "no deadline" (a timeout) or "wait as long as it takes"
(the cancel grace), both as an argument and in the environment (``inf``); a timeout
of ``None`` means "use the default". Finite values of any size are accepted; a wait
longer than the platform allows a lock to wait (:data:`threading.TIMEOUT_MAX`, about
292 years on Linux) is a wait without end (see :func:`blocking_wait`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, cast

from .._exceptions import ConfigurationError
from ._loops import (
    TRIO_MISSING,
    RawValues,
    check_trio_installed,
    decoded,
    environment_reader,
)

__all__ = ("BackendSpec", "Policy", "PortalScope", "configure")

#: What a blocking call does in a thread whose event loop is running: run on the thread's
#: portal (``"thread"``), the same with a :class:`~agentbridge.BlockingCallWarning`
#: (``"warn"``), or raise :class:`~agentbridge.BlockingCallError` (``"raise"``).
Policy = Literal["thread", "warn", "raise"]

#: Which portal serves a plain thread's calls: its own (``"thread"``, the default), or
#: one portal per backend shared by every thread of the process (``"process"``).
PortalScope = Literal["thread", "process"]

#: The backend names accepted by ``backend=`` and ``AGENTBRIDGE_BACKEND``.
BACKEND_NAMES: Final = ("asyncio", "trio", "uvloop")
POLICIES: Final[tuple[Policy, ...]] = ("thread", "warn", "raise")
SCOPES: Final[tuple[PortalScope, ...]] = ("thread", "process")
DEFAULT_CANCEL_GRACE: Final = 5.0
#: Seconds a portal call may wait before it is logged as stalled. Generous: far above
#: interactive latency and the default timeouts of HTTP clients (httpx: 5 s), so on a
#: healthy network a call still waiting then is almost always a loop-affinity mistake
#: or a deadlock, yet below the minutes a legitimate long model call can take, which
#: costs one log line, never an error.
DEFAULT_STALL_WARNING: Final = 60.0

ENV_BACKEND: Final = "AGENTBRIDGE_BACKEND"
ENV_ON_RUNNING_LOOP: Final = "AGENTBRIDGE_ON_RUNNING_LOOP"
ENV_SYNC_TIMEOUT: Final = "AGENTBRIDGE_SYNC_TIMEOUT"
ENV_CANCEL_GRACE: Final = "AGENTBRIDGE_CANCEL_GRACE"
ENV_PORTAL_SCOPE: Final = "AGENTBRIDGE_PORTAL_SCOPE"
ENV_STALL_WARNING: Final = "AGENTBRIDGE_STALL_WARNING"

#: A timeout meaning "no deadline": what an entry point that enforces its own deadline
#: passes to the bridge, so the bridge's default timeout does not apply to it.
NO_DEADLINE: Final = math.inf


@dataclass(frozen=True)
class BackendSpec:
    """A hashable description of one kind of event loop a portal can run.

    Portals are keyed by ``(thread, BackendSpec)``, so asking for ``"uvloop"`` and for
    ``"asyncio"`` with ``{"use_uvloop": True}`` finds the same portal.
    """

    name: Literal["asyncio", "trio"]
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def backend_options(self) -> dict[str, Any]:
        """The options as the mapping :func:`anyio.run` expects."""
        return dict(self.options)

    @property
    def uses_uvloop(self) -> bool:
        """Whether this is the asyncio backend running on uvloop."""
        return self.name == "asyncio" and bool(self.backend_options.get("use_uvloop"))

    @classmethod
    def named(cls, backend: str, backend_options: Mapping[str, Any] | None = None) -> BackendSpec:
        """The spec for ``backend`` (``"asyncio"``, ``"trio"`` or ``"uvloop"``) and options.

        Use it to check a backend name early, before anything runs.

        :raises ConfigurationError: for an unknown name or unhashable options

        .. versionadded:: 0.2
        """
        options = None if backend_options is None else options_tuple(backend_options)
        return _spec(check_backend_name(backend, "backend"), options or ())

    def __str__(self) -> str:
        return "uvloop" if self.uses_uvloop else self.name


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()


@dataclass(frozen=True)
class _Configured:
    backend: str | None = None
    backend_options: tuple[tuple[str, Any], ...] | None = None
    on_running_loop: Policy | None = None
    timeout: float | None = None
    cancel_grace: float | None = None
    portal_scope: PortalScope | None = None
    stall_warning: float | None = None


_configured = _Configured()


def configure(
    *,
    backend: str | _Unset | None = UNSET,
    backend_options: Mapping[str, Any] | _Unset | None = UNSET,
    on_running_loop: Policy | _Unset | None = UNSET,
    timeout: float | _Unset | None = UNSET,
    cancel_grace: float | _Unset | None = UNSET,
    portal_scope: PortalScope | _Unset | None = UNSET,
    stall_warning: float | _Unset | None = UNSET,
    reset: bool = False,
) -> None:
    """Set process-wide defaults for the bridge.

    Each option given here overrides its environment variable; ``None`` removes the
    override so the environment variable (or the built-in default) applies again.
    Options passed to a single call still win over both.

    :param backend: ``"asyncio"``, ``"trio"`` or ``"uvloop"`` (overrides
        ``AGENTBRIDGE_BACKEND``)
    :param backend_options: options passed to :func:`anyio.run` for new portals
    :param on_running_loop: ``"thread"``, ``"warn"`` or ``"raise"``: what a blocking
        call does in a thread whose event loop is running (overrides
        ``AGENTBRIDGE_ON_RUNNING_LOOP``)
    :param timeout: default timeout in seconds of :func:`~agentbridge.run_sync`
        (overrides ``AGENTBRIDGE_SYNC_TIMEOUT``); ``math.inf`` for no deadline
    :param cancel_grace: seconds a cancelled coroutine may take to clean up before
        the caller stops waiting (overrides ``AGENTBRIDGE_CANCEL_GRACE``; default 5);
        ``math.inf`` to wait as long as it takes
    :param portal_scope: ``"thread"`` (each plain thread has its own portal, the
        default) or ``"process"`` (every plain thread shares one portal per backend);
        overrides ``AGENTBRIDGE_PORTAL_SCOPE``. See :doc:`/guides/sharing-clients`
    :param stall_warning: seconds a portal call may wait before a warning naming it,
        its portal thread and its await stack is logged (``agentbridge`` logger;
        default 60); ``math.inf`` turns the warning off (overrides
        ``AGENTBRIDGE_STALL_WARNING``)
    :param reset: forget every earlier :func:`configure` call first
    :raises ConfigurationError: if a value is invalid; nothing is changed then

    .. versionadded:: 0.1
    """
    global _configured
    checks: dict[str, tuple[object, Callable[[Any], Any]]] = {
        "backend": (backend, lambda value: check_backend_name(value, "backend")),
        "backend_options": (backend_options, options_tuple),
        "on_running_loop": (on_running_loop, lambda value: check_policy(value, "on_running_loop")),
        "timeout": (timeout, lambda value: check_seconds(value, "timeout")),
        "cancel_grace": (
            cancel_grace,
            lambda value: check_seconds(value, "cancel_grace", zero=True),
        ),
        "portal_scope": (portal_scope, lambda value: check_scope(value, "portal_scope")),
        "stall_warning": (stall_warning, lambda value: check_seconds(value, "stall_warning")),
    }
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for name, (value, check) in checks.items():
        if isinstance(value, _Unset):
            continue
        try:
            changes[name] = None if value is None else check(value)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigurationError("; ".join(problems))
    _configured = replace(_Configured() if reset else _configured, **changes)


# --- the environment, validated as a whole ------------------------------------------------


def _parse_backend(raw: str) -> str:
    return check_backend_name(raw, ENV_BACKEND)


def _parse_policy(raw: str) -> Policy:
    return check_policy(raw.strip().lower(), ENV_ON_RUNNING_LOOP)


def _parse_timeout(raw: str) -> float:
    return _parse_seconds(raw, ENV_SYNC_TIMEOUT, zero=False)


def _parse_grace(raw: str) -> float:
    return _parse_seconds(raw, ENV_CANCEL_GRACE, zero=True)


def _parse_scope(raw: str) -> PortalScope:
    return check_scope(raw.strip().lower(), ENV_PORTAL_SCOPE)


def _parse_stall(raw: str) -> float:
    return _parse_seconds(raw, ENV_STALL_WARNING, zero=False)


def _parse_seconds(raw: str, variable: str, *, zero: bool) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r} is not a number of seconds") from None
    return check_seconds(value, variable, zero=zero)


#: Each variable, in the order of the raw tuple: how to parse a set value, and what it
#: accepts (for the error message).
_VARIABLES: Final[tuple[tuple[str, Callable[[str], Any], str], ...]] = (
    (ENV_BACKEND, _parse_backend, "one of asyncio, trio, uvloop"),
    (ENV_ON_RUNNING_LOOP, _parse_policy, "one of thread, warn, raise"),
    (ENV_SYNC_TIMEOUT, _parse_timeout, "seconds greater than 0, or inf for no deadline"),
    (ENV_CANCEL_GRACE, _parse_grace, "seconds, 0 or more, or inf to wait for the cleanup"),
    (ENV_PORTAL_SCOPE, _parse_scope, "one of thread, process"),
    (ENV_STALL_WARNING, _parse_stall, "seconds greater than 0, or inf for no warning"),
)

#: Reads the raw values of the variables, in the order of :data:`_VARIABLES`; and tells
#: whether none is set.
_raw_environment, _none_set = environment_reader(
    (
        ENV_BACKEND,
        ENV_ON_RUNNING_LOOP,
        ENV_SYNC_TIMEOUT,
        ENV_CANCEL_GRACE,
        ENV_PORTAL_SCOPE,
        ENV_STALL_WARNING,
    )
)


def _parse_environment(raw: RawValues) -> list[Any]:
    """What each variable means (``None``: unset or empty).

    :raises ConfigurationError: one error naming each invalid variable, its value and
        what it accepts
    """
    values: list[Any] = []
    problems: list[str] = []
    for (variable, parse, accepted), raw_value in zip(_VARIABLES, raw, strict=True):
        value = decoded(raw_value)
        if value is None or not value.strip():
            values.append(None)
            continue
        try:
            values.append(parse(value))
        except ConfigurationError as exc:
            if str(exc).startswith(TRIO_MISSING):  # a valid name, but not installed
                problems.append(f"{variable}={value!r}: {TRIO_MISSING}")
            else:
                problems.append(f"{variable}={value!r} (accepted: {accepted})")
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ConfigurationError(
            f"invalid agentbridge environment variable{plural}: {'; '.join(problems)}; "
            f"fix or unset {'them' if plural else 'it'}"
        )
    return values


# --- the defaults of a call -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a call gets for an option it does not pass: :func:`configure`, else the
    environment, else the built-in default."""

    backend: str
    backend_options: tuple[tuple[str, Any], ...]
    #: The portal backend of a call that passes neither ``backend`` nor its options.
    spec: BackendSpec
    on_running_loop: Policy
    #: Seconds, or ``None`` for no deadline.
    timeout: float | None
    cancel_grace: float
    portal_scope: PortalScope
    #: Seconds before a waiting portal call is logged as stalled, or ``None`` for never.
    stall_warning: float | None


#: The raw values when no variable is set.
_ALL_UNSET: Final[RawValues] = (None,) * len(_VARIABLES)

# The defaults, with the configuration and the raw variables they were made from.
_current: tuple[_Configured, RawValues, Defaults] | None = None


def current_defaults() -> Defaults:
    """The defaults as of now; checks every variable whenever one of them changed.

    :raises ConfigurationError: naming every invalid ``AGENTBRIDGE_*`` variable; nothing
        is remembered then, so the next call checks again
    """
    current = _current
    if current is not None and current[0] is _configured:
        if current[1] is _ALL_UNSET:
            if _none_set():
                return current[2]
        elif current[1] == tuple(_raw_environment()):
            return current[2]
    return _make_defaults(_configured, tuple(_raw_environment()))


def _make_defaults(configured: _Configured, raw: RawValues) -> Defaults:
    global _current
    backend, policy, timeout, grace, scope, stall = _parse_environment(raw)
    backend = configured.backend or backend or "asyncio"
    options = configured.backend_options or ()
    if configured.timeout is not None:
        timeout = configured.timeout
    if configured.cancel_grace is not None:
        grace = configured.cancel_grace
    if configured.stall_warning is not None:
        stall = configured.stall_warning
    elif stall is None:
        stall = DEFAULT_STALL_WARNING
    defaults = Defaults(
        backend=backend,
        backend_options=options,
        spec=_spec(backend, options),
        on_running_loop=configured.on_running_loop or policy or "thread",
        timeout=None if timeout == NO_DEADLINE else timeout,
        cancel_grace=DEFAULT_CANCEL_GRACE if grace is None else grace,
        portal_scope=configured.portal_scope or scope or "thread",
        stall_warning=None if stall == math.inf else stall,
    )
    # The usual raw values are kept as the one object current_defaults recognises.
    _current = (configured, _ALL_UNSET if raw == _ALL_UNSET else raw, defaults)
    return defaults


def resolve_backend(backend: str | None, backend_options: Mapping[str, Any] | None) -> BackendSpec:
    """Turn the ``backend``/``backend_options`` of a call into a :class:`BackendSpec`."""
    return resolve_spec(
        None if backend is None else check_backend_name(backend, "backend"),
        None if backend_options is None else options_tuple(backend_options),
        current_defaults(),
    )


def resolve_spec(
    name: str | None, options: tuple[tuple[str, Any], ...] | None, defaults: Defaults
) -> BackendSpec:
    """The :class:`BackendSpec` for a checked backend name and options tuple, either of
    them ``None`` for the default."""
    if name is None and options is None:
        return defaults.spec
    return _spec(name or defaults.backend, defaults.backend_options if options is None else options)


_spec_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], BackendSpec] = {}


def _spec(name: str, options: tuple[tuple[str, Any], ...]) -> BackendSpec:
    # A handful of specs is all a process ever uses: remember them rather than rebuild
    # one on every call.
    key = (name, options)
    spec = _spec_cache.get(key)
    if spec is None:
        merged = dict(options)
        if name == "uvloop":
            name = "asyncio"
            merged["use_uvloop"] = True
        if len(_spec_cache) > 16:
            _spec_cache.clear()
        spec = _spec_cache[key] = BackendSpec(
            cast("Literal['asyncio', 'trio']", name), tuple(sorted(merged.items()))
        )
    return spec


def resolve_timeout(timeout: float | None, defaults: Defaults) -> float | None:
    """The deadline in seconds for one call, given its checked argument; ``None`` for
    none (no default set, or :data:`NO_DEADLINE`)."""
    if timeout is None:
        return defaults.timeout
    return None if timeout == NO_DEADLINE else timeout


def resolve_cancel_grace(*, strict: bool = False) -> float:
    """Seconds a cancelled coroutine may take to finish before the caller gives up.

    Asked on failure paths (a timeout, Ctrl-C, a portal closing, interpreter exit),
    where a configuration error must not replace what is being reported: unless
    ``strict``, an invalid environment gives the configured or default grace.
    """
    try:
        return current_defaults().cancel_grace
    except ConfigurationError:
        if strict:
            raise
        configured = _configured.cancel_grace
        return DEFAULT_CANCEL_GRACE if configured is None else configured


def blocking_wait(seconds: float | None) -> float | None:
    """``seconds`` as a thread's wait timeout: ``None`` (no limit) for ``None``, for
    ``math.inf`` and for anything longer than :data:`threading.TIMEOUT_MAX`, where a
    lock wait would raise :exc:`OverflowError`."""
    if seconds is None or seconds >= threading.TIMEOUT_MAX:
        return None
    return seconds


# --- checks of single values -------------------------------------------------------------


def check_backend_name(value: object, source: str) -> str:
    """``value`` as a backend name (``"asyncio"``, ``"trio"`` or ``"uvloop"``)."""
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{source} must be a string, one of {', '.join(map(repr, BACKEND_NAMES))}; "
            f"got {value!r}"
        )
    name = value.strip().lower()
    if name not in BACKEND_NAMES:
        raise ConfigurationError(
            f"unknown backend {value!r} (from {source}); valid backends are "
            f"{', '.join(map(repr, BACKEND_NAMES))}"
        )
    if name == "trio":
        check_trio_installed(source)
    return name


def check_seconds(value: object, source: str, *, zero: bool = False) -> float:
    """``value`` as seconds: a number, greater than 0 (or 0 too if ``zero``); ``inf`` is
    accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{source} must be a number of seconds (int or float), got {value!r}"
        )
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float: as good as no deadline
        seconds = math.inf
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero):
        allowed = "zero or more" if zero else "greater than zero"
        raise ConfigurationError(
            f"{source} must be {allowed} seconds (math.inf for no limit), got {value!r}"
        )
    return seconds


def check_policy(value: object, source: str) -> Policy:
    """``value`` as an ``on_running_loop`` policy."""
    for policy in POLICIES:
        if value == policy:
            return policy
    raise ConfigurationError(
        f"{source} must be one of {', '.join(map(repr, POLICIES))}, got {value!r}"
    )


def check_scope(value: object, source: str) -> PortalScope:
    """``value`` as a ``portal_scope``."""
    for scope in SCOPES:
        if value == scope:
            return scope
    accepted = ", ".join(map(repr, SCOPES))
    raise ConfigurationError(f"{source} must be one of {accepted}, got {value!r}")


def options_tuple(options: object) -> tuple[tuple[str, Any], ...]:
    """``backend_options`` as a sorted, hashable tuple of pairs."""
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            f"backend_options must be a mapping of option names to values, got "
            f"{type(options).__name__}"
        )
    items = tuple(sorted(options.items()))
    try:
        hash(items)
    except TypeError:
        raise ConfigurationError(
            f"backend_options values must be hashable so that portals can be shared; "
            f"got {options!r}"
        ) from None
    return items
