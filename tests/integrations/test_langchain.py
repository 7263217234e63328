"""LangChain runnables and LangGraph graphs as steps, offline (fake chat models)."""

from __future__ import annotations

import json
import threading
from typing import Any, TypedDict

import anyio
import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph

import agentbridge as ab

from ._helpers import loop_id, run

pytestmark = pytest.mark.anyio


def metered_model(*replies: str) -> GenericFakeChatModel:
    """A chat model that answers ``replies`` in turn, reporting 3 + 2 tokens each."""
    return GenericFakeChatModel(
        messages=iter(
            AIMessage(
                content=reply,
                usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
                response_metadata={"model_name": "fake-model"},
            )
            for reply in replies
        )
    )


async def test_a_chain_takes_the_step_s_inputs_as_its_input_dict(reg: ab.Registry) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "reply to {topic} in {tone}")])
    seen: list[Any] = []

    def record(value: Any) -> Any:
        seen.append(value.to_string())
        return value

    from langchain_core.runnables import RunnableLambda

    chain = prompt | RunnableLambda(record) | FakeListChatModel(responses=["ok"])
    reg.register("agent", "chain", chain)
    result = await run(
        reg, [{"id": "c", "agent": "chain", "inputs": {"topic": "tea", "tone": "haiku"}}]
    )
    assert seen == ["Human: reply to tea in haiku"]
    output = result.steps["c"].output
    assert isinstance(output, AIMessage)
    assert output.content == "ok"
    dumped = json.loads(json.dumps(result.to_dict()))["steps"]["c"]["output"]
    assert dumped["content"] == "ok"
    assert dumped["type"] == "ai"


async def test_a_chat_model_takes_the_prompt_and_reports_usage_by_model(
    reg: ab.Registry,
) -> None:
    reg.register("agent", "model", metered_model("first", "second"))
    steps = [
        {"id": "a", "agent": "model", "inputs": {"prompt": "hi"}},
        {"id": "b", "agent": "model", "inputs": {"prompt": "${steps.a.output.content}"}},
    ]
    result = await run(reg, steps)
    assert [result.steps[s].output.content for s in "ab"] == ["first", "second"]
    assert result.steps["a"].usage == {
        "fake-model": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    }
    assert result.to_dict()["steps"]["b"]["usage"]["fake-model"]["total_tokens"] == 5


class State(TypedDict):
    text: str
    words: int


def graph_of(count: Any, seen: dict[str, int] | None = None) -> Any:
    """``shout`` (async, recording its loop in ``seen``), then ``count``."""

    async def shout(state: State) -> dict[str, Any]:
        if seen is not None:
            seen["graph"] = await loop_id()
        return {"text": state["text"].upper()}

    builder = StateGraph(State)
    builder.add_node("shout", shout)
    builder.add_node("count", count)
    builder.add_edge(START, "shout")
    builder.add_edge("shout", "count")
    builder.add_edge("count", END)
    return builder.compile()


async def test_a_compiled_graph_takes_its_state_and_returns_the_final_state(
    reg: ab.Registry,
) -> None:
    def count(state: State) -> dict[str, Any]:
        return {"words": len(state["text"].split())}

    reg.register("agent", "graph", graph_of(count))
    result = await run(
        reg, [{"id": "g", "agent": "graph", "inputs": {"text": "two words", "words": 0}}]
    )
    assert result.steps["g"].output == {"text": "TWO WORDS", "words": 2}
    assert result.steps["g"].usage is None


async def test_a_langchain_tool_is_a_tool_step(reg: ab.Registry) -> None:
    from langchain_core.tools import tool

    @tool
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    reg.register("tool", "add", add)
    result = await run(reg, [{"id": "t", "tool": "add", "inputs": {"a": 2, "b": 3}}])
    assert result.steps["t"].output == 5


async def test_a_sync_graph_node_calling_run_sync_lands_on_another_loop(
    reg: ab.Registry,
) -> None:
    """LangGraph runs a sync node in an asyncio executor thread, which the bridge cannot
    tell from any other thread: ``ab.run_sync`` there uses that thread's own portal."""
    seen: dict[str, int] = {}

    def count(state: State) -> dict[str, Any]:
        seen["node"] = ab.run_sync(loop_id)
        return {"words": 0}

    reg.register("agent", "graph", graph_of(count, seen))
    result = await run(reg, [{"id": "g", "agent": "graph", "inputs": {"text": "x", "words": 0}}])
    assert result.succeeded, result.error
    assert seen["node"] != seen["graph"]


async def test_the_fix_an_async_node_offloading_with_to_thread_comes_back(
    reg: ab.Registry,
) -> None:
    seen: dict[str, int] = {}

    def count_sync(state: State) -> dict[str, Any]:
        seen["node"] = ab.run_sync(loop_id)
        seen["thread"] = threading.get_ident()
        return {"words": len(state["text"].split())}

    async def count(state: State) -> dict[str, Any]:
        return await ab.to_thread(count_sync, state)

    reg.register("agent", "graph", graph_of(count, seen))
    result = await run(
        reg, [{"id": "g", "agent": "graph", "inputs": {"text": "a b c", "words": 0}}]
    )
    assert result.steps["g"].output == {"text": "A B C", "words": 3}
    assert seen["node"] == seen["graph"]
    assert seen["thread"] != threading.get_ident()


async def test_a_graph_runs_on_the_portal_loop_on_trio_and_on_the_run_s_loop_otherwise(
    reg: ab.Registry, anyio_backend_name: str
) -> None:
    seen: dict[str, int] = {}

    async def count(state: State) -> dict[str, Any]:
        return {"words": 1}

    reg.register("agent", "graph", graph_of(count, seen))
    result = await run(reg, [{"id": "g", "agent": "graph", "inputs": {"text": "x", "words": 0}}])
    assert result.succeeded, result.error
    if anyio_backend_name == "asyncio":
        assert seen["graph"] == await loop_id()
    else:
        portal = ab.get_portal_manager().portal("asyncio")
        assert seen["graph"] == await anyio.to_thread.run_sync(portal.call, loop_id)
