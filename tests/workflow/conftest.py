"""Fixtures for the workflow runtime tests."""

from __future__ import annotations

import pytest

import agentbridge as ab


@pytest.fixture
def reg() -> ab.Registry:
    """A fresh registry, so no test sees another test's steps."""
    return ab.Registry()


@pytest.fixture
def anyio_backend_name(anyio_backend: tuple[str, dict[str, object]]) -> str:
    """The name of the backend the current anyio test runs on."""
    return anyio_backend[0]
