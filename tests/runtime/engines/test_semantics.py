"""Steps on Dask and Ray behave as local steps do, on asyncio and trio: outputs,
exceptions, retries, caps, timeouts, fail-fast and cancellation, each test on both
engines (Dask: a cluster of threads; Ray: its worker processes).

Steps that must be running before the test acts meet the test (or a local step) at a
manager's barrier; steps that hold a worker wait on a manager's event, released by the
test. Every wait is bounded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentbridge as ab

from .. import _process_steps as steps
from .._helpers import build
from .conftest import BOUND

Engine = ab.DaskRunner | ab.RayRunner

pytestmark = pytest.mark.anyio


def _on(**step: Any) -> dict[str, Any]:
    return {**step, "runner": "engine"}


def _runtime(engine: Engine, **options: Any) -> ab.Runtime:
    return ab.Runtime(runners={"engine": engine}, **options)


def _holding(path: Path, name: str) -> dict[str, Any]:
    """A step that meets at ``${inputs.b}``, then holds its worker until ``${inputs.e}``."""
    inputs = {"barrier": "${inputs.b}", "event": "${inputs.e}", "path": str(path / name)}
    return _on(id=name, function=steps.meet_then_wait, inputs={**inputs, "timeout": BOUND})


async def _both_slots_free(engine: Engine, manager: Any) -> None:
    """Returns once two engine steps run at once: every earlier task has ended."""
    barrier = manager.Barrier(2, timeout=BOUND)
    pair = build(
        _on(id="x", function=steps.barrier_pid, inputs={"barrier": "${inputs.b}"}),
        _on(id="y", function=steps.barrier_pid, inputs={"barrier": "${inputs.b}"}),
        inputs=["b"],
    )
    await _runtime(engine).run_async(pair, {"b": barrier})


def _ran_on(engine: Engine) -> bool:
    """Whether the engine lets a cancelled running call run on (Dask) or interrupts it."""
    return isinstance(engine, ab.DaskRunner)


async def test_outputs_come_back_for_later_expressions_and_async_steps_run_there(
    engine: Engine,
) -> None:
    workflow = build(
        _on(id="a", function=steps.add, inputs={"a": 1, "b": 2}),
        _on(id="b", function=steps.async_pid, inputs={"x": "${steps.a.output}"}),
        {"id": "local", "function": steps.add, "inputs": {"a": "${steps.b.output[2]}", "b": 1}},
    )
    result = await _runtime(engine).run_async(workflow)
    _, loop_module, doubled = result.outputs["b"]
    # asyncio.run on the worker (Ray makes it a uvloop), whatever loop runs here.
    assert loop_module.split(".")[0] in {"asyncio", "uvloop"}
    assert (result.outputs["a"], doubled, result.outputs["local"]) == (3, 6, 7)


async def test_a_wide_fan_out_submitted_and_fetched_together_keeps_each_outcome(
    engine: Engine,
) -> None:
    # Attempts ready at once are submitted in one batch, and the outputs of those done
    # together fetched in one gather: successes, failures and a for_each's items among
    # them each keep their own outcome, and a later expression reads the outputs.
    wide = 24
    workflow = build(
        *(
            _on(id=f"s{i}", function=steps.add, inputs={"a": i, "b": 1})
            if i % 3
            else _on(id=f"s{i}", function=steps.fail, inputs={"message": f"m{i}"})
            for i in range(wide)
        ),
        _on(
            id="each",
            function=steps.add,
            for_each="${inputs.items}",
            inputs={"a": "${item}", "b": "${index}"},
        ),
        {"id": "total", "function": steps.add, "inputs": {"a": "${steps.s2.output}", "b": 0}},
        inputs=["items"],
    )
    with pytest.raises(ab.StepFailedError) as caught:
        await _runtime(engine, fail_fast=False).run_async(workflow, {"items": [5, 6, 7]})
    results = caught.value.result.steps
    for i in range(wide):
        if i % 3:
            assert results[f"s{i}"].output == i + 1
        else:
            assert type(results[f"s{i}"].error) is ValueError
            assert str(results[f"s{i}"].error) == f"m{i}"
    assert results["each"].output == [5, 7, 9]
    assert results["total"].output == 3


async def test_a_step_exception_comes_back_as_its_own_type(engine: Engine) -> None:
    workflow = build(_on(id="bad", function=steps.fail, inputs={"message": "boom"}))
    with pytest.raises(ab.StepFailedError) as caught:
        await _runtime(engine).run_async(workflow)
    error = caught.value.__cause__
    assert type(error) is ValueError
    assert str(error) == "boom"


async def test_a_step_error_keeps_its_workers_traceback_as_text_and_no_frames_once_the_run_ends(
    engine: Engine,
) -> None:
    workflow = build(_on(id="bad", function=steps.fail, inputs={"message": "boom"}))
    with pytest.raises(ab.StepFailedError) as caught:
        await _runtime(engine).run_async(workflow)
    error = caught.value.result.steps["bad"].error
    assert type(error) is ValueError
    chained, seen = [], [error]
    while seen:  # the error and every exception chained to it
        exc = seen.pop()
        if exc is not None and exc not in chained:
            chained.append(exc)
            seen += (exc.__cause__, exc.__context__)
    # Frames of this process only: the runner's, which would hold the engine's task.
    assert [exc.__traceback__ for exc in chained] == [None] * len(chained)
    assert "in fail" in str(error.__cause__)
    assert "raise ValueError(message)" in str(error.__cause__)


async def test_an_exception_that_cannot_be_pickled_back_is_a_runner_error(engine: Engine) -> None:
    workflow = build(_on(id="bad", function=steps.fail_unpicklable))
    with pytest.raises(ab.StepFailedError) as caught:
        await _runtime(engine).run_async(workflow)
    error = caught.value.__cause__
    assert isinstance(error, ab.RunnerError)
    assert "_Unpicklable: stuck in the worker" in str(error)
    assert "cannot be pickled back" in str(error)


async def test_the_steps_retries_are_the_only_retries(engine: Engine, tmp_path: Path) -> None:
    counter = str(tmp_path / "count")
    flaky = _on(
        id="flaky",
        function=steps.count_then_succeed,
        inputs={"path": counter, "succeed_on": 3},
        retries=1,
    )
    with pytest.raises(ab.StepFailedError) as caught:
        await _runtime(engine).run_async(build(flaky))
    assert caught.value.result.steps["flaky"].attempts == 2
    assert Path(counter).read_text() == "2"  # the engine retried nothing itself
    again = await _runtime(engine).run_async(build({**flaky, "retries": 0}))
    assert again.outputs == {"flaky": 3}  # a fresh task: no cached error for the same call


async def test_max_concurrency_caps_engine_steps(engine: Engine, manager: Any) -> None:
    entries = manager.list()
    workflow = build(
        *(
            _on(id=name, function=steps.log, inputs={"entries": "${inputs.l}", "name": name})
            for name in ("a", "b", "c")
        ),
        inputs=["l"],
    )
    await _runtime(engine, max_concurrency=1).run_async(workflow, {"l": entries})
    logged = list(entries.proxy)
    assert sorted(logged) == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert all(logged[i][:-3] == logged[i + 1][:-4] for i in range(0, 6, 2)), logged


async def test_a_timeout_drops_queued_work_and_fail_fast_cancels_running_steps(
    engine: Engine, manager: Any, tmp_path: Path
) -> None:
    # hold1 and hold2 take both worker slots; `gate` (local) passes once they run; then
    # `queued` is submitted, waits on the engine and times out there.
    barrier, release = manager.Barrier(3, timeout=BOUND), manager.Event()
    flag = tmp_path / "queued-ran"
    workflow = build(
        _holding(tmp_path, "hold1"),
        _holding(tmp_path, "hold2"),
        {"id": "gate", "function": steps.barrier_pid, "inputs": {"barrier": "${inputs.b}"}},
        _on(
            id="queued",
            function=steps.mark,
            inputs={"path": str(flag)},
            depends_on=["gate"],
            timeout=0.3,
        ),
        inputs=["b", "e"],
    )
    try:
        with pytest.raises(ab.StepFailedError) as caught:
            await _runtime(engine).run_async(workflow, {"b": barrier, "e": release})
    finally:
        release.set()
    results = caught.value.result.steps
    queued = results["queued"]
    assert queued.status is ab.StepStatus.TIMED_OUT
    assert queued.cancelled_how is not None
    assert queued.cancelled_how in str(queued.error)
    for name in ("hold1", "hold2"):
        assert results[name].status is ab.StepStatus.CANCELLED
    await _both_slots_free(engine, manager)
    assert not flag.exists()
    assert (tmp_path / "hold1").exists() is _ran_on(engine)
    if isinstance(engine, ab.DaskRunner):
        assert queued.cancelled_how == "its Dask task was dropped before it started"
        assert results["hold1"].cancelled_how == (
            "its Dask task was already running on a worker, which runs it to its end"
        )
    else:
        assert results["hold1"].cancelled_how == (
            "its Ray task was cancelled: interrupted if it ran, dropped if queued"
        )


async def test_cancelling_the_caller_reaches_the_engine(
    engine: Engine, manager: Any, tmp_path: Path
) -> None:
    barrier, release = manager.Barrier(3, timeout=BOUND), manager.Event()
    workflow = build(_holding(tmp_path, "hold1"), _holding(tmp_path, "hold2"), inputs=["b", "e"])
    events: list[ab.Event] = []

    async def consume() -> None:
        async for event in _runtime(engine).stream(workflow, {"b": barrier, "e": release}):
            events.append(event)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await anyio.to_thread.run_sync(barrier.wait)  # both steps run on the engine
            group.cancel_scope.cancel()
    finally:
        release.set()
    await _both_slots_free(engine, manager)
    assert (tmp_path / "hold1").exists() is _ran_on(engine)
    assert (tmp_path / "hold2").exists() is _ran_on(engine)
    started = {event.step_id for event in events if isinstance(event, ab.StepStarted)}
    assert started == {"hold1", "hold2"}


async def test_a_callable_whose_state_changed_runs_with_its_new_state(engine: Engine) -> None:
    # The engine keeps a remote function per callable: one whose state changed since is
    # a callable of its own, as it would be were it shipped with each task.
    scaler = steps.Scaler(2)
    workflow = build(_on(id="s", function=scaler, inputs={"x": 5}))
    runtime = _runtime(engine)
    assert (await runtime.run_async(workflow)).outputs["s"] == {"scaled": 10}
    scaler.factor = 3
    assert (await runtime.run_async(workflow)).outputs["s"] == {"scaled": 15}
    other = build(_on(id="s", function=steps.Scaler(4), inputs={"x": 5}))
    assert (await runtime.run_async(other)).outputs["s"] == {"scaled": 20}


class _Agent:
    def run(self) -> str:
        return "hi"


class _Locked:
    """A callable that cannot be pickled: it holds a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self) -> int:
        return 1


