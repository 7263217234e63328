"""Fixtures of the durable-run tests: a fresh store file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import agentbridge as ab


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The path of a store file that does not exist yet."""
    return tmp_path / "runs.db"


@pytest.fixture
def store(db: Path) -> Iterator[ab.SqliteRunStore]:
    """A store in a fresh file, closed after the test."""
    store = ab.SqliteRunStore(db)
    yield store
    store.close()
