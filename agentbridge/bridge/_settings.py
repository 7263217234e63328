"""Where the bridge's options come from: call argument, :func:`configure`, environment.

Every option is resolved in that order, on every call, so a test or an application
can change the environment or call :func:`configure` at any time and the next call
sees it. Reading a few environment variables costs well under a microsecond, which
is noise next to the cost of one cross-thread hop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from .._exceptions import ConfigurationError
from ._loops import check_trio_installed, getenv

__all__ = ("BackendSpec", "Policy", "configure")

#: What a blocking call does in a thread whose event loop is running: run on the thread's
#: portal (``"thread"``), the same with a :class:`~agentbridge.BlockingCallWarning`
#: (``"warn"``), or raise :class:`~agentbridge.BlockingCallError` (``"raise"``).
Policy = Literal["thread", "warn", "raise"]

#: The backend names accepted by ``backend=`` and ``AGENTBRIDGE_BACKEND``.
BACKEND_NAMES: Final = ("asyncio", "trio", "uvloop")
POLICIES: Final[tuple[Policy, ...]] = ("thread", "warn", "raise")
DEFAULT_CANCEL_GRACE: Final = 5.0

ENV_BACKEND: Final = "AGENTBRIDGE_BACKEND"
ENV_ON_RUNNING_LOOP: Final = "AGENTBRIDGE_ON_RUNNING_LOOP"
ENV_SYNC_TIMEOUT: Final = "AGENTBRIDGE_SYNC_TIMEOUT"
ENV_CANCEL_GRACE: Final = "AGENTBRIDGE_CANCEL_GRACE"


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

    def __str__(self) -> str:
        return "uvloop" if self.uses_uvloop else self.name


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()


@dataclass
class _Configured:
    backend: str | None = None
    backend_options: tuple[tuple[str, Any], ...] | None = None
    on_running_loop: Policy | None = None
    timeout: float | None = None
    cancel_grace: float | None = None


_configured = _Configured()
_spec_cache: dict[tuple[Any, ...], BackendSpec] = {}


def configure(
    *,
    backend: str | _Unset | None = UNSET,
    backend_options: Mapping[str, Any] | _Unset | None = UNSET,
    on_running_loop: Policy | _Unset | None = UNSET,
    timeout: float | _Unset | None = UNSET,
    cancel_grace: float | _Unset | None = UNSET,
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
        (overrides ``AGENTBRIDGE_SYNC_TIMEOUT``)
    :param cancel_grace: seconds a cancelled coroutine may take to clean up before
        the caller stops waiting (overrides ``AGENTBRIDGE_CANCEL_GRACE``; default 5)
    :param reset: forget every earlier :func:`configure` call first
    :raises ConfigurationError: if a value is invalid; nothing is changed then

    .. versionadded:: 0.1
    """
    new = _Configured() if reset else _Configured(**vars(_configured))
    if not isinstance(backend, _Unset):
        if backend is not None:
            resolve_backend(backend, None)
        new.backend = backend
    if not isinstance(backend_options, _Unset):
        new.backend_options = (
            None if backend_options is None else _options_tuple(backend_options, "backend_options")
        )
    if not isinstance(on_running_loop, _Unset):
        new.on_running_loop = (
            None if on_running_loop is None else _check_policy(on_running_loop, "on_running_loop")
        )
    if not isinstance(timeout, _Unset):
        new.timeout = None if timeout is None else _check_seconds(timeout, "timeout")
    if not isinstance(cancel_grace, _Unset):
        new.cancel_grace = (
            None
            if cancel_grace is None
            else _check_seconds(cancel_grace, "cancel_grace", zero=True)
        )
    vars(_configured).update(vars(new))