def test_agent_steps_and_unpicklable_targets_are_refused_at_validation(engine: Engine) -> None:
    workflow = build(
        _on(id="bot", agent=_Agent()),
        _on(id="locked", function=_Locked()),
        _on(id="closure", function=lambda: 1),  # cloudpickle carries it by value
    )
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Executor(workflow, runners={"engine": engine})
    problems = {problem.step_id: problem.message for problem in caught.value.problems}
    assert set(problems) == {"bot", "locked"}
    assert f"an agent step cannot run on a {engine.engine} runner" in problems["bot"]
    assert "cannot be pickled" in problems["locked"]
    assert "lock" in problems["locked"]


@pytest.mark.parametrize("state", ["never started", "closed"])
async def test_a_runner_not_started_or_closed_fails_its_steps_alone(
    engine: Engine, state: str
) -> None:
    idle = type(engine)(capacity=1)  # cheap: neither is started here
    if state == "closed":
        idle.close()
    workflow = build(
        _on(id="remote", function=steps.pid),
        {"id": "local", "function": steps.add, "inputs": {"a": 1, "b": 1}},
    )
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.Runtime(runners={"engine": idle}, fail_fast=False).run_async(workflow)
    results = caught.value.result.steps
    error = results["remote"].error
    assert isinstance(error, ab.RunnerError)
    assert f"the {engine.engine} runner was {state}" in str(error)
    assert results["local"].output == 2
    if state == "closed":
        with pytest.raises(ab.RunnerError, match="was closed; make a new one"):
            idle.start()
