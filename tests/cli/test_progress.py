"""The live table, drawn on a terminal console: every change shows, tall runs fit."""

from __future__ import annotations

import io

from rich.console import Console

import agentbridge as ab
from agentbridge.cli._progress import follow


def _terminal(height: int) -> tuple[Console, io.StringIO]:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=100, height=height)
    return console, output


def _workflow(steps: int) -> tuple[ab.Workflow, ab.Registry]:
    registry = ab.Registry()

    @registry.function("step")
    def step(n: int) -> int:
        return n

    chain = [{"id": "s0", "function": "step", "inputs": {"n": 0}}]
    chain += [
        {"id": f"s{n}", "function": "step", "inputs": {"n": f"${{steps.s{n - 1}.output}}"}}
        for n in range(1, steps)
    ]
    return ab.Workflow.from_dict({"name": "chain", "steps": chain}), registry


def test_every_state_of_every_step_is_drawn() -> None:
    workflow, registry = _workflow(3)
    console, output = _terminal(height=40)
    result = follow(console, workflow, ab.Runtime(registry).stream_sync(workflow))
    assert ab.RunStatus(result.status) is ab.RunStatus.SUCCEEDED
    frames = output.getvalue()
    # Steps this short finish within one refresh period: each is still seen running,
    # because every event redraws the table.
    for step_id in ("s0", "s1", "s2"):
        assert any(step_id in line and "running" in line for line in frames.splitlines())
        assert any(step_id in line and "succeeded" in line for line in frames.splitlines())
    assert "pending" in frames


def test_a_run_taller_than_the_terminal_is_summarised() -> None:
    workflow, registry = _workflow(40)
    console, output = _terminal(height=16)
    result = follow(console, workflow, ab.Runtime(registry).stream_sync(workflow))
    assert ab.RunStatus(result.status) is ab.RunStatus.SUCCEEDED
    frames = output.getvalue()
    assert "more steps: " in frames
    # The step running is always among the rows shown, wherever it is in the workflow.
    assert any("s37" in line and "running" in line for line in frames.splitlines())
    assert "s39" in frames
