"""Events: typed, ordered, from async and sync code, and closable early."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import AsyncGenerator, Iterator

import anyio
import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)


def diamond(reg: ab.Registry) -> ab.Workflow:
    @reg.function
    async def source(n: int) -> int:
        return n

    @reg.function
    def double(n: int) -> int:
        return n * 2

    @reg.agent
    async def add(a: int, b: int) -> int:
        return a + b

    return build(
        {"id": "top", "function": "source", "inputs": {"n": "${inputs.n}"}},
        {"id": "left", "function": "double", "inputs": {"n": "${steps.top.output}"}},
        {"id": "right", "function": "source", "inputs": {"n": "${steps.top.output}"}},
        {
            "id": "bottom",
            "agent": "add",
            "inputs": {"a": "${steps.left.output}", "b": "${steps.right.output}"},
        },
        name="diamond",
        inputs=["n"],
        outputs={"total": "${steps.bottom.output}"},
    )


def check_order(events: list[ab.Event], wf: ab.Workflow) -> None:
    assert isinstance(events[0], ab.RunStarted)
    assert isinstance(events[-1], ab.RunFinished)
    assert not [e for e in events[1:-1] if isinstance(e, ab.RunStarted | ab.RunFinished)]
    assert all(isinstance(e, ab.Event) for e in events)
    assert all(e.workflow == wf.name for e in events)
    times = [e.at for e in events]
    assert times == sorted(times)

    started = {e.step_id: i for i, e in enumerate(events) if isinstance(e, ab.StepStarted)}
    finished = {e.step_id: i for i, e in enumerate(events) if isinstance(e, ab.StepFinished)}
    assert set(started) == set(finished) == set(wf.steps_by_id)
    for step in wf.steps:
        assert started[step.id] < finished[step.id], step.id
        for dependency in step.depends_on:
            assert finished[dependency] < started[step.id], (dependency, step.id)


@pytest.mark.anyio
async def test_stream_yields_a_valid_order(reg: ab.Registry) -> None:
    wf = diamond(reg)
    events = await collect(ab.Runtime(reg).stream(wf, {"n": 5}))
    check_order(events, wf)

    assert events[0].inputs == {"n": 5}
    run_finished = events[-1]
    assert run_finished.result.status == "succeeded"
    assert run_finished.result.outputs == {"total": 15}
    for event in events:
        if isinstance(event, ab.StepStarted):
            assert event.attempt == 1
        if isinstance(event, ab.StepFinished):
            assert event.result.step_id == event.step_id
            assert event.result.status == "succeeded"
            assert run_finished.result.steps[event.step_id] == event.result


@pytest.mark.anyio
async def test_executor_stream(reg: ab.Registry) -> None:
    wf = diamond(reg)
    events = await collect(ab.Executor(wf, reg).stream({"n": 1}))
    check_order(events, wf)
    assert events[-1].result.outputs == {"total": 3}


def test_stream_sync_gives_the_same_sequence(reg: ab.Registry) -> None:
    chain = build(
        {"id": "a", "function": lambda: 1},
        {"id": "b", "function": lambda v: v + 1, "inputs": {"v": "${steps.a.output}"}},
        {"id": "c", "function": lambda v: v + 1, "inputs": {"v": "${steps.b.output}"}},
        name="chain",
    )

    def sequence(events: list[ab.Event]) -> list[tuple[str, str | None]]:
        return [(type(e).__name__, getattr(e, "step_id", None)) for e in events]

    sync_events = list(ab.Runtime(reg).stream_sync(chain))
    async_events = ab.run_sync(collect, ab.Runtime(reg).stream(chain))
    check_order(sync_events, chain)
    assert sequence(sync_events) == sequence(async_events)
    assert sequence(sync_events) == [
        ("RunStarted", None),
        ("StepStarted", "a"),
        ("StepFinished", "a"),
        ("StepStarted", "b"),
        ("StepFinished", "b"),
        ("StepStarted", "c"),
        ("StepFinished", "c"),
        ("RunFinished", None),
    ]
    assert sync_events[-1].result.outputs == {"a": 1, "b": 2, "c": 3}

    executor_events = list(ab.Executor(chain, reg).stream_sync())
    assert sequence(executor_events) == sequence(sync_events)


def test_events_are_frozen(reg: ab.Registry) -> None:
    events = list(ab.Runtime(reg).stream_sync(build({"id": "a", "function": lambda: 1})))
    for event in events:
        assert dataclasses.is_dataclass(event)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.workflow = "other"  # type: ignore[misc]


@pytest.mark.anyio
async def test_a_failing_stream_does_not_raise(reg: ab.Registry) -> None:
    @reg.function
    async def broken() -> None:
        raise ValueError("no")

    wf = build(
        {"id": "x", "function": "broken"}, {"id": "y", "function": "broken", "depends_on": ["x"]}
    )
    events = await collect(ab.Runtime(reg).stream(wf))
    result = events[-1].result
    assert result.status == "failed"
    assert result.steps["x"].status == "failed"
    assert result.steps["y"].status == "skipped"
    finished = [e for e in events if isinstance(e, ab.StepFinished)]
    assert finished[0].result.status == "failed"
    assert isinstance(finished[0].result.error, ValueError)

    sync_events = list(ab.Runtime(reg).stream_sync(wf))
    assert sync_events[-1].result.status == "failed"


def register_hang(reg: ab.Registry) -> threading.Event:
    """Register step ``hang``, which waits until cancelled; set once it was."""
    cleaned = threading.Event()

    @reg.function
    async def hang() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()

    return cleaned


@pytest.mark.anyio
async def test_breaking_out_of_a_stream_cancels_the_run(reg: ab.Registry) -> None:
    cleaned = register_hang(reg)
    never: list[str] = []

    @reg.function
    async def later() -> None:
        never.append("ran")

    wf = build(
        {"id": "hang", "function": "hang"},
        {"id": "after", "function": "later", "depends_on": ["hang"]},
    )
    seen: list[ab.Event] = []
    with anyio.fail_after(10):
        async with contextlib.aclosing(ab.Runtime(reg).stream(wf)) as stream:
            async for event in stream:
                seen.append(event)
                if isinstance(event, ab.StepStarted):
                    break
    assert cleaned.is_set(), "closing the stream must cancel the running step"
    assert never == []
    assert [type(e) for e in seen] == [ab.RunStarted, ab.StepStarted]

    # The loop is healthy afterwards: another run completes.
    events = await collect(ab.Runtime(reg).stream(build({"id": "later", "function": "later"})))
    assert events[-1].result.status == "succeeded"


def read_until_hang_starts(stream: Iterator[ab.Event]) -> None:
    """Read ``stream`` until step ``hang`` starts, or to its end, then close it."""
    with contextlib.closing(stream):
        for event in stream:
            if isinstance(event, ab.StepStarted) and event.step_id == "hang":
                return


def test_breaking_out_of_a_sync_stream_cancels_the_run(reg: ab.Registry) -> None:
    cleaned = register_hang(reg)
    read_until_hang_starts(ab.Runtime(reg).stream_sync(build({"id": "hang", "function": "hang"})))
    assert cleaned.wait(10), "closing the sync stream must cancel the running step"


@pytest.mark.parametrize("stop_early", [False, True], ids=["to_the_end", "stopped_early"])
def test_a_setting_broken_during_a_sync_stream_raises_its_error_alone(
    reg: ab.Registry, portal_backend: str, monkeypatch: pytest.MonkeyPatch, stop_early: bool
) -> None:
    # The bridge reads its settings again as the stream closes, inside the task group
    # that feeds the events: the caller gets the error, as from run(), not a group.
    monkeypatch.setenv("AGENTBRIDGE_CANCEL_GRACE", "1")  # so the test's end restores it

    @reg.function
    def break_setting() -> None:
        os.environ["AGENTBRIDGE_CANCEL_GRACE"] = "soon"

    register_hang(reg)
    hanging = [{"id": "hang", "function": "hang", "depends_on": ["broken"]}] if stop_early else []
    stream = ab.Runtime(reg, backend=portal_backend).stream_sync(
        build({"id": "broken", "function": "break_setting"}, *hanging)
    )
    with pytest.raises(ab.ConfigurationError, match="AGENTBRIDGE_CANCEL_GRACE='soon'") as caught:
        read_until_hang_starts(stream)
    assert type(caught.value) is ab.ConfigurationError


@pytest.mark.anyio
async def test_an_error_thrown_into_a_stream_comes_out_alone(reg: ab.Registry) -> None:
    cleaned = register_hang(reg)
    stream = ab.Runtime(reg).stream(build({"id": "hang", "function": "hang"}))
    assert isinstance(stream, AsyncGenerator)
    with anyio.fail_after(10):
        async for event in stream:
            if isinstance(event, ab.StepStarted):
                break
        with pytest.raises(ab.ConfigurationError, match="thrown in") as caught:
            await stream.athrow(ab.ConfigurationError("thrown in"))
    assert type(caught.value) is ab.ConfigurationError
    assert cleaned.is_set(), "the run must be cancelled on the way out"
