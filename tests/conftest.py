"""Shared fixtures: every async test runs on asyncio, asyncio with uvloop, and trio."""

from __future__ import annotations

from typing import Any

import pytest

import agentbridge as ab

try:
    import uvloop  # noqa: F401
except ImportError:  # pragma: no cover - uvloop is in the test dependency group
    _UVLOOP: list[Any] = []
else:
    _UVLOOP = [pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop")]


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        *_UVLOOP,
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The backend anyio's pytest plugin runs each ``@pytest.mark.anyio`` test on."""
    return request.param


@pytest.fixture(params=["asyncio", "trio"])
def portal_backend(request: pytest.FixtureRequest) -> str:
    """A portal backend for sync tests that open portals themselves."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _fresh_bridge_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each test starts from default settings and no agentbridge environment variables."""
    for name in (
        "AGENTBRIDGE_BACKEND",
        "AGENTBRIDGE_ON_RUNNING_LOOP",
        "AGENTBRIDGE_SYNC_TIMEOUT",
        "AGENTBRIDGE_CANCEL_GRACE",
        "AGENTBRIDGE_PORTAL_SCOPE",
        "AGENTBRIDGE_STALL_WARNING",
    ):
        monkeypatch.delenv(name, raising=False)
    ab.configure(reset=True)
    yield
    ab.configure(reset=True)


@pytest.fixture
def reg() -> ab.Registry:
    """A fresh registry, so no test sees another test's steps."""
    return ab.Registry()


@pytest.fixture
def anyio_backend_name(anyio_backend: tuple[str, dict[str, object]]) -> str:
    """The name of the backend the current anyio test runs on."""
    return anyio_backend[0]
