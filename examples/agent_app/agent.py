"""The agent, its sync tool, and the registry the workflow resolves through."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sniffio
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import agentbridge as ab

from . import stock

__all__ = ("StockAnswer", "current_loop", "registry", "stock_agent")


class StockAnswer(BaseModel):
    """The agent's answer: a pydantic model, so ``to_dict()`` gives its JSON dump."""

    item: str
    in_stock: int
    #: The loop the tool's HTTP request ran on: the run's loop.
    checked_on: str


async def current_loop() -> str:
    """Name the loop running this coroutine: ``asyncio:<id>`` or ``trio:<id>``."""
    if sniffio.current_async_library() == "trio":
        import trio

        return f"trio:{id(trio.lowlevel.current_trio_token()):x}"
    return f"asyncio:{id(asyncio.get_running_loop()):x}"


async def fetch_stock(item: str) -> dict[str, Any]:
    """Ask the stock service, with an async HTTP client, where this loop is."""
    async with httpx.AsyncClient(base_url=stock.url(), trust_env=False) as client:
        response = await client.get(f"/stock/{item}")
    return {**response.json(), "loop": await current_loop()}


def stock_level(item: str) -> dict[str, Any]:
    """How many of ``item`` are in stock.

    Sync code, as a tool often is: pydantic-ai runs it in a worker thread, and
    ``ab.run_sync`` takes the async request back to the loop the agent runs on.
    """
    return ab.run_sync(fetch_stock, item)


def _model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """An offline model: call ``stock_level`` for the prompt, then answer from it."""
    parts = [part for message in messages for part in message.parts]
    returned = [part for part in parts if isinstance(part, ToolReturnPart)]
    if not returned:
        prompt = next(part for part in parts if isinstance(part, UserPromptPart))
        return ModelResponse(parts=[ToolCallPart("stock_level", {"item": str(prompt.content)})])
    level = returned[-1].content
    answer = {"item": level["item"], "in_stock": level["count"], "checked_on": level["loop"]}
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])


stock_agent = Agent(
    FunctionModel(_model), output_type=StockAnswer, tools=[stock_level], name="stock_agent"
)

registry = ab.Registry()
registry.register("agent", "stock_agent", stock_agent)
