"""Conditions at run time: a step whose ``when`` is false is skipped, with its dependents."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = [pytest.mark.timeout(30)]


@pytest.fixture
def reg() -> ab.Registry:
    registry = ab.Registry()

    async def classify(text: str) -> str:
        return "bug" if "crash" in text else "feature"

    async def echo(value: object) -> object:
        return value

    registry.register("tool", "classify", classify)
    registry.register("tool", "echo", echo)
    return registry


def triage(**outputs: Any) -> ab.Workflow:
    return build(
        {"id": "classify", "tool": "classify", "inputs": {"text": "${inputs.text}"}},
        {
            "id": "page",
            "tool": "echo",
            "when": "${steps.classify.output} == 'bug'",
            "inputs": {"value": "paged"},
        },
        {"id": "log", "tool": "echo", "inputs": {"value": "${steps.page.output}"}},
        {
            "id": "plan",
            "tool": "echo",
            "when": "${steps.classify.output} in ['feature', 'idea']",
            "inputs": {"value": "planned"},
        },
        inputs=["text"],
        outputs=outputs or None,
    )


async def run(reg: ab.Registry, workflow: ab.Workflow, text: str) -> list[ab.Event]:
    with anyio.fail_after(20):
        return await collect(ab.Runtime(reg).stream(workflow, {"text": text}))


@pytest.mark.anyio
async def test_a_false_condition_skips_the_step_and_its_dependents(reg: ab.Registry) -> None:
    events = await run(reg, triage(), "a new button")
    result = events[-1].result
    assert result.status == "succeeded"
    statuses = {step_id: step.status.value for step_id, step in result.steps.items()}
    assert statuses == {
        "classify": "succeeded",
        "page": "skipped",
        "log": "skipped",
        "plan": "succeeded",
    }
    page = result.steps["page"]
    assert (page.output, page.attempts, page.started_at, page.error) == (None, 0, None, None)
    assert result.outputs == {"classify": "feature", "plan": "planned"}
    started = {e.step_id for e in events if isinstance(e, ab.StepStarted)}
    assert started == {"classify", "plan"}
    finished = {e.step_id: e.result.status for e in events if isinstance(e, ab.StepFinished)}
    assert finished["page"] == "skipped", "the skipped step reports its end"
    assert "log" not in finished, "a dependent never starts: no events"


@pytest.mark.anyio
async def test_a_true_condition_runs_the_step(reg: ab.Registry) -> None:
    result = (await run(reg, triage(), "it crashes")).pop().result
    assert result.steps["page"].output == "paged"
    assert result.steps["log"].output == "paged"
    assert result.steps["plan"].status == "skipped"


@pytest.mark.anyio
async def test_declared_outputs_of_skipped_steps_are_left_out(reg: ab.Registry) -> None:
    workflow = triage(paged="${steps.page.output}", kind="${steps.classify.output}")
    result = (await run(reg, workflow, "a new button")).pop().result
    assert result.status == "succeeded"
    assert result.outputs == {"kind": "feature"}


@pytest.mark.anyio
async def test_a_condition_that_misses_fails_the_step(reg: ab.Registry) -> None:
    workflow = build(
        {"id": "a", "tool": "echo", "inputs": {"value": {}}},
        {"id": "b", "tool": "echo", "when": "${steps.a.output.flag}", "inputs": {"value": 1}},
    )
    result = (await collect(ab.Runtime(reg).stream(workflow))).pop().result
    assert result.status == "failed"
    assert isinstance(result.steps["b"].error, ab.ExpressionError)
    assert "step 'b', when:" in str(result.steps["b"].error)


@pytest.mark.anyio
async def test_when_on_a_run_input_and_fan_out(reg: ab.Registry) -> None:
    workflow = build(
        {
            "id": "each",
            "tool": "echo",
            "when": "${inputs.enabled}",
            "for_each": "${inputs.items}",
            "inputs": {"value": "${item}"},
        },
        inputs=["enabled", "items"],
    )
    runtime = ab.Runtime(reg)
    on = await runtime.run_async(workflow, {"enabled": True, "items": [1, 2]})
    off = await runtime.run_async(workflow, {"enabled": 0, "items": "not a list"})
    assert on.steps["each"].output == [1, 2]
    assert (off.status, off.steps["each"].status) == ("succeeded", "skipped")