def resolve_backend(backend: str | None, backend_options: Mapping[str, Any] | None) -> BackendSpec:
    """Turn the ``backend``/``backend_options`` of a call into a :class:`BackendSpec`."""
    if backend_options is None and (backend is None or isinstance(backend, str)):
        # The common case, on every call: a backend by name (or none) without options.
        # Remember the answer for the current configuration and environment instead of
        # rebuilding it; a handful of names is all a process ever uses.
        key = (
            backend,
            _configured.backend,
            _configured.backend_options,
            getenv(ENV_BACKEND) if backend is None else None,
        )
        cached = _spec_cache.get(key)
        if cached is None:
            if len(_spec_cache) > 16:
                _spec_cache.clear()
            cached = _spec_cache[key] = _resolve_backend(backend, None)
        return cached
    return _resolve_backend(backend, backend_options)


def _resolve_backend(backend: str | None, backend_options: Mapping[str, Any] | None) -> BackendSpec:
    source = "backend"
    if backend is None:
        backend = _configured.backend
        if backend is None:
            backend = getenv(ENV_BACKEND) or "asyncio"
            source = f"the environment variable {ENV_BACKEND}"
    if backend_options is None and _configured.backend_options is not None:
        backend_options = dict(_configured.backend_options)
    if not isinstance(backend, str):
        raise ConfigurationError(
            f"{source} must be a string, one of {', '.join(map(repr, BACKEND_NAMES))}; "
            f"got {backend!r}"
        )
    name = backend.strip().lower()
    if name not in BACKEND_NAMES:
        raise ConfigurationError(
            f"unknown backend {backend!r} (from {source}); valid backends are "
            f"{', '.join(map(repr, BACKEND_NAMES))}"
        )
    if name == "trio":
        check_trio_installed(source)
    options = dict(_options_tuple(backend_options, "backend_options")) if backend_options else {}
    if name == "uvloop":
        name = "asyncio"
        options["use_uvloop"] = True
    return BackendSpec(cast("Literal['asyncio', 'trio']", name), tuple(sorted(options.items())))


def resolve_policy(on_running_loop: str | None) -> Policy:
    """The ``on_running_loop`` policy for one call."""
    if on_running_loop is not None:
        return _check_policy(on_running_loop, "on_running_loop")
    if _configured.on_running_loop is not None:
        return _configured.on_running_loop
    raw = getenv(ENV_ON_RUNNING_LOOP)
    if not raw:
        return "thread"
    return _check_policy(raw.strip().lower(), f"the environment variable {ENV_ON_RUNNING_LOOP}")


def resolve_timeout(timeout: float | None) -> float | None:
    """The timeout in seconds for one call, or ``None`` for no timeout."""
    if timeout is not None:
        return _check_seconds(timeout, "timeout")
    if _configured.timeout is not None:
        return _configured.timeout
    return _env_seconds(ENV_SYNC_TIMEOUT, default=None)


def resolve_cancel_grace() -> float:
    """Seconds a cancelled coroutine may take to finish before the caller gives up."""
    if _configured.cancel_grace is not None:
        return _configured.cancel_grace
    grace = _env_seconds(ENV_CANCEL_GRACE, default=DEFAULT_CANCEL_GRACE, zero=True)
    assert grace is not None
    return grace


def _env_seconds(variable: str, *, default: float | None, zero: bool = False) -> float | None:
    raw = getenv(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"the environment variable {variable}={raw!r} is not a number of seconds; "
            f"set it to a positive number such as 30, or unset it"
        ) from None
    return _check_seconds(value, f"the environment variable {variable}", zero=zero)


def _check_seconds(value: object, source: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{source} must be a number of seconds (int or float), got {value!r}"
        )
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero):
        allowed = "zero or more" if zero else "greater than zero"
        raise ConfigurationError(f"{source} must be {allowed} seconds, got {value!r}")
    return seconds


def _check_policy(value: object, source: str) -> Policy:
    for policy in POLICIES:
        if value == policy:
            return policy
    raise ConfigurationError(
        f"{source} must be one of {', '.join(map(repr, POLICIES))}, got {value!r}"
    )


def _options_tuple(options: object, source: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            f"{source} must be a mapping of option names to values, got {type(options).__name__}"
        )
    items = tuple(sorted(options.items()))
    try:
        hash(items)
    except TypeError:
        raise ConfigurationError(
            f"{source} values must be hashable so that portals can be shared; got {options!r}"
        ) from None
    return items
