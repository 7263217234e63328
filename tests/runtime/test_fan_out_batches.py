"""A wide fan-out starts its steps in small batches: every step still starts at once, and
the batches only let the started ones run (and, if quick, end) before the next."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import agentbridge as ab
from agentbridge.runtime._driver import START_BATCH

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _fan_out(
    steps: int, function: str, *, last: str | None = None, behind: str | None = None
) -> ab.Workflow:
    """``steps`` independent steps of ``function``, each given its index as ``n``; the
    last one (the last started) of ``last`` if given; all of them the dependents of one
    step of ``behind`` if given (so a step's task starts them, not the run's)."""
    specs: list[dict[str, Any]] = [
        {"id": f"s{i}", "function": function, "inputs": {"n": i}} for i in range(steps)
    ]
    if last is not None:
        specs[-1]["function"] = last
    if behind is not None:
        for spec in specs:
            spec["depends_on"] = ["root"]
        specs.insert(0, {"id": "root", "function": behind, "inputs": {"n": -1}})
    return ab.Workflow.from_dict(
        {"name": "wide", "steps": specs}, limits=ab.LoadLimits(max_steps=len(specs))
    )


@pytest.mark.parametrize("behind", [None, "quick"], ids=["roots", "dependents"])
async def test_every_step_waits_on_the_last_one_started(
    reg: ab.Registry, behind: str | None
) -> None:
    # A batch boundary is a checkpoint, not a wait: every batch's steps are still
    # running when the next batch starts. A driver that waited for a batch to end (or
    # capped the steps running at once) would never start the last step: the bounded
    # wait fails instead of hanging.
    steps = 50 * START_BATCH
    released = anyio.Event()
    waited = 0

    @reg.function
    async def waits(n: int) -> int:
        nonlocal waited
        waited += 1
        await released.wait()
        return n

    @reg.function
    async def releases(n: int) -> int:
        released.set()
        return n

    @reg.function
    async def quick(n: int) -> int:
        return n

    with anyio.fail_after(20):
        result = await ab.run_workflow_async(
            _fan_out(steps, "waits", last="releases", behind=behind), registry=reg
        )
    assert result.succeeded
    assert waited == steps - 1
    assert [result.steps[f"s{i}"].output for i in range(steps)] == list(range(steps))


async def test_cancelling_the_run_mid_start_leaves_no_step_running(reg: ab.Registry) -> None:
    steps = 50 * START_BATCH
    started = running = 0

    with anyio.CancelScope() as scope:

        @reg.function
        async def blocks(n: int) -> None:
            nonlocal started, running
            started += 1
            running += 1
            try:
                if n == 2 * START_BATCH:  # later batches are not started yet
                    scope.cancel()
                await anyio.sleep_forever()
            finally:
                running -= 1

        with anyio.fail_after(20):
            await ab.run_workflow_async(_fan_out(steps, "blocks"), registry=reg)

    assert scope.cancelled_caught
    assert running == 0, "every started step ended with the run"
    assert 2 * START_BATCH < started < steps, started


async def test_fail_fast_stops_the_starts(reg: ab.Registry) -> None:
    steps = 50 * START_BATCH
    started = 0

    @reg.function
    async def fails_first(n: int) -> None:
        nonlocal started
        started += 1
        if n == 0:
            raise RuntimeError("the first step fails")
        await anyio.sleep_forever()

    with anyio.fail_after(20), pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(_fan_out(steps, "fails_first"), registry=reg)

    result = caught.value.result
    assert result.status == "failed"
    assert isinstance(result.error, RuntimeError)
    statuses = [step.status for step in result.steps.values()]
    # The failure stops the starts within a batch or two (trio may run the starting
    # task before the started ones); the others never start.
    assert started <= 3 * START_BATCH, started
    assert statuses.count(ab.StepStatus.CANCELLED) == started - 1
    assert statuses.count(ab.StepStatus.SKIPPED) == steps - started


@pytest.fixture
def young_collections() -> Iterator[list[int]]:
    """The generations of the collections that happen while the test runs, with the
    interpreter's default thresholds."""
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.collect()
    gc.callbacks.append(count)
    try:
        yield collected
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)


async def test_quick_steps_end_before_the_collector_finds_them(
    reg: ab.Registry, young_collections: list[int]
) -> None:
    # A task the collector finds alive is promoted, and full collections (which scan
    # the whole heap, the plan's steps included) follow. Started 512 at a time, the
    # tasks of 5,000 quick steps met about 130 collections (80 on trio), most of them
    # alive; in small batches they end, freed by reference counting, within one.
    steps = 5_000

    @reg.function
    async def quick(n: int) -> int:
        return n

    executor = ab.Executor(_fan_out(steps, "quick"), registry=reg)
    young_collections.clear()
    result = await executor.run_async()
    assert result.succeeded
    assert len(young_collections) <= steps // 125, young_collections
