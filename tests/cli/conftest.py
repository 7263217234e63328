"""Fixtures of the CLI tests: a project directory with steps, a runner, workflow files."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentbridge.cli._app import cli

from ._helpers import NOISY_ENV, PROJECT, Invoke, WriteWorkflow


@pytest.fixture
def in_project(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work from the project directory; ``sys.path`` is restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(PROJECT)
    return PROJECT


@pytest.fixture
def invoke(in_project: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``agentbridge ARGS...`` in this process; stdout and stderr kept apart."""
    for name in NOISY_ENV:
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def write_workflow(tmp_path: Path) -> WriteWorkflow:
    """Write a workflow file from (dedented) YAML text; return its path."""
    count = 0

    def write(text: str) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"workflow{count}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
