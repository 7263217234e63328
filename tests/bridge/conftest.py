"""Fixtures for the bridge tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend_name(anyio_backend: tuple[str, dict[str, object]]) -> str:
    """The name of the backend the current anyio test runs on."""
    return anyio_backend[0]
