"""Scheduling: no lockstep rounds, real concurrency, caps, and nested runs that never deadlock."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import agentbridge as ab

from ._helpers import Rendezvous, build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_a_step_starts_as_soon_as_its_own_dependencies_finish(reg: ab.Registry) -> None:
    order: list[str] = []
    slow_blocked = anyio.Event()
    release = anyio.Event()

    @reg.function
    async def slow() -> None:
        order.append("slow started")
        slow_blocked.set()
        await release.wait()
        order.append("slow finished")

    @reg.function
    async def fast1() -> None:
        await slow_blocked.wait()
        order.append("fast1")

    @reg.function
    async def fast2() -> None:
        order.append("fast2")

    @reg.function
    async def fast3() -> None:
        # Only a scheduler without rounds gets here while "slow" is still blocked;
        # a lockstep one waits for "slow", which waits for this: the bounded wait fails.
        order.append("fast3, slow still blocked" if not release.is_set() else "fast3 late")
        release.set()

    wf = build(
        {"id": "slow", "function": "slow"},
        {"id": "fast1", "function": "fast1"},
        {"id": "fast2", "function": "fast2", "depends_on": ["fast1"]},
        {"id": "fast3", "function": "fast3", "depends_on": ["fast2"]},
    )
    with anyio.fail_after(10):
        result = await ab.run_workflow_async(wf, registry=reg)

    assert order == ["slow started", "fast1", "fast2", "fast3, slow still blocked", "slow finished"]
    assert result.status == "succeeded"


async def test_a_dependent_waits_for_every_dependency(reg: ab.Registry) -> None:
    order: list[str] = []
    release_b = anyio.Event()

    @reg.function
    async def a() -> None:
        order.append("a")
        release_b.set()

    @reg.function
    async def b() -> None:
        await release_b.wait()
        await anyio.lowlevel.checkpoint()
        order.append("b")

    @reg.function
    async def join() -> None:
        order.append("join")

    wf = build(
        {"id": "join", "function": "join", "depends_on": ["a", "b"]},
        {"id": "a", "function": "a"},
        {"id": "b", "function": "b"},
    )
    with anyio.fail_after(10):
        await ab.run_workflow_async(wf, registry=reg)
    assert order == ["a", "b", "join"]


async def test_independent_async_steps_run_concurrently(reg: ab.Registry) -> None:
    everyone = Rendezvous(5)

    @reg.function
    async def meet(i: int) -> int:
        await everyone.wait()
        return i

    wf = build(*({"id": f"s{i}", "function": "meet", "inputs": {"i": i}} for i in range(5)))
    result = await ab.run_workflow_async(wf, registry=reg)
    assert {step_id: r.output for step_id, r in result.steps.items()} == {
        f"s{i}": i for i in range(5)
    }


async def test_independent_sync_steps_run_concurrently_in_threads(reg: ab.Registry) -> None:
    everyone = threading.Barrier(3, timeout=10)
    loop_thread = threading.get_ident()

    @reg.function
    def meet() -> int:
        everyone.wait()
        return threading.get_ident()

    wf = build(*({"id": f"s{i}", "function": "meet"} for i in range(3)))
    result = await ab.run_workflow_async(wf, registry=reg)
    threads = {r.output for r in result.steps.values()}
    assert len(threads) == 3
    assert loop_thread not in threads


async def test_async_and_sync_steps_run_side_by_side(reg: ab.Registry) -> None:
    sync_entered = threading.Event()
    async_done = threading.Event()

    @reg.function
    def blocking() -> str:
        sync_entered.set()
        assert async_done.wait(10), "the async sibling never ran while this thread blocked"
        return "sync"

    @reg.function
    async def nonblocking() -> str:
        while not sync_entered.is_set():
            await anyio.lowlevel.checkpoint()
        async_done.set()
        return "async"

    wf = build({"id": "s", "function": "blocking"}, {"id": "a", "function": "nonblocking"})
    with anyio.fail_after(10):
        result = await ab.run_workflow_async(wf, registry=reg)
    assert result.outputs == {"s": "sync", "a": "async"}


class InFlight:
    """Counts steps running at once and lets them finish only when ``cap`` are running."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()
        self.cap_reached = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            if self.now >= self.cap:
                self.cap_reached.set()

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


