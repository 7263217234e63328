"""The step-runner interface: a fake runner shows what the driver asks of one, and the
built-in local runner does today's offload."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import agentbridge as ab
from agentbridge.runtime._driver import execute
from agentbridge.runtime._options import RunOptions
from agentbridge.runtime._plan import Plan, StepCall
from agentbridge.runtime._runner import LocalRunner, StepRunner

from ._helpers import Rendezvous, build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

Behaviour = Callable[[StepCall, dict[str, Any]], Any]


class FakeRunner(StepRunner):
    """Records every attempt it is given and runs ``behaviour`` for it."""

    __slots__ = ("active", "attempts", "behaviour", "cancelled", "capacity", "loop_steps", "most")

    def __init__(
        self, behaviour: Behaviour, *, capacity: int = 4, loop_steps: frozenset[str] = frozenset()
    ) -> None:
        self.behaviour = behaviour
        self.capacity = capacity
        self.loop_steps = loop_steps
        self.attempts: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []
        self.active = 0
        self.most = 0

    def on_loop(self, call: StepCall) -> bool:
        return call.step.id in self.loop_steps

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        self.attempts.append((call.step.id, kwargs))
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            return await self.behaviour(call, kwargs)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(call.step.id)
            raise
        finally:
            self.active -= 1

    def cancelled_how(self, call: StepCall) -> str:
        return "the fake dropped it"


def plan_of(*steps: dict[str, Any]) -> Plan:
    workflow = build(*steps)
    return Plan(workflow, {step.id: lambda **_: None for step in workflow.steps})


async def test_every_attempt_goes_to_the_runner_with_its_inputs() -> None:
    failures = {"b": 2}

    async def behaviour(call: StepCall, kwargs: dict[str, Any]) -> Any:
        step_id = call.step.id
        if failures.get(step_id):
            failures[step_id] -= 1
            raise ConnectionError(f"{step_id} not yet")
        return kwargs.get("v", 0) + 1

    runner = FakeRunner(behaviour)
    plan = plan_of(
        {"id": "a", "function": "f"},
        {"id": "b", "function": "f", "inputs": {"v": "${steps.a.output}"}, "retries": 2},
    )
    events: list[ab.Event] = []
    result = await execute(plan, {}, RunOptions(), emit=events.append, runner=runner)
    assert result.status is ab.RunStatus.SUCCEEDED
    assert runner.attempts == [("a", {}), ("b", {"v": 1}), ("b", {"v": 1}), ("b", {"v": 1})]
    assert result.steps["b"].attempts == 3
    assert result.outputs == {"a": 1, "b": 2}
    retried = [event.attempt for event in events if isinstance(event, ab.StepRetrying)]
    assert retried == [1, 2]


async def test_a_step_timeout_cancels_the_attempt_and_says_how() -> None:
    async def hang(call: StepCall, kwargs: dict[str, Any]) -> Any:
        await anyio.sleep_forever()

    runner = FakeRunner(hang)
    plan = plan_of({"id": "slow", "function": "f", "timeout": 0.05})
    result = await execute(plan, {}, RunOptions(), runner=runner)
    step = result.steps["slow"]
    assert step.status is ab.StepStatus.TIMED_OUT
    assert runner.cancelled == ["slow"]
    assert str(step.error).endswith("within its timeout of 0.05 s; the fake dropped it")


async def test_no_more_steps_wait_on_the_runner_than_its_capacity() -> None:
    async def busy(call: StepCall, kwargs: dict[str, Any]) -> Any:
        # Checkpoints let any other task the driver started run in between.
        for _ in range(5):
            await anyio.lowlevel.checkpoint()

    runner = FakeRunner(busy, capacity=2)
    plan = plan_of(*({"id": f"s{i}", "function": "f"} for i in range(6)))
    result = await execute(plan, {}, RunOptions(), runner=runner)
    assert result.status is ab.RunStatus.SUCCEEDED
    assert len(runner.attempts) == 6
    assert runner.most == 2


async def test_steps_on_the_loop_are_never_queued() -> None:
    rendezvous = Rendezvous(3)

    async def meet(call: StepCall, kwargs: dict[str, Any]) -> Any:
        await rendezvous.wait()

    runner = FakeRunner(meet, capacity=1, loop_steps=frozenset({"a", "b", "c"}))
    plan = plan_of(*({"id": step_id, "function": "f"} for step_id in "abc"))
    result = await execute(plan, {}, RunOptions(), runner=runner)
    assert result.status is ab.RunStatus.SUCCEEDED
    assert runner.most == 3


async def test_cancelling_the_run_cancels_the_attempt_in_the_runner() -> None:
    started = anyio.Event()

    async def hang(call: StepCall, kwargs: dict[str, Any]) -> Any:
        started.set()
        await anyio.sleep_forever()

    runner = FakeRunner(hang)
    plan = plan_of({"id": "a", "function": "f"}, {"id": "b", "function": "f", "depends_on": ["a"]})
    events: list[ab.Event] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(
                lambda: execute(plan, {}, RunOptions(), emit=events.append, runner=runner)
            )
            await started.wait()
            task_group.cancel_scope.cancel()
    assert runner.cancelled == ["a"]
    assert [attempt[0] for attempt in runner.attempts] == ["a"]
    finished = events[-1]
    assert isinstance(finished, ab.RunFinished)
    assert finished.result.status is ab.RunStatus.CANCELLED
    assert finished.result.steps["a"].status is ab.StepStatus.CANCELLED
    # The step result says what the runner did to the attempt; b never ran one.
    assert finished.result.steps["a"].cancelled_how == runner.cancelled_how(plan.calls["a"])
    assert finished.result.steps["b"].cancelled_how is None


async def test_the_local_runners_capacity_is_its_thread_tokens() -> None:
    assert LocalRunner(3).capacity == 3
    default = anyio.to_thread.current_default_thread_limiter().total_tokens
    assert LocalRunner().capacity == default


async def test_the_local_runner_awaits_async_steps_here_and_offloads_sync_ones() -> None:
    here = threading.get_ident()

    async def in_loop() -> int:
        return threading.get_ident()

    def blocking() -> int:
        return threading.get_ident()

    class Awaitable:
        # Not a coroutine: trio refuses a thread's function that returns one.
        def __await__(self) -> Generator[Any, None, str]:
            yield from ()
            return "awaited"

    plan = Plan(
        build(*({"id": step_id, "function": "f"} for step_id in ("a", "s", "w"))),
        {"a": in_loop, "s": blocking, "w": Awaitable},
    )
    runner = LocalRunner()
    calls = plan.calls
    assert runner.on_loop(calls["a"])
    assert not runner.on_loop(calls["s"])
    assert await runner.run(calls["a"], {}) == here
    assert await runner.run(calls["s"], {}) != here
    assert await runner.run(calls["w"], {}) == "awaited", "a sync step's awaitable is awaited"
    assert runner.cancelled_how(calls["a"]) == "it was cancelled"
    assert runner.cancelled_how(calls["s"]) == "its thread was abandoned"
