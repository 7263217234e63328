"""The scaling-out example (``examples/scaling_out.py``) runs as its docstring says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agentbridge as ab

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("engine", ["dask", "process"])
def test_the_scaling_out_example_runs_twice_on_one_runner(engine: str) -> None:
    n = 1_000
    env = {**os.environ, "PYTHONPATH": str(Path(ab.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "scaling_out.py", "--engine", engine, "--n", str(n)],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    total = sum(i * i % 7 for i in range(n))
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith(f"{engine}: total {total} from "), line
        assert "worker processes in" in line
