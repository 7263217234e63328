"""Step kinds and callables: async functions, sync functions and agent objects."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)


class Summariser:
    """An agent object: its async ``run`` receives the step's inputs as keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def run(self, *, text: str, limit: int) -> str:
        self.calls.append({"text": text, "limit": limit})
        return text[:limit]


@pytest.mark.anyio
async def test_every_kind_of_callable(reg: ab.Registry) -> None:
    agent = Summariser()
    loop_thread = threading.get_ident()

    @reg.tool
    async def fetch(ticket: int) -> dict[str, Any]:
        return {"body": f"ticket {ticket} body"}

    @reg.function
    def count(text: str) -> dict[str, int]:
        return {"length": len(text), "thread": threading.get_ident()}

    @reg.agent
    async def classify(text: str) -> str:
        return "long" if len(text) > 5 else "short"

    reg.register("agent", "summarise", agent)

    @reg.tool
    def sync_tool() -> str:
        return "sync tool"

    @reg.agent
    def sync_agent() -> int:
        return threading.get_ident()

    wf = build(
        {"id": "fetch", "tool": "fetch", "inputs": {"ticket": "${inputs.t}"}},
        {"id": "count", "function": "count", "inputs": {"text": "${steps.fetch.output.body}"}},
        {"id": "classify", "agent": "classify", "inputs": {"text": "${steps.fetch.output.body}"}},
        {
            "id": "summary",
            "agent": "summarise",
            "inputs": {"text": "${steps.fetch.output.body}", "limit": 6},
        },
        {"id": "plain", "tool": "sync_tool"},
        {"id": "blocking_agent", "agent": "sync_agent"},
        inputs=["t"],
    )
    result = await ab.run_workflow_async(wf, {"t": 7}, registry=reg)

    assert result.status == "succeeded"
    assert result.steps["fetch"].output == {"body": "ticket 7 body"}
    assert result.steps["count"].output["length"] == len("ticket 7 body")
    assert result.steps["count"].output["thread"] != loop_thread
    assert result.steps["classify"].output == "long"
    assert result.steps["summary"].output == "ticket"
    assert agent.calls == [{"text": "ticket 7 body", "limit": 6}]
    assert result.steps["plain"].output == "sync tool"
    assert result.steps["blocking_agent"].output != loop_thread

    kinds = {step_id: step.kind for step_id, step in result.steps.items()}
    assert kinds == {
        "fetch": "tool",
        "count": "function",
        "classify": "agent",
        "summary": "agent",
        "plain": "tool",
        "blocking_agent": "agent",
    }


@pytest.mark.anyio
async def test_kind_is_recorded_in_events(reg: ab.Registry) -> None:
    reg.register("agent", "summarise", Summariser())

    @reg.tool
    async def fetch() -> str:
        return "body text"

    @reg.function
    def store(text: str) -> None:
        return None

    wf = build(
        {"id": "fetch", "tool": "fetch"},
        {
            "id": "summary",
            "agent": "summarise",
            "inputs": {"text": "${steps.fetch.output}", "limit": 4},
        },
        {"id": "store", "function": "store", "inputs": {"text": "${steps.summary.output}"}},
    )
    events = await collect(ab.Runtime(reg).stream(wf))
    expected = {"fetch": "tool", "summary": "agent", "store": "function"}
    started = {e.step_id: e.kind for e in events if isinstance(e, ab.StepStarted)}
    finished = {e.step_id: e.kind for e in events if isinstance(e, ab.StepFinished)}
    assert started == expected
    assert finished == expected
    for event in events:
        if isinstance(event, ab.StepFinished):
            assert event.result.kind == event.kind


@pytest.mark.anyio
async def test_callables_given_directly_need_no_registry() -> None:
    seen: list[str] = []

    async def first() -> int:
        return 20

    def second(n: int) -> int:
        seen.append("second")
        return n + 1

    agent = Summariser()
    wf = build(
        {"id": "a", "tool": first},
        {"id": "b", "function": second, "inputs": {"n": "${steps.a.output}"}},
        {"id": "c", "agent": agent, "inputs": {"text": "abcdef", "limit": 2}},
    )
    result = await ab.run_workflow_async(wf, registry=ab.Registry())
    assert result.steps["b"].output == 21
    assert result.steps["c"].output == "ab"
    assert seen == ["second"]
    assert result.steps["c"].kind == "agent"


def test_sync_entry_point_runs_every_kind() -> None:
    agent = Summariser()

    def blocking(x: int) -> int:
        return x * 3

    async def nonblocking(x: int) -> int:
        return x + 1

    wf = build(
        {"id": "a", "function": blocking, "inputs": {"x": 2}},
        {"id": "b", "tool": nonblocking, "inputs": {"x": "${steps.a.output}"}},
        {"id": "c", "agent": agent, "inputs": {"text": "n=${steps.b.output}!", "limit": 3}},
    )
    result = ab.run_workflow(wf)
    assert result.outputs == {"a": 6, "b": 7, "c": "n=7"}
    assert agent.calls == [{"text": "n=7!", "limit": 3}]


def test_a_step_gets_only_its_declared_inputs() -> None:
    def exact(*, a: int) -> int:
        return a

    wf = build(
        {"id": "e", "function": exact, "inputs": {"a": 1}}, inputs={"unused": {"default": 0}}
    )
    assert ab.run_workflow(wf).outputs == {"e": 1}
