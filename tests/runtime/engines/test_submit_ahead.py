"""Submitting ahead: a chain's steps handed to Dask or Ray before their upstream ended,
the upstream's task an argument the engine resolves on the worker; from the user's
side, every run behaves as it did when each step was submitted once the one before
had ended. Each test on both engines, on asyncio and trio.

What was submitted ahead is seen through :meth:`EngineRunner.begin` (a spy records
each attempt handed over with upstream attempts, and which steps had ended then): a
test of the feature fails if nothing was. Steps that must be held wait on a
manager's event released by the test; every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

import agentbridge as ab
from agentbridge.runtime._engine import EngineRunner, Pending
from agentbridge.runtime._plan import StepCall

from .. import _process_steps as steps
from .._helpers import build
from . import _chain_steps as chain
from .conftest import BOUND

Engine = ab.DaskRunner | ab.RayRunner

pytestmark = pytest.mark.anyio


def _on(**step: Any) -> dict[str, Any]:
    return {**step, "runner": "engine"}


@dataclass
class _Spy:
    """What :meth:`EngineRunner.begin` was given, and the run's events so far."""

    #: ``(step id, the steps that had ended then)`` per attempt handed over ahead.
    ahead: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    #: Those attempts.
    pending: dict[str, Pending] = field(default_factory=dict)
    events: list[ab.Event] = field(default_factory=list)
    #: Set once an attempt was handed over ahead.
    handed: anyio.Event = field(default_factory=anyio.Event)

    def ended(self) -> frozenset[str]:
        return frozenset(e.step_id for e in self.events if isinstance(e, ab.StepFinished))

    def submitted_ahead(self) -> list[str]:
        return [step_id for step_id, _ in self.ahead]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    seen = _Spy()
    begin = EngineRunner.begin

    def spying(
        self: EngineRunner[Any],
        call: StepCall,
        kwargs: dict[str, Any],
        upstream: tuple[Pending, ...] = (),
        places: Any = (),
    ) -> Pending:
        pending = begin(self, call, kwargs, upstream, places)
        if upstream:
            seen.ahead.append((call.step.id, seen.ended()))
            seen.pending[call.step.id] = pending
            seen.handed.set()
        return pending

    monkeypatch.setattr(EngineRunner, "begin", spying)
    return seen


