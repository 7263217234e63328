"""pydantic-ai agents as steps, offline (TestModel, FunctionModel), on every backend."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import pytest
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

import agentbridge as ab

from ._helpers import loop_id, run

pytestmark = pytest.mark.anyio


def _last_prompt(messages: list[ModelMessage]) -> str:
    parts = [part for message in messages for part in message.parts]
    prompts = [part.content for part in parts if isinstance(part, UserPromptPart)]
    return str(prompts[-1])


def echo_agent() -> Agent[None, str]:
    """An agent whose model answers ``echo: <the prompt>``."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart(f"echo: {_last_prompt(messages)}")])

    return Agent(FunctionModel(respond), name="echo")


async def test_the_prompt_goes_in_and_the_output_comes_out_with_its_usage(
    reg: ab.Registry,
) -> None:
    reg.register("agent", "echo", echo_agent())
    result = await run(
        reg, [{"id": "ask", "agent": "echo", "inputs": {"prompt": "${inputs.q}"}}], {"q": "hi"}
    )
    step = result.steps["ask"]
    assert step.output == "echo: hi"
    assert result.outputs == {"ask": "echo: hi"}
    assert step.usage.requests == 1
    assert step.usage.input_tokens > 0
    dumped = json.loads(json.dumps(result.to_dict()))["steps"]["ask"]
    assert dumped["output"] == "echo: hi"
    assert dumped["usage"]["requests"] == 1


async def test_a_for_each_agent_step_reports_each_item_s_usage_in_item_order(
    reg: ab.Registry,
) -> None:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = _last_prompt(messages)
        if prompt == "boom":
            raise ValueError("the model broke")
        return ModelResponse(parts=[TextPart(" ".join([prompt] * len(prompt)))])  # n words

    reg.register("agent", "echo", Agent(FunctionModel(respond)))
    step = {"id": "ask", "agent": "echo", "for_each": "${inputs.qs}", "max_concurrency": 1}
    step["inputs"] = {"prompt": "${item}"}
    result = await run(reg, [step], {"qs": ["a", "bbbb"]})
    ask = result.steps["ask"]
    assert ask.output == ["a", "bbbb bbbb bbbb bbbb"]
    assert [usage.requests for usage in ask.usage] == [1, 1]
    first, second = ask.usage
    assert second.output_tokens > first.output_tokens  # each item's own, in item order
    dumped = json.loads(json.dumps(result.to_dict()))["steps"]["ask"]["usage"]
    assert [usage["output_tokens"] for usage in dumped] == [u.output_tokens for u in ask.usage]

    # A failing item ends the step: the usage of the items that finished is kept.
    with pytest.raises(ab.StepFailedError) as caught:
        await run(reg, [step], {"qs": ["a", "boom", "c"]})
    failed = caught.value.result.steps["ask"]
    assert failed.item == 1
    assert failed.usage[0].requests == 1
    assert failed.usage[1:] == [None, None]


async def test_deps_reach_the_agent_s_tools(reg: ab.Registry) -> None:
    agent = Agent(TestModel(call_tools=["lookup"]), deps_type=dict)

    @agent.tool
    def lookup(ctx: RunContext[dict[str, str]], key: str) -> str:
        return str(ctx.deps[key])

    reg.register("agent", "looker", agent)
    result = await run(
        reg, [{"id": "a", "agent": "looker", "inputs": {"prompt": "x", "deps": {"a": "found"}}}]
    )
    assert "found" in result.steps["a"].output


async def test_a_sync_tool_calling_run_sync_comes_back_to_the_agent_s_loop(
    reg: ab.Registry, anyio_backend_name: str
) -> None:
    seen: dict[str, Any] = {}

    def where(n: int) -> int:
        seen["thread"] = threading.get_ident()
        seen["loop"] = ab.run_sync(loop_id)
        return n

    reg.register("agent", "agent", Agent(TestModel(), tools=[where]))
    result = await run(reg, [{"id": "a", "agent": "agent", "inputs": {"prompt": "go"}}])
    assert result.succeeded, result.error
    assert seen["thread"] != threading.get_ident()  # the tool ran in a worker thread
    if anyio_backend_name == "asyncio":
        assert seen["loop"] == await loop_id()  # the run's own loop
    else:
        # On trio the agent runs on this thread's asyncio portal, and so does the call.
        portal = ab.get_portal_manager().portal("asyncio")
        assert seen["loop"] == await anyio.to_thread.run_sync(portal.call, loop_id)
        assert seen["loop"] != await loop_id()


async def test_two_agent_steps_of_one_run_share_one_asyncio_loop(reg: ab.Registry) -> None:
    loops: list[int] = []

    def where(n: int) -> int:
        loops.append(ab.run_sync(loop_id))
        return n

    reg.register("agent", "agent", Agent(TestModel(), tools=[where]))
    steps = [
        {"id": "a", "agent": "agent", "inputs": {"prompt": "go"}},
        {"id": "b", "agent": "agent", "inputs": {"prompt": "${steps.a.output}"}},
    ]
    assert (await run(reg, steps)).succeeded
    assert len(loops) == 2
    assert loops[0] == loops[1]


async def test_a_cancelled_agent_step_has_finished_its_cleanup_when_the_run_ends(
    reg: ab.Registry,
) -> None:
    started, cleaned = threading.Event(), threading.Event()

    async def stall(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()
        raise AssertionError("unreachable")

    async def fail_once_started() -> None:
        assert await anyio.to_thread.run_sync(started.wait, 10)
        raise RuntimeError("stop the run")

    reg.register("agent", "stall", Agent(FunctionModel(function=stall)))
    reg.register("function", "fail", fail_once_started)
    workflow = {
        "name": "w",
        "steps": [
            {"id": "a", "agent": "stall", "inputs": {"prompt": "x"}},
            {"id": "b", "function": "fail"},
        ],
    }
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(workflow, registry=reg)
    assert caught.value.step_id == "b"
    assert caught.value.result.steps["a"].status is ab.StepStatus.CANCELLED
    assert cleaned.is_set()


def test_a_run_result_given_by_a_plain_step_leaks_no_private_state(reg: ab.Registry) -> None:
    agent = echo_agent()

    # What users wrote before agents could be steps. (Not agent.run_sync: it leaves an
    # event loop of its own unclosed in the step's worker thread.)
    def glue(prompt: str) -> Any:
        return ab.run_sync(agent.run, prompt)

    reg.register("function", "glue", glue)
    result = ab.run_workflow(
        {"name": "w", "steps": [{"id": "g", "function": "glue", "inputs": {"prompt": "hi"}}]},
        registry=reg,
    )
    output = result.to_dict()["steps"]["g"]["output"]
    assert output["output"] == "echo: hi"
    assert not [key for key in output if key.startswith("_")]
    assert "_state" not in json.dumps(result.to_dict())


async def test_an_agent_given_as_the_step_s_target_runs_without_a_registry() -> None:
    step = ab.Step("ask", "agent", echo_agent(), inputs={"prompt": "direct"})
    result = await ab.run_workflow_async(ab.Workflow("w", (step,)))
    assert result.outputs == {"ask": "echo: direct"}