async def test_max_concurrency_caps_running_async_steps(reg: ab.Registry) -> None:
    flight = InFlight(cap=2)

    @reg.function
    async def work() -> None:
        flight.enter()
        try:
            with anyio.fail_after(10):
                while not flight.cap_reached.is_set():
                    await anyio.sleep(0)
            # Give an uncapped scheduler every chance to start the other steps.
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
        finally:
            flight.leave()

    wf = build(*({"id": f"s{i}", "function": "work"} for i in range(6)))
    result = await ab.Runtime(reg, max_concurrency=2).run_async(wf)
    assert result.status == "succeeded"
    assert flight.most == 2


@pytest.mark.parametrize("option", ["max_concurrency", "max_threads"])
async def test_the_caps_hold_for_sync_steps(reg: ab.Registry, option: str) -> None:
    """Both caps hold sync steps to two at once; async steps take no thread, so
    ``max_threads`` lets one run beside them."""
    flight = InFlight(cap=2)

    async def settle() -> None:
        for _ in range(20):
            await anyio.lowlevel.checkpoint()

    @reg.function
    def work() -> None:
        flight.enter()
        try:
            assert flight.cap_reached.wait(10)
            ab.run_sync(settle)
        finally:
            flight.leave()

    @reg.function
    async def free() -> str:
        return "async steps take no thread"

    wf = build(
        *({"id": f"s{i}", "function": "work"} for i in range(5)),
        *([{"id": "a", "function": "free"}] if option == "max_threads" else []),
    )
    result = await ab.Runtime(reg, **{option: 2}).run_async(wf)
    assert result.status == "succeeded"
    assert flight.most == 2


def nested_registry(reg: ab.Registry, outer_call: Any) -> ab.Workflow:
    """An outer workflow whose sync step runs an inner workflow of sync steps."""
    pair = threading.Barrier(2, timeout=10)

    @reg.function
    def leaf(i: int) -> int:
        return i + 1

    inner = build({"id": "leaf", "function": "leaf", "inputs": {"i": "${inputs.i}"}}, inputs=["i"])

    @reg.function
    def outer(i: int) -> int:
        # Two outer threads hold every thread token before either nests.
        pair.wait()
        return outer_call(inner, {"i": i}).outputs["leaf"]

    return build({"id": "o", "function": "outer", "inputs": {"i": "${inputs.i}"}}, inputs=["i"])


async def test_nested_runs_with_more_runs_than_thread_tokens(reg: ab.Registry) -> None:
    outer = nested_registry(reg, lambda wf, inputs: ab.run_workflow(wf, inputs, registry=reg))
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 2
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        result = await ab.run_workflow_async(outer, {"i": i}, registry=reg)
        results[i] = result.outputs["o"]

    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(one, i)
    finally:
        limiter.total_tokens = tokens
    assert results == {i: i + 1 for i in range(4)}


async def test_nested_runs_through_a_runtime_with_few_threads(reg: ab.Registry) -> None:
    runtime = ab.Runtime(reg, max_threads=2)
    nested_registry(reg, lambda wf, inputs: runtime.run(wf, inputs))
    many = build(
        *({"id": f"n{i}", "function": "outer", "inputs": {"i": i}} for i in range(4)),
    )
    with anyio.fail_after(20):
        result = await runtime.run_async(many)
    assert {step_id: r.output for step_id, r in result.steps.items()} == {
        f"n{i}": i + 1 for i in range(4)
    }