async def _run(
    engine: Engine | None,
    spy: _Spy,
    workflow: ab.Workflow,
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> ab.WorkflowResult:
    """Run ``workflow`` on ``engine`` (``None``: in this process), its events kept in
    ``spy``; its result, whatever its status."""
    runners = {} if engine is None else {"engine": engine}
    runtime = ab.Runtime(runners=runners, **options)
    async for event in runtime.stream(workflow, inputs):
        spy.events.append(event)
    finished = spy.events[-1]
    assert isinstance(finished, ab.RunFinished)
    return finished.result


def _off(step: dict[str, Any]) -> dict[str, Any]:
    """``step`` without its runner: run in this process, as the reference."""
    return {key: value for key, value in step.items() if key != "runner"}


def _recording(name: str, value: str, **extra: Any) -> dict[str, Any]:
    """Step ``name`` on the engine: records ``value`` (and ``extra``) in ``${inputs.log}``."""
    inputs = {"entries": "${inputs.log}", "name": name, "value": value, **extra}
    return _on(id=name, function=chain.record, inputs=inputs)


def _chain() -> list[dict[str, Any]]:
    """a -> b -> c -> d, reading the output before as a whole, by field, by index, and
    other values evaluated on the driver (an input, an output ended long before)."""
    return [
        _on(id="a", function=chain.shaped, inputs={"n": "${inputs.n}"}),
        _recording("b", "${steps.a.output.n}"),
        _recording("c", "${steps.a.output['items'][1]}", extra="${steps.b.output}"),
        _recording("d", "${steps.c.output}", extra=["literal", "${inputs.n}"]),
    ]


async def test_a_chain_is_submitted_ahead_and_gives_what_it_gave_before(
    engine: Engine, manager: Any, spy: _Spy
) -> None:
    log = manager.list()
    workflow = build(*_chain(), inputs=["n", "log"])
    result = await _run(engine, spy, workflow, {"n": 4, "log": log})
    # Each dependent was handed to the engine before any step had ended.
    assert spy.ahead == [("b", frozenset()), ("c", frozenset()), ("d", frozenset())]
    local = build(*map(_off, _chain()), inputs=["n", "log"])
    expected = await _run(None, _Spy(), local, {"n": 4, "log": []})
    assert (
        result.outputs
        == expected.outputs
        == {
            "a": {"n": 4, "items": [4, 5]},
            "b": 4,
            "c": 5,
            "d": 5,
        }
    )
    assert sorted(map(tuple, log.proxy)) == [
        ("b", 4, None),
        ("c", 5, 4),
        ("d", 5, ["literal", 4]),
    ]
    # Each dependent starts, as before, once the driver learned its upstream ended.
    order = [(type(e).__name__, getattr(e, "step_id", None)) for e in spy.events]
    for before, after in (("a", "b"), ("b", "c"), ("c", "d")):
        assert order.index(("StepFinished", before)) < order.index(("StepStarted", after))
    assert all(step.attempts == 1 for step in result.steps.values())


def _recorded_after(first: dict[str, Any], *inputs: str) -> ab.Workflow:
    """``first`` (step ``a``), then ``b``, which records the output of ``a`` in
    ``${inputs.log}``."""
    record = {"entries": "${inputs.log}", "name": "b", "value": "${steps.a.output}"}
    second = _on(id="b", function=chain.record, inputs=record)
    return build(first, second, inputs=["log", *inputs])


async def test_a_failed_upstream_never_calls_the_dependent_submitted_ahead(
    engine: Engine, manager: Any, spy: _Spy
) -> None:
    log = manager.list()
    workflow = _recorded_after(_on(id="a", function=steps.fail, inputs={"message": "boom"}))
    result = await _run(engine, spy, workflow, {"log": log})
    assert spy.submitted_ahead() == ["b"]
    results = result.steps
    assert type(results["a"].error) is ValueError
    assert results["b"].status is ab.StepStatus.SKIPPED  # as when it was never submitted
    await _ended_without_running(engine, spy.pending["b"])
    assert list(log.proxy) == []


async def test_the_engine_fails_a_task_whose_upstream_failed_without_calling_it(
    engine: Engine, manager: Any
) -> None:
    # What the design relies on, pinned on each engine's own behaviour: no driver drops
    # the dependent here, only the engine decides.
    log = manager.list()
    failing = StepCall(ab.Step("a", "function", steps.fail), steps.fail)
    recording = StepCall(ab.Step("b", "function", chain.record), chain.record)
    upstream = engine.begin(failing, {"message": "boom"})
    dependent = engine.begin(recording, {"entries": log, "name": "b", "value": 1}, (upstream,))
    with pytest.raises(ValueError, match="boom"):
        await engine.wait(upstream)
    with pytest.raises(Exception):
        await engine.wait(dependent)
    assert list(log.proxy) == []


async def test_an_upstream_that_times_out_never_calls_its_dependent(
    engine: Engine, manager: Any, spy: _Spy, tmp_path: Path
) -> None:
    # The upstream times out while it runs, and runs on to its end on Dask (which cannot
    # interrupt it): cancelling its task alone would not stop a dependent that still
    # wants it there, so the dependent submitted ahead is dropped first.
    log, release, path = manager.list(), manager.Event(), tmp_path / "a"
    inputs = {"log": log, "e": release, "meet": manager.Barrier(1)}
    workflow = _recorded_after(_held(path) | {"timeout": 0.3}, "e", "meet")
    try:
        result = await _run(engine, spy, workflow, inputs)
        assert spy.submitted_ahead() == ["b"]
        assert result.steps["a"].status is ab.StepStatus.TIMED_OUT
        assert result.steps["b"].status is ab.StepStatus.SKIPPED
        await _ended_without_running(engine, spy.pending["b"])
    finally:
        release.set()
    await _upstream_ended(engine, path)
    assert list(log.proxy) == []


async def test_an_upstream_that_ends_as_it_is_cancelled_never_starts_its_dependent(
    engine: Engine, manager: Any, spy: _Spy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race provoked on purpose: the upstream's task ends on the engine after the run
    # decided to cancel it (its timeout) but before its cancellation reaches the engine.
    # The dependent submitted ahead must have been dropped by then.
    log, release, path = manager.list(), manager.Event(), tmp_path / "a"
    inputs = {"log": log, "e": release, "meet": manager.Barrier(1)}
    cancel = type(engine)._cancel

    def cancelling(self: Engine, handle: Any) -> str:
        if handle is not spy.pending["b"].handle:
            # Whatever the run dropped before cancelling reaches the engine first (the
            # submitting thread runs in order); a run that dropped nothing yet has
            # nothing there.
            self._submitter.submit(lambda: None).result(BOUND)
            release.set()
            deadline = time.monotonic() + BOUND
            while isinstance(engine, ab.DaskRunner) and not path.exists():
                assert time.monotonic() < deadline
                threading.Event().wait(0.01)  # polled, bounded: the upstream ends
        return cancel(self, handle)

    monkeypatch.setattr(type(engine), "_cancel", cancelling)
    workflow = _recorded_after(_held(path) | {"timeout": 0.3}, "e", "meet")
    try:
        result = await _run(engine, spy, workflow, inputs)
        assert result.steps["b"].status is ab.StepStatus.SKIPPED
        await _ended_without_running(engine, spy.pending["b"])
    finally:
        release.set()
    assert list(log.proxy) == []


def _held(path: Path) -> dict[str, Any]:
    """Step ``a``, on the engine until ``${inputs.e}`` is set (past the barrier of one
    ``${inputs.meet}``); then it marks ``path``."""
    inputs = {"barrier": "${inputs.meet}", "event": "${inputs.e}", "path": str(path)}
    return _on(id="a", function=steps.meet_then_wait, inputs={**inputs, "timeout": BOUND})


async def _upstream_ended(engine: Engine, path: Path) -> None:
    """Returns once a released ``a`` ended: on Dask it ran on to its end and marked
    ``path``; Ray interrupted it."""
    if isinstance(engine, ab.DaskRunner):
        with anyio.fail_after(BOUND):
            while not path.exists():
                await anyio.sleep(0.01)  # polled, bounded: the worker tells no one


async def test_an_upstream_retried_gives_its_dependent_the_retried_output(
    engine: Engine, manager: Any, spy: _Spy, tmp_path: Path
) -> None:
    log = manager.list()
    counter = {"path": str(tmp_path / "count"), "succeed_on": 2}
    workflow = _recorded_after(
        _on(id="a", function=steps.count_then_succeed, inputs=counter, retries=1)
    )
    result = await _run(engine, spy, workflow, {"log": log})
    assert spy.submitted_ahead() == ["b", "b"]  # once ahead of each attempt of a
    assert result.outputs == {"a": 2, "b": 2}
    assert list(map(tuple, log.proxy)) == [("b", 2, None)]  # it ran once
    assert (result.steps["a"].attempts, result.steps["b"].attempts) == (2, 1)


async def test_a_chain_of_whole_outputs_on_ray_shares_one_remote_function(
    ray_runner: ab.RayRunner, spy: _Spy
) -> None:
    # Where a whole output goes is part of the remote function, not an argument of
    # each task: one function for the chain's steps, shipped to the cluster once.
    chained = [
        _on(id=f"d{i}", function=steps.double, inputs={"x": f"${{steps.d{i - 1}.output}}"})
        for i in range(1, 6)
    ]
    workflow = build(_on(id="d0", function=steps.double, inputs={"x": 3}), *chained)
    with ray_runner._remotes_lock:  # forgotten remotes are made again when needed
        ray_runner._remotes.clear()
    result = await _run(ray_runner, spy, workflow)
    assert spy.submitted_ahead() == ["d1", "d2", "d3", "d4", "d5"]
    assert result.outputs == {f"d{i}": 3 * 2 ** (i + 1) for i in range(6)}
    assert len(ray_runner._remotes) == 2  # d0's, and the one its dependents share


async def test_a_dependent_failing_is_retried_as_before(
    engine: Engine, spy: _Spy, tmp_path: Path
) -> None:
    workflow = build(
        _on(id="a", function=steps.add, inputs={"a": 1, "b": 1}),
        _on(
            id="b",
            function=steps.count_then_succeed,
            inputs={"path": str(tmp_path / "count"), "succeed_on": "${steps.a.output}"},
            retries=1,
        ),
    )
    result = await _run(engine, spy, workflow)
    assert spy.submitted_ahead() == ["b"]  # its retry is submitted as any attempt
    assert result.outputs == {"a": 2, "b": 2}
    assert result.steps["b"].attempts == 2


async def test_a_dependents_timeout_counts_from_its_upstreams_end(
    engine: Engine, spy: _Spy
) -> None:
    workflow = build(
        _on(id="slow", function=chain.pause, inputs={"seconds": 0.6}),
        _on(
            id="quick",
            function=steps.add,
            inputs={"a": "${steps.slow.output}", "b": 1},
            timeout=0.3,
        ),
    )
    result = await _run(engine, spy, workflow)
    assert spy.submitted_ahead() == ["quick"]
    assert result.outputs == {"slow": 0.6, "quick": 1.6}
    slow, quick = result.steps["slow"], result.steps["quick"]
    assert slow.duration > 0.6 > 0.3 > quick.duration
    assert quick.started_at >= slow.started_at + _seconds(slow.duration)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


@pytest.mark.parametrize(
    "dependent",
    [
        pytest.param({"when": "${steps.a.output} == 3"}, id="when"),
        pytest.param(
            {"for_each": "${inputs.items}", "inputs": {"a": "${steps.a.output}", "b": "${item}"}},
            id="for_each",
        ),
        pytest.param({"runner": "thread"}, id="another-runner"),
        pytest.param(
            {"inputs": {"a": "${steps.a.output}", "b": ["${steps.a.output}"]}}, id="nested"
        ),
    ],
)
async def test_steps_that_do_not_qualify_run_as_before(
    engine: Engine, spy: _Spy, dependent: dict[str, Any]
) -> None:
    first = _on(id="a", function=steps.add, inputs={"a": 1, "b": 2})
    second = _on(id="b", function=steps.add, inputs={"a": "${steps.a.output}", "b": 1}) | dependent
    workflow = build(first, second, inputs=["items"])
    result = await _run(engine, spy, workflow, {"items": [1, 2]})
    assert spy.submitted_ahead() == []
    local = build(_off(first), _off(second), inputs=["items"])
    expected = await _run(None, _Spy(), local, {"items": [1, 2]})
    assert _outcome(result) == _outcome(expected)


async def test_a_runner_made_with_submit_ahead_false_submits_each_step_once_its_upstream_ended(
    engine: Engine, manager: Any, spy: _Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The option as the constructor takes it; the started runner of the fixture is
    # switched the same way, rather than starting a second cluster.
    assert type(engine)(submit_ahead=False).submit_ahead is False
    assert type(engine)().submit_ahead is True
    monkeypatch.setattr(engine, "submit_ahead", False)
    log = manager.list()
    workflow = build(*_chain(), inputs=["n", "log"])
    result = await _run(engine, spy, workflow, {"n": 4, "log": log})
    assert spy.submitted_ahead() == []
    assert result.outputs == {"a": {"n": 4, "items": [4, 5]}, "b": 4, "c": 5, "d": 5}


@pytest.mark.parametrize("wrong", [0, "no", None])
async def test_submit_ahead_must_be_a_bool(engine: Engine, wrong: object) -> None:
    with pytest.raises(ab.ConfigurationError, match="submit_ahead must be True or False"):
        type(engine)(submit_ahead=wrong)  # type: ignore[arg-type]


def _outcome(result: ab.WorkflowResult) -> Any:
    """What a run gave: its outputs, each step's status, the type of its error."""
    statuses = {step_id: step.status for step_id, step in result.steps.items()}
    return result.outputs, statuses, type(result.error)


async def test_an_interpolated_upstream_output_is_evaluated_on_the_driver(
    engine: Engine, spy: _Spy, manager: Any
) -> None:
    log = manager.list()
    workflow = build(
        _on(id="a", function=steps.add, inputs={"a": 1, "b": 2}),
        _on(
            id="b",
            function=chain.record,
            inputs={"entries": "${inputs.log}", "name": "b", "value": "n=${steps.a.output}"},
        ),
        inputs=["log"],
    )
    result = await _run(engine, spy, workflow, {"log": log})
    assert spy.submitted_ahead() == []
    assert result.outputs["b"] == "n=3"


async def test_a_durable_run_submits_nothing_ahead(
    engine: Engine, spy: _Spy, tmp_path: Path
) -> None:
    workflow = build(
        _on(id="a", function=steps.add, inputs={"a": 1, "b": 2}),
        _on(id="b", function=steps.add, inputs={"a": "${steps.a.output}", "b": 1}),
    )
    store = ab.SqliteRunStore(str(tmp_path / "runs.db"))
    result = await _run(engine, spy, workflow, store=store)
    assert spy.submitted_ahead() == []
    assert result.outputs == {"a": 3, "b": 4}


async def test_cancelling_the_run_reaches_a_task_submitted_ahead(
    engine: Engine, manager: Any, spy: _Spy, tmp_path: Path
) -> None:
    log, release, path = manager.list(), manager.Event(), tmp_path / "a"
    inputs = {"log": log, "e": release, "meet": manager.Barrier(1)}
    workflow = _recorded_after(_held(path), "e", "meet")
    try:
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                group.start_soon(_run, engine, spy, workflow, inputs)
                await spy.handed.wait()
                group.cancel_scope.cancel()
        assert spy.submitted_ahead() == ["b"]
        await _ended_without_running(engine, spy.pending["b"])
    finally:
        release.set()  # a Dask task runs on to its end: b must still never run
    await _upstream_ended(engine, path)
    assert list(log.proxy) == []


async def _ended_without_running(engine: Engine, pending: Pending) -> None:
    """Returns once ``engine`` ended ``pending``'s task without a result, or never took
    it: it can never run any more."""
    await anyio.to_thread.run_sync(_ended, engine, pending)


def _ended(engine: Engine, pending: Pending) -> None:
    assert pending.submitted.wait(BOUND)
    handle = pending.handle
    if handle is None:  # dropped before it was submitted
        return
    if isinstance(engine, ab.RayRunner):
        import ray

        with pytest.raises(ray.exceptions.RayError):  # cancelled, or its upstream failed
            ray.get(handle, timeout=BOUND)
        return
    with pytest.raises(Exception):
        handle.result(timeout=BOUND)
    # And the scheduler runs it no more (polled, bounded: Dask tells no one).
    deadline = time.monotonic() + BOUND
    while _state_on_scheduler(engine, handle.key) in ("waiting", "queued", "processing"):
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)


def _state_on_scheduler(engine: ab.DaskRunner, key: str) -> str | None:
    def state(dask_scheduler: Any) -> str | None:
        task = dask_scheduler.tasks.get(key)
        return None if task is None else str(task.state)

    result: str | None = engine.client.run_on_scheduler(state)
    return result
