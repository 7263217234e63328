"""Results: outputs, per-step records, and JSON-ready dictionaries."""

from __future__ import annotations

import datetime
import json
from typing import Any

import anyio
import pytest

import agentbridge as ab

from ._helpers import build

pytestmark = pytest.mark.timeout(30)


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


@pytest.fixture
def steps(reg: ab.Registry) -> ab.Registry:
    @reg.tool
    async def fetch() -> dict[str, Any]:
        return {"body": "text", "pair": (1, 2)}

    @reg.function
    def measure(text: str) -> int:
        return len(text)

    @reg.function
    async def opaque() -> Opaque:
        return Opaque()

    @reg.function
    async def broken() -> None:
        raise ValueError("it broke")

    return reg


def test_declared_outputs_only(steps: ab.Registry) -> None:
    wf = build(
        {"id": "fetch", "tool": "fetch"},
        {"id": "measure", "function": "measure", "inputs": {"text": "${steps.fetch.output.body}"}},
        outputs={"length": "${steps.measure.output}"},
    )
    result = ab.run_workflow(wf, registry=steps)
    assert result.outputs == {"length": 4}
    assert isinstance(result.outputs, dict)


def test_every_step_output_when_none_are_declared(steps: ab.Registry) -> None:
    wf = build(
        {"id": "fetch", "tool": "fetch"},
        {"id": "measure", "function": "measure", "inputs": {"text": "${steps.fetch.output.body}"}},
    )
    result = ab.run_workflow(wf, registry=steps)
    assert result.outputs == {"fetch": {"body": "text", "pair": (1, 2)}, "measure": 4}


def test_workflow_and_step_results(steps: ab.Registry) -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    wf = build(
        {"id": "fetch", "tool": "fetch"},
        {"id": "measure", "function": "measure", "inputs": {"text": "${steps.fetch.output.body}"}},
        name="measuring",
    )
    result = ab.run_workflow(wf, registry=steps)
    after = datetime.datetime.now(datetime.timezone.utc)

    assert isinstance(result, ab.WorkflowResult)
    assert result.workflow == "measuring"
    assert result.status == "succeeded"
    assert result.error is None
    assert result.started_at.tzinfo is not None
    assert result.started_at.utcoffset() == datetime.timedelta(0)
    assert before <= result.started_at <= after
    assert result.duration >= 0
    assert set(result.steps) == {"fetch", "measure"}

    for step_id, kind in (("fetch", "tool"), ("measure", "function")):
        step = result.steps[step_id]
        assert isinstance(step, ab.StepResult)
        assert step.step_id == step_id
        assert step.kind == kind
        assert step.status == ab.StepStatus.SUCCEEDED
        assert step.status == "succeeded"
        assert step.attempts == 1
        assert step.error is None
        assert isinstance(step.started_at, datetime.datetime)
        assert step.started_at.utcoffset() == datetime.timedelta(0)
        assert result.started_at <= step.started_at <= after
        assert step.duration is not None
        assert step.duration >= 0
    assert result.steps["measure"].output == 4
    assert result.steps["fetch"].started_at <= result.steps["measure"].started_at


def test_step_status_values() -> None:
    assert issubclass(ab.StepStatus, str)
    assert {status.value for status in ab.StepStatus} == {
        "succeeded",
        "failed",
        "cancelled",
        "timed_out",
        "skipped",
    }


def test_to_dict_round_trips_through_json(steps: ab.Registry) -> None:
    wf = build(
        {"id": "fetch", "tool": "fetch"},
        {"id": "opaque", "function": "opaque"},
        name="dumping",
    )
    result = ab.run_workflow(wf, registry=steps)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data

    assert data["workflow"] == "dumping"
    assert data["status"] == "succeeded"
    assert isinstance(data["duration"], float | int)
    assert datetime.datetime.fromisoformat(data["started_at"]) == result.started_at
    assert data["outputs"]["fetch"] == {"body": "text", "pair": [1, 2]}
    assert data["outputs"]["opaque"] == "<Opaque thing>"

    fetch = data["steps"]["fetch"]
    assert fetch["kind"] == "tool"
    assert fetch["status"] == "succeeded"
    assert fetch["attempts"] == 1
    assert fetch["output"] == {"body": "text", "pair": [1, 2]}
    assert fetch["error"] is None
    assert datetime.datetime.fromisoformat(fetch["started_at"]) == result.steps["fetch"].started_at
    assert fetch["duration"] >= 0
    assert data["steps"]["opaque"]["output"] == "<Opaque thing>"
    assert result.steps["fetch"].to_dict()["output"] == fetch["output"]


def test_to_dict_of_a_failed_run(steps: ab.Registry) -> None:
    wf = build(
        {"id": "broken", "function": "broken"},
        {"id": "after", "function": "measure", "inputs": {"text": "${steps.broken.output}"}},
    )
    with pytest.raises(ab.StepFailedError) as caught:
        ab.run_workflow(wf, registry=steps)
    data = caught.value.result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == "failed"
    assert data["steps"]["broken"]["status"] == "failed"
    assert data["steps"]["broken"]["error"] == {"type": "ValueError", "message": "it broke"}
    skipped = data["steps"]["after"]
    assert skipped["status"] == "skipped"
    assert skipped["started_at"] is None
    assert skipped["error"] is None


@pytest.mark.anyio
async def test_a_timed_out_step_in_to_dict(reg: ab.Registry) -> None:
    @reg.function
    async def hang() -> None:
        await anyio.sleep_forever()

    with pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(
            build({"id": "hang", "function": "hang", "timeout": 0.01}), registry=reg
        )
    data = caught.value.result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["steps"]["hang"]["status"] == "timed_out"
    assert data["steps"]["hang"]["error"]["type"] == "StepTimeoutError"


def test_outputs_serialise_by_the_documented_rules() -> None:
    import dataclasses
    import enum

    import pydantic

    from agentbridge.runtime._results import jsonable

    class Colour(enum.Enum):
        RED = "red"

    class Model(pydantic.BaseModel):
        when: datetime.date
        colour: Colour
        _secret: str = pydantic.PrivateAttr(default="hidden")

    @dataclasses.dataclass
    class Run:
        output: Model
        tags: frozenset[str]
        _state: list[str]

    cycle: list[Any] = [1]
    cycle.append(cycle)
    run = Run(Model(when=datetime.date(2026, 12, 1), colour=Colour.RED), frozenset({"a"}), ["x"])
    assert jsonable(run) == {"output": {"when": "2026-12-01", "colour": "red"}, "tags": ["a"]}
    assert jsonable({1: Opaque(), "t": datetime.time(12, 30)}) == {
        "1": "<Opaque thing>",
        "t": "12:30:00",
    }
    assert jsonable(cycle) == [1, "[1, [...]]"]
    shared = [1]
    assert jsonable([shared, shared]) == [[1], [1]]  # repeated, not recursive: kept


def test_a_step_s_usage_is_in_its_result_and_its_dict(reg: ab.Registry) -> None:
    from agentbridge.integrations import StepOutput

    @reg.agent
    async def counted(text: str) -> StepOutput:
        return StepOutput(text.upper(), usage={"tokens": len(text)})

    result = ab.run_workflow(
        build({"id": "c", "agent": "counted", "inputs": {"text": "ab"}}), registry=reg
    )
    assert result.outputs == {"c": "AB"}
    assert result.steps["c"].usage == {"tokens": 2}
    assert result.to_dict()["steps"]["c"]["usage"] == {"tokens": 2}
