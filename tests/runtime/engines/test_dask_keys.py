"""What a Dask runner leaves on the cluster: a finished attempt's future is kept for a
moment, to be released with the next submission, and never longer than that; and the
keys it gives attempts, never another runner's."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

import agentbridge as ab
from agentbridge.runtime._dask import RELEASE_AFTER

from .. import _process_steps as steps
from .._helpers import build
from .conftest import BOUND

pytestmark = pytest.mark.anyio


def _held(runner: ab.DaskRunner, prefix: str) -> list[str]:
    """The keys of the scheduler's tasks whose step id starts with ``prefix``."""
    keys = runner.client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
    return [key for key in keys if str(key).startswith(prefix)]


async def _until_released(runner: ab.DaskRunner, prefix: str, *, collecting: bool = False) -> float:
    """Seconds until the cluster holds no task of ``prefix`` (bounded by ``BOUND``);
    ``collecting``: with a garbage collection before each look."""
    start = time.monotonic()
    with anyio.fail_after(BOUND):
        while True:
            if collecting:
                gc.collect()
            if not await anyio.to_thread.run_sync(_held, runner, prefix):
                break
            await anyio.sleep(RELEASE_AFTER / 5)
    return time.monotonic() - start


def _chain(prefix: str, then: Callable[..., Any], inputs: dict[str, Any]) -> ab.Workflow:
    """``{prefix}_a`` adds 1 and 2 on Dask, then ``{prefix}_b`` calls ``then`` there."""
    return build(
        {"id": f"{prefix}_a", "function": steps.add, "inputs": {"a": 1, "b": 2}, "runner": "dask"},
        {"id": f"{prefix}_b", "function": then, "inputs": inputs, "runner": "dask"},
    )


async def test_a_runs_last_outputs_are_released_on_the_cluster_without_another_submission(
    dask_threads: ab.DaskRunner,
) -> None:
    chain = _chain("kept", steps.add, {"a": "${steps.kept_a.output}", "b": 3})
    result = await ab.Runtime(runners={"dask": dask_threads}).run_async(chain)
    assert result.outputs == {"kept_a": 3, "kept_b": 6}
    # Nothing else is submitted: the run's keys go once the runner stops waiting for
    # a submission to send them with, well within the bound.
    assert await _until_released(dask_threads, "kept_") < BOUND / 2


async def test_two_runners_on_one_cluster_never_share_an_attempts_key(
    dask_threads: ab.DaskRunner, manager: Any
) -> None:
    # Two runner objects made alike count their attempts alike: only the prefix each
    # draws keeps their keys apart, else Dask would give the second run the first
    # one's task (the step would run once for both).
    address = dask_threads.client.scheduler.address
    runners = [ab.DaskRunner(address), ab.DaskRunner(address)]
    release = manager.Event()
    twin = build(
        {
            "id": "twin",
            "function": steps.wait_for,
            "inputs": {"event": release, "timeout": BOUND},
            "runner": "dask",
        }
    )
    outputs: list[dict[str, Any]] = []

    async def run(runner: ab.DaskRunner) -> None:
        outputs.append((await ab.Runtime(runners={"dask": runner}).run_async(twin)).outputs)

    try:
        for runner in runners:
            await anyio.to_thread.run_sync(runner.start)
        async with anyio.create_task_group() as group:
            for runner in runners:
                group.start_soon(run, runner)
            with anyio.fail_after(BOUND):  # both tasks on the scheduler at once
                while len(await anyio.to_thread.run_sync(_held, dask_threads, "twin-")) < 2:
                    await anyio.sleep(RELEASE_AFTER / 5)
            release.set()
    finally:
        for runner in runners:
            await anyio.to_thread.run_sync(runner.close)
    assert outputs == [{"twin": True}, {"twin": True}]


async def test_a_failed_run_kept_for_its_error_holds_no_task_on_the_cluster(
    dask_threads: ab.DaskRunner,
) -> None:
    chain = _chain("failed", steps.fail, {"message": "${steps.failed_a.output}"})
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.Runtime(runners={"dask": dask_threads}).run_async(chain)
    # Kept as a caller keeps it, traceback and all: the step's error went through the
    # runner's frames, which held failed_b's future (and so failed_a's task too).
    kept = caught.value
    assert str(kept.result.steps["failed_b"].error) == "3"
    # Dask's gather leaves garbage of its own, a cycle through an exception it raises
    # and catches inside (AllExit, distributed 2026.8) that holds the futures, made on
    # the client's loop as the run ends: only a collection frees it, and with the whole
    # suite's heap none may come for minutes.
    assert await _until_released(dask_threads, "failed_", collecting=True) < BOUND / 2
