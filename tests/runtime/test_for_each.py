"""Run-time fan-out: ``for_each`` runs a step once per item of a list known only at run time."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)


def fan_out(items: object, **step: Any) -> ab.Workflow:
    return build(
        {"id": "source", "tool": "source", "inputs": {"value": items}},
        {
            "id": "each",
            "tool": "work",
            "for_each": "${steps.source.output}",
            "inputs": {"value": "${item}", "position": "${index}"},
            **step,
        },
    )


def registry(work: Any) -> ab.Registry:
    reg = ab.Registry()

    async def source(value: object) -> object:
        return value

    reg.register("tool", "source", source)
    reg.register("tool", "work", work)
    return reg


async def run(reg: ab.Registry, workflow: ab.Workflow) -> tuple[ab.WorkflowResult, list[ab.Event]]:
    with anyio.fail_after(20):
        events = await collect(ab.Runtime(reg).stream(workflow))
    return events[-1].result, events


@pytest.mark.anyio
async def test_outputs_are_in_item_order_whatever_order_items_finish_in() -> None:
    last_done = anyio.Event()

    async def work(value: str, position: int) -> str:
        if position == 0:
            await last_done.wait()  # the first item finishes last
        if position == 2:
            last_done.set()
        return f"{value}{position}"

    result, events = await run(registry(work), fan_out(["a", "b", "c"]))
    each = result.steps["each"]
    assert (each.status, each.output, each.attempts) == ("succeeded", ["a0", "b1", "c2"], 3)
    started = [e.item for e in events if isinstance(e, ab.StepStarted) and e.step_id == "each"]
    assert sorted(started) == [0, 1, 2]  # type: ignore[type-var]
    finished = [e for e in events if isinstance(e, ab.StepFinished) and e.step_id == "each"]
    assert len(finished) == 1, "one StepFinished for the whole fan-out"


@pytest.mark.anyio
async def test_item_paths_and_interpolation() -> None:
    async def work(value: str, position: str) -> str:
        return f"{value}:{position}"

    workflow = fan_out(
        [{"name": "x"}, {"name": "y"}],
        inputs={"value": "${item.name}", "position": "n${index}"},
    )
    result, _ = await run(registry(work), workflow)
    assert result.steps["each"].output == ["x:n0", "y:n1"]


@pytest.mark.anyio
async def test_an_empty_list_succeeds_with_an_empty_list() -> None:
    called: list[object] = []

    async def work(value: object, position: int) -> None:
        called.append(value)

    workflow = build(
        *[
            {"id": "source", "tool": "source", "inputs": {"value": []}},
            {
                "id": "each",
                "tool": "work",
                "for_each": "${steps.source.output}",
                "inputs": {"value": "${item}", "position": "${index}"},
            },
            {"id": "after", "tool": "source", "inputs": {"value": "${steps.each.output}"}},
        ]
    )
    result, _ = await run(registry(work), workflow)
    assert result.succeeded
    assert (result.steps["each"].output, result.steps["each"].attempts) == ([], 0)
    assert result.steps["after"].output == []
    assert called == []


@pytest.mark.parametrize("value", ["abc", {"a": 1}, 3, None])
@pytest.mark.anyio
async def test_a_non_list_fails_the_step_naming_it(value: object) -> None:
    async def work(value: object, position: int) -> None:
        raise AssertionError("never called")

    result, _ = await run(registry(work), fan_out(value))
    each = result.steps["each"]
    assert (each.status, each.attempts) == ("failed", 0)
    assert isinstance(each.error, ab.ExpressionError)
    message = str(each.error)
    assert "step 'each'" in message
    assert "not a list" in message
    assert type(value).__name__ in message


@pytest.mark.anyio
async def test_max_concurrency_caps_the_items_running_at_once() -> None:
    running = 0
    peak = 0
    pair = [anyio.Event() for _ in range(3)]

    async def work(value: int, position: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        # Items come in pairs: each waits for its partner, so two run at once for sure;
        # a third running alongside would push the peak past 2.
        partner = pair[position // 2]
        if position % 2:
            partner.set()
        with anyio.fail_after(10):
            await partner.wait()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        running -= 1
        return value

    result, _ = await run(registry(work), fan_out(list(range(6)), max_concurrency=2))
    assert result.steps["each"].output == list(range(6))
    assert peak == 2


@pytest.mark.anyio
async def test_retries_apply_per_item() -> None:
    failed: set[int] = set()

    async def work(value: int, position: int) -> int:
        if position == 1 and position not in failed:
            failed.add(position)
            raise ConnectionError("item 1, first try")
        return value

    result, events = await run(registry(work), fan_out([10, 11, 12], retries=1))
    assert result.steps["each"].output == [10, 11, 12]
    assert result.steps["each"].attempts == 4
    retrying = [e for e in events if isinstance(e, ab.StepRetrying)]
    assert [(e.item, e.attempt) for e in retrying] == [(1, 1)]


@pytest.mark.anyio
async def test_a_timed_out_item_times_the_step_out_and_cancels_the_others() -> None:
    cancelled: list[int] = []

    async def work(value: int, position: int) -> int:
        if position == 0:
            return value
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(position)
        raise AssertionError("unreachable")

    result, _ = await run(registry(work), fan_out([0, 1, 2], timeout=0.05))
    each = result.steps["each"]
    assert each.status == "timed_out"
    assert each.item in (1, 2)
    assert f"item {each.item} of step 'each'" in str(each.error)
    assert sorted(cancelled) == [1, 2]


@pytest.mark.anyio
async def test_the_first_failing_item_fails_the_step_and_cancels_the_rest() -> None:
    started = anyio.Event()
    cancelled: list[int] = []

    async def work(value: int, position: int) -> int:
        if position == 1:
            await started.wait()
            raise ValueError("item 1 is bad")
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(position)
        raise AssertionError("unreachable")

    result, _ = await run(registry(work), fan_out([0, 1], retries=3))
    each = result.steps["each"]
    assert (each.status, each.item, str(each.error)) == ("failed", 1, "item 1 is bad")
    assert each.attempts == 2, "ValueError is not retried; one attempt per item"
    assert cancelled == [0]
    assert result.status == "failed"
    assert each.to_dict()["item"] == 1


@pytest.mark.anyio
async def test_sync_items_run_in_worker_threads() -> None:
    threads: set[int] = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(value: int, position: int) -> int:
        threads.add(threading.get_ident())
        barrier.wait()  # two items at once, or the barrier breaks
        return value * 2

    result, _ = await run(registry(work), fan_out([1, 2], max_concurrency=2))
    assert result.steps["each"].output == [2, 4]
    assert len(threads) == 2


def test_fan_out_from_sync_code() -> None:
    async def work(value: int, position: int) -> int:
        return value + position

    result = ab.run_workflow(fan_out([5, 5]), registry=registry(work))
    assert result.outputs["each"] == [5, 6]
