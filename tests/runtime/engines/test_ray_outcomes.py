"""How a Ray runner learns its tasks' outcomes: one collector thread waits on them all
(``_ray._Collector``), so new tasks must be taken up while others go on running, and
closing the runner must fail the steps it still awaits."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import agentbridge as ab

from .. import _process_steps as steps
from .._helpers import build
from .conftest import BOUND

pytestmark = pytest.mark.anyio


def _on(**step: Any) -> dict[str, Any]:
    return {**step, "runner": "ray"}


async def test_outcomes_arrive_while_another_task_runs_on(
    ray_runner: ab.RayRunner, manager: Any
) -> None:
    # `held` runs until `freed` ends; `freed` ends a chain that goes through the run
    # (b is local), so it is reached only if outcomes arrive while `held` runs on.
    event = manager.Event()
    workflow = build(
        _on(id="held", function=steps.wait_for, inputs={"event": "${inputs.e}", "timeout": BOUND}),
        _on(id="a", function=steps.add, inputs={"a": 1, "b": 1}),
        # b runs here, so c is submitted only once a's outcome reached the run
        {"id": "b", "function": steps.add, "inputs": {"a": "${steps.a.output}", "b": 1}},
        _on(id="c", function=steps.add, inputs={"a": "${steps.b.output}", "b": 1}),
        _on(
            id="freed",
            function=steps.release,
            inputs={"event": "${inputs.e}", "value": "${steps.c.output}"},
        ),
        inputs=["e"],
    )
    runtime = ab.Runtime(runners={"ray": ray_runner})
    try:
        with anyio.fail_after(BOUND):
            result = await runtime.run_async(workflow, {"e": event})
    finally:
        event.set()
    assert result.steps["freed"].output == 4
    assert result.steps["held"].output is True  # released by `freed`, not timed out


async def test_closing_the_runner_fails_the_steps_it_awaits(
    ray_runner: ab.RayRunner, manager: Any
) -> None:
    # A second runner on the session's Ray: closing it leaves Ray up for the first.
    second = ab.RayRunner(capacity=2)
    await anyio.to_thread.run_sync(second.start)
    barrier, event = manager.Barrier(2, timeout=BOUND), manager.Event()
    workflow = build(
        _on(
            id="held",
            function=steps.meet_then_wait,
            inputs={"barrier": barrier, "event": event, "path": "/dev/null", "timeout": BOUND},
        )
    )
    failed: list[ab.StepFailedError] = []

    async def run() -> None:
        with pytest.raises(ab.StepFailedError) as caught:
            await ab.Runtime(runners={"ray": second}).run_async(workflow)
        failed.append(caught.value)

    try:
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                await anyio.to_thread.run_sync(barrier.wait)  # `held` runs on Ray now
                await anyio.to_thread.run_sync(second.close)
    finally:
        event.set()
    error = failed[0].result.steps["held"].error
    assert isinstance(error, ab.RunnerError)
    assert str(error) == "step 'held': the Ray runner was closed while it ran; make a new one"
    first = build(_on(id="after", function=steps.add, inputs={"a": 2, "b": 3}))
    result = await ab.Runtime(runners={"ray": ray_runner}).run_async(first)
    assert result.steps["after"].output == 5
