"""The run state alone: every transition of a run, with no loop and nothing executed."""

from __future__ import annotations

import ast
import datetime
import pathlib
from typing import Any

import pytest

import agentbridge as ab
from agentbridge.runtime import _state
from agentbridge.runtime._plan import Plan
from agentbridge.runtime._state import RunState, StepAttempts

from ._helpers import build

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def plan_of(*steps: dict[str, Any], outputs: dict[str, Any] | None = None) -> Plan:
    """A plan whose steps are never called: the state only reads the graph."""
    workflow = build(*steps, inputs={"n": {"default": 1}}, outputs=outputs)
    return Plan(workflow, {step.id: lambda **_: None for step in workflow.steps})


def diamond() -> Plan:
    return plan_of(
        {"id": "top", "function": "f"},
        {"id": "left", "function": "f", "depends_on": ["top"]},
        {"id": "right", "function": "f", "depends_on": ["top"]},
        {"id": "bottom", "function": "f", "depends_on": ["left", "right"]},
        {"id": "alone", "function": "f"},
    )


def succeeded(step_id: str, output: Any = None) -> ab.StepResult:
    return ab.StepResult(step_id, "function", ab.StepStatus.SUCCEEDED, output, 1, T0, 0.5)


def failed(step_id: str, error: BaseException) -> ab.StepResult:
    return ab.StepResult(step_id, "function", ab.StepStatus.FAILED, None, 1, T0, 0.5, error)


def finish(
    state: RunState, status: ab.RunStatus, timeout: float | None = None
) -> ab.WorkflowResult:
    return state.result(status, run_id="r1", started_at=T0, duration=2.0, timeout=timeout)


def test_the_state_module_does_no_io() -> None:
    tree = ast.parse(pathlib.Path(_state.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"anyio", "asyncio", "trio", "threading", "sniffio"}
    assert not [
        node for node in ast.walk(tree) if isinstance(node, ast.AsyncFunctionDef | ast.Await)
    ]


def test_roots_are_ready_once_in_workflow_order() -> None:
    state = RunState(diamond(), {"n": 1})
    assert state.take_ready() == ["top", "alone"]
    assert state.take_ready() == []


def test_a_dependent_is_released_by_its_last_dependency_only() -> None:
    state = RunState(diamond(), {"n": 1})
    state.take_ready()
    assert state.record(succeeded("top", 1)) == ["left", "right"]
    assert state.record(succeeded("right", 2)) == []
    assert state.record(succeeded("left", 3)) == ["bottom"]
    assert state.outputs == {"top": 1, "right": 2, "left": 3}
    assert state.record(succeeded("bottom")) == []
    assert state.record(succeeded("alone")) == []
    assert state.ended_status() is ab.RunStatus.SUCCEEDED


def test_a_failure_with_fail_fast_stops_the_run() -> None:
    state = RunState(diamond(), {"n": 1})
    state.take_ready()
    error = ValueError("no")
    assert state.record(failed("alone", error)) is None, "the run is stopping"
    assert state.failure is error
    # A step still running when the run stops may succeed: its output counts, and it
    # releases nothing.
    assert state.record(succeeded("top", 1)) is None
    assert state.outputs == {"top": 1}
    assert state.ended_status() is ab.RunStatus.FAILED


def test_without_fail_fast_only_the_failed_branch_stops() -> None:
    state = RunState(diamond(), {"n": 1}, fail_fast=False)
    state.take_ready()
    first, second = ValueError("first"), ValueError("second")
    assert state.record(succeeded("top")) == ["left", "right"]
    assert state.record(failed("left", first)) == [], "the run goes on"
    assert state.record(succeeded("right")) == []  # bottom still waits on left
    assert state.record(failed("alone", second)) == []
    assert state.failure is first, "the first failure is the run's"
    result = finish(state, state.ended_status())
    assert result.status is ab.RunStatus.FAILED
    assert result.error is first
    assert result.steps["bottom"].status is ab.StepStatus.SKIPPED


def test_a_cancelled_step_is_not_the_runs_failure() -> None:
    state = RunState(diamond(), {"n": 1})
    state.take_ready()
    cancelled = ab.StepResult("top", "function", ab.StepStatus.CANCELLED, attempts=1)
    assert state.record(cancelled) == [], "the run is not stopped by the state"
    assert state.failure is None
    result = finish(state, ab.RunStatus.CANCELLED)
    assert result.status is ab.RunStatus.CANCELLED
    assert result.error is None
    assert result.steps["top"] is cancelled


def test_the_result_lists_every_step_in_workflow_order() -> None:
    state = RunState(diamond(), {"n": 1})
    state.take_ready()
    state.record(succeeded("top", 1))
    result = finish(state, ab.RunStatus.SUCCEEDED)
    assert list(result.steps) == ["top", "left", "right", "bottom", "alone"]
    assert result.steps["top"].output == 1
    skipped = result.steps["left"]
    assert (skipped.status, skipped.attempts, skipped.started_at) == (
        ab.StepStatus.SKIPPED,
        0,
        None,
    )
    assert (result.run_id, result.started_at, result.duration) == ("r1", T0, 2.0)
    assert result.outputs == {"top": 1}


def test_declared_outputs_are_evaluated_from_what_ran() -> None:
    plan = plan_of(
        {"id": "a", "function": "f"},
        {"id": "b", "function": "f", "depends_on": ["a"]},
        outputs={"got": "${steps.a.output.x}", "later": "${steps.b.output}", "n": "${inputs.n}"},
    )
    state = RunState(plan, {"n": 7})
    state.record(succeeded("a", {"x": 5}))
    # b never ended: an output that needs it is left out, not an error.
    assert finish(state, ab.RunStatus.CANCELLED).outputs == {"got": 5, "n": 7}


def test_an_output_that_cannot_be_evaluated_fails_the_run() -> None:
    plan = plan_of({"id": "a", "function": "f"}, outputs={"got": "${steps.a.output.missing}"})
    state = RunState(plan, {})
    state.record(succeeded("a", {"x": 5}))
    result = finish(state, ab.RunStatus.SUCCEEDED)
    assert result.status is ab.RunStatus.FAILED
    assert isinstance(result.error, ab.ExpressionError)
    assert "output 'got'" in str(result.error)
    assert result.outputs == {}


def test_a_timed_out_result_carries_its_error() -> None:
    state = RunState(diamond(), {})
    result = finish(state, ab.RunStatus.TIMED_OUT, timeout=1.5)
    assert isinstance(result.error, ab.WorkflowTimeoutError)
    assert result.error.result is result
    assert result.error.timeout == 1.5
    assert "1.5 s" in str(result.error)


def test_a_seed_marks_steps_done_and_releases_their_dependents() -> None:
    seed = {"top": succeeded("top", 1), "left": succeeded("left", 2)}
    state = RunState(diamond(), {}, seed=seed)
    assert state.take_ready() == ["right", "alone"]
    assert state.outputs == {"top": 1, "left": 2}
    assert state.record(succeeded("right", 3)) == ["bottom"]
    result = finish(state, ab.RunStatus.SUCCEEDED)
    assert result.steps["top"] is seed["top"]
    assert result.steps["left"] is seed["left"]


def test_a_seed_of_every_step_leaves_nothing_to_run() -> None:
    plan = diamond()
    seed = {step_id: succeeded(step_id, step_id) for step_id in plan.calls}
    state = RunState(plan, {}, seed=seed)
    assert state.take_ready() == []
    assert finish(state, state.ended_status()).outputs == {
        step_id: step_id for step_id in plan.calls
    }


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        pytest.param({"nope": succeeded("nope")}, "names no step", id="unknown-step"),
        pytest.param({"top": succeeded("left")}, "of step 'left'", id="other-step"),
        pytest.param({"top": failed("top", ValueError())}, "got a failed result", id="failed"),
        pytest.param({"left": succeeded("left")}, "'top' are not", id="dependency-missing"),
    ],
)
def test_a_seed_that_does_not_fit_is_refused(seed: dict[str, ab.StepResult], message: str) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        RunState(diamond(), {}, seed=seed)
    assert len(caught.value.problems) == 1
    assert message in str(caught.value)
    assert caught.value.problems[0].step_id == next(iter(seed))


