"""Fixtures for the real-host tests; the harness itself is :mod:`tests.hosts._harness`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._harness import Spawner


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    """Start host programs for one test; their process groups are killed at teardown."""
    with Spawner(tmp_path) as spawner:
        yield spawner


@pytest.fixture(scope="module")
def module_spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawner]:
    """Like :func:`spawn`, for hosts shared by the tests of one module."""
    with Spawner(tmp_path_factory.mktemp("hosts")) as spawner:
        yield spawner
