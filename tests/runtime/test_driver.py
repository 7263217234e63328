"""The driver on its own: a run seeded with outcomes recorded elsewhere, and a given run id."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import agentbridge as ab
from agentbridge.runtime._driver import execute
from agentbridge.runtime._options import RunOptions
from agentbridge.runtime._plan import Plan

from ._helpers import build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

RECORDED = ab.StepResult(
    "fetch",
    "tool",
    ab.StepStatus.SUCCEEDED,
    {"body": "recorded"},
    1,
    datetime.datetime(2026, 1, 5, tzinfo=datetime.timezone.utc),
    0.5,
)


def chain(called: list[str]) -> Plan:
    async def fetch() -> dict[str, Any]:
        called.append("fetch")
        return {"body": "fresh"}

    def measure(text: str) -> int:
        called.append("measure")
        return len(text)

    workflow = build(
        {"id": "fetch", "tool": "fetch"},
        {"id": "measure", "function": "measure", "inputs": {"text": "${steps.fetch.output.body}"}},
        outputs={"length": "${steps.measure.output}", "body": "${steps.fetch.output.body}"},
    )
    return Plan(workflow, {"fetch": fetch, "measure": measure})


async def test_a_seeded_step_is_not_run_and_its_output_feeds_its_dependents() -> None:
    called: list[str] = []
    events: list[ab.Event] = []
    result = await execute(
        chain(called), {}, RunOptions(), emit=events.append, seed={"fetch": RECORDED}
    )
    assert called == ["measure"]
    assert result.status is ab.RunStatus.SUCCEEDED
    assert result.outputs == {"length": len("recorded"), "body": "recorded"}
    assert result.steps["fetch"] is RECORDED
    assert [e.step_id for e in events if isinstance(e, ab.StepStarted)] == ["measure"]


async def test_a_run_seeded_with_every_step_runs_nothing() -> None:
    called: list[str] = []
    measured = ab.StepResult("measure", "function", ab.StepStatus.SUCCEEDED, 3, 1)
    result = await execute(
        chain(called), {}, RunOptions(), seed={"fetch": RECORDED, "measure": measured}
    )
    assert called == []
    assert result.status is ab.RunStatus.SUCCEEDED
    assert result.outputs == {"length": 3, "body": "recorded"}


async def test_a_given_run_id_is_on_the_result_and_every_event() -> None:
    events: list[ab.Event] = []
    result = await execute(chain([]), {}, RunOptions(), emit=events.append, run_id="run-7")
    assert result.run_id == "run-7"
    assert len(events) == 6
    assert {event.run_id for event in events} == {"run-7"}