def test_attempts_count_and_retry_with_doubling_delays() -> None:
    step = build({"id": "s", "function": "f", "retries": 2, "retry_delay": 0.25}).steps[0]
    attempts = StepAttempts(step)
    assert attempts.begin() == 1
    assert attempts.retry_delay() == 0.25
    assert attempts.begin() == 2
    assert attempts.retry_delay() == 0.5
    assert attempts.begin() == 3
    assert attempts.retry_delay() is None, "two retries: three attempts in all"
    error = ValueError("third")
    result = attempts.failed(error)
    assert (result.status, result.attempts, result.error) == (ab.StepStatus.FAILED, 3, error)
    assert result.started_at is not None
    assert result.started_at.tzinfo is not None
    assert result.duration is not None
    assert result.duration >= 0


def test_only_the_steps_own_timeout_is_a_timed_out_step() -> None:
    step = build({"id": "s", "function": "f"}).steps[0]
    own = ab.StepTimeoutError("own", step_id="s", timeout=1)
    nested = ab.StepTimeoutError("nested", step_id="inner", timeout=1)
    assert StepAttempts(step).failed(own).status is ab.StepStatus.TIMED_OUT
    assert StepAttempts(step).failed(nested).status is ab.StepStatus.FAILED


def test_a_success_records_the_output() -> None:
    step = build({"id": "s", "tool": "f"}).steps[0]
    attempts = StepAttempts(step)
    attempts.begin()
    result = attempts.ended(ab.StepStatus.SUCCEEDED, None, {"k": 1})
    assert (result.step_id, result.kind, result.status) == ("s", "tool", ab.StepStatus.SUCCEEDED)
    assert (result.output, result.attempts, result.error) == ({"k": 1}, 1, None)
