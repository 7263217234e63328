"""Cancelling a run cancels every running async step and starts nothing new."""

from __future__ import annotations

import contextlib

import anyio
import pytest

import agentbridge as ab

from ._helpers import Rendezvous, build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Sleepers:
    """Async steps that wait forever, recording how they ended."""

    def __init__(self, count: int) -> None:
        self.all_started = Rendezvous(count)
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.never: list[str] = []

    async def sleeper(self, name: str) -> None:
        try:
            await self.all_started.wait()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise
        finally:
            self.finished.append(name)

    async def later(self) -> None:
        self.never.append("ran")


def sleepers_workflow(reg: ab.Registry, sleepers: Sleepers) -> ab.Workflow:
    reg.register("function", "sleeper", sleepers.sleeper)
    reg.register("function", "later", sleepers.later)
    return build(
        *({"id": f"s{i}", "function": "sleeper", "inputs": {"name": f"s{i}"}} for i in range(3)),
        {"id": "after", "function": "later", "depends_on": ["s0"]},
    )


async def test_cancelling_run_workflow_async_cancels_every_running_step(reg: ab.Registry) -> None:
    sleepers = Sleepers(count=4)
    wf = sleepers_workflow(reg, sleepers)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await ab.run_workflow_async(wf, registry=reg)

            tg.start_soon(run)
            await sleepers.all_started.wait()
            tg.cancel_scope.cancel()

    assert sorted(sleepers.cancelled) == ["s0", "s1", "s2"]
    assert sorted(sleepers.finished) == ["s0", "s1", "s2"]
    assert sleepers.never == []


async def test_a_cancelled_runtime_run_raises_cancellation_not_a_step_error(
    reg: ab.Registry,
) -> None:
    sleepers = Sleepers(count=4)
    wf = sleepers_workflow(reg, sleepers)
    raised: list[BaseException] = []

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                try:
                    await ab.Runtime(reg).run_async(wf)
                except BaseException as error:
                    raised.append(error)
                    raise

            tg.start_soon(run)
            await sleepers.all_started.wait()
            tg.cancel_scope.cancel()

    assert len(raised) == 1
    assert isinstance(raised[0], anyio.get_cancelled_exc_class())
    assert sorted(sleepers.cancelled) == ["s0", "s1", "s2"]


async def test_a_cancelled_stream_cancels_every_running_step(reg: ab.Registry) -> None:
    sleepers = Sleepers(count=4)
    wf = sleepers_workflow(reg, sleepers)
    events: list[ab.Event] = []
    three_started = anyio.Event()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async with contextlib.aclosing(ab.Runtime(reg).stream(wf)) as stream:
                    async for event in stream:
                        events.append(event)
                        if sum(isinstance(e, ab.StepStarted) for e in events) == 3:
                            three_started.set()

            tg.start_soon(consume)
            await sleepers.all_started.wait()
            await three_started.wait()
            tg.cancel_scope.cancel()

    assert sorted(sleepers.cancelled) == ["s0", "s1", "s2"]
    assert sorted(sleepers.finished) == ["s0", "s1", "s2"]
    assert sleepers.never == []
    started = {e.step_id for e in events if isinstance(e, ab.StepStarted)}
    assert started == {"s0", "s1", "s2"}
    assert not [e for e in events if isinstance(e, ab.StepFinished)]
