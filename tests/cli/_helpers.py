"""Helpers of the CLI tests: where things are, and a real ``python -m agentbridge`` run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from click.testing import Result

__all__ = (
    "DEMO",
    "NOISY_ENV",
    "PROJECT",
    "REPO",
    "STEPS",
    "Invoke",
    "WriteWorkflow",
    "cli_env",
    "run_cli",
)

#: A user's project: ``--import cli_test_steps`` works from here.
PROJECT = Path(__file__).with_name("project")
REPO = Path(__file__).parents[2]
STEPS = "cli_test_steps"
#: The arguments of ``nox -s demo``, run from the repository root.
DEMO = ("run", "examples/demo/workflow.yaml", "--import", "examples.demo.steps")

#: Environment variables that would make rich write colours or pick another width.
NOISY_ENV = ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")

#: The ``invoke`` fixture: ``invoke("run", path, ...)`` -> click's ``Result``.
Invoke = Callable[..., Result]
#: The ``write_workflow`` fixture: YAML text -> the path of a new workflow file.
WriteWorkflow = Callable[[str], Path]


def cli_env() -> dict[str, str]:
    """Our environment without agentbridge settings or colour and width overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AGENTBRIDGE_") and key not in NOISY_ENV
    }
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_cli(
    args: Sequence[str | Path], *, cwd: Path, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentbridge ARGS...`` in a fresh interpreter, stdout a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "agentbridge", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