async def test_nested_runs_beyond_the_default_thread_limit(reg: ab.Registry) -> None:
    """More concurrent outer runs than anyio's 40 default thread tokens, each nesting a run."""

    @reg.function
    def leaf(i: int) -> int:
        return i + 1

    inner = build({"id": "leaf", "function": "leaf", "inputs": {"i": "${inputs.i}"}}, inputs=["i"])

    @reg.function
    def outer(i: int) -> int:
        return ab.run_workflow(inner, {"i": i}, registry=reg).outputs["leaf"]

    outer_wf = build({"id": "o", "function": "outer", "inputs": {"i": "${inputs.i}"}}, inputs=["i"])
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        results[i] = (await ab.run_workflow_async(outer_wf, {"i": i}, registry=reg)).outputs["o"]

    runs = anyio.to_thread.current_default_thread_limiter().total_tokens + 5
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i in range(runs):
                tg.start_soon(one, i)
    assert results == {i: i + 1 for i in range(runs)}


def test_one_run_with_more_nesting_sync_steps_than_thread_tokens(
    reg: ab.Registry, portal_backend: str
) -> None:
    """45 parallel sync steps, each running a workflow of sync steps, from sync code."""

    @reg.function
    def leaf(i: int) -> int:
        return i * 10

    inner = build({"id": "leaf", "function": "leaf", "inputs": {"i": "${inputs.i}"}}, inputs=["i"])

    @reg.function
    def fan(i: int) -> int:
        return ab.run_workflow(inner, {"i": i}, registry=reg).outputs["leaf"]

    wide = build(*({"id": f"f{i}", "function": "fan", "inputs": {"i": i}} for i in range(45)))
    result = ab.run_workflow(wide, registry=reg, timeout=30, backend=portal_backend)
    assert result.outputs == {f"f{i}": i * 10 for i in range(45)}


async def test_a_runner_of_sync_steps_never_waits_on_an_async_step(reg: ab.Registry) -> None:
    """With one thread, sync steps share one runner task. The async dependent of the
    first sync step waits for the second sync step: were it run by that runner, the
    second would never start."""
    released = anyio.Event()
    order: list[str] = []

    async def release() -> None:
        released.set()

    @reg.function
    def first() -> None:
        order.append("first")

    @reg.function
    async def waits() -> None:
        with anyio.fail_after(10):
            await released.wait()
        order.append("waits")

    @reg.function
    def second() -> None:
        order.append("second")
        ab.run_sync(release)

    wf = build(
        {"id": "a", "function": "first"},
        {"id": "b", "function": "waits", "depends_on": ["a"]},
        {"id": "c", "function": "second"},
    )
    result = await ab.Runtime(reg, max_threads=1).run_async(wf)
    assert result.status == "succeeded"
    assert order == ["first", "second", "waits"]


def _live_tasks(backend: str) -> int:
    """Tasks of the current loop not yet finished (the running one included)."""
    if backend == "trio":
        import trio

        return len(trio.lowlevel.current_task().parent_nursery.child_tasks)  # type: ignore[union-attr]
    import asyncio

    return len(asyncio.all_tasks())


async def test_a_wide_async_fan_out_never_holds_every_task_at_once(
    reg: ab.Registry, anyio_backend_name: str
) -> None:
    # Each task costs about 3 KB: made all before any ran, 3,000 steps held 3,000.
    most = 0

    @reg.function
    async def count() -> None:
        nonlocal most
        most = max(most, _live_tasks(anyio_backend_name))

    steps = 3_000
    workflow = ab.Workflow.from_dict(
        {"name": "wide", "steps": [{"id": f"s{i}", "function": "count"} for i in range(steps)]}
    )
    result = await ab.run_workflow_async(workflow, registry=reg)
    assert result.succeeded
    assert most <= 2 * 512 + 10, most
    # Every step still runs at once with the others if it waits: the batches only
    # let the started ones run first.
    barrier = Rendezvous(600)

    @reg.function
    async def meet() -> None:
        await barrier.wait()

    together = ab.Workflow.from_dict(
        {"name": "meet", "steps": [{"id": f"m{i}", "function": "meet"} for i in range(600)]}
    )
    assert (await ab.run_workflow_async(together, registry=reg)).succeeded
