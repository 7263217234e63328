"""OpenAI Agents SDK agents as steps, offline (a custom Model), on every backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, ModelResponse, Usage, set_tracing_disabled
from agents.models.interface import Model
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

import agentbridge as ab

from ._helpers import run

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_tracing() -> Iterator[None]:
    """The SDK exports traces to OpenAI by default: offline tests turn that off."""
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


class Echo(Model):
    """A model that answers ``echo: <the last input>``, counting 3 + 2 tokens."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def get_response(  # type: ignore[override]
        self, system_instructions: str | None, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        self.seen.append(input)
        text = input if isinstance(input, str) else input[-1]["content"]
        message = ResponseOutputMessage(
            id="m",
            content=[ResponseOutputText(text=f"echo: {text}", type="output_text", annotations=[])],
            role="assistant",
            status="completed",
            type="message",
        )
        usage = Usage(requests=1, input_tokens=3, output_tokens=2, total_tokens=5)
        return ModelResponse(output=[message], usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def test_the_prompt_goes_in_and_the_final_output_comes_out_with_usage(
    reg: ab.Registry,
) -> None:
    model = Echo()
    reg.register("agent", "echo", Agent(name="echo", model=model))
    result = await run(
        reg, [{"id": "a", "agent": "echo", "inputs": {"prompt": "${inputs.q}"}}], {"q": "hi"}
    )
    step = result.steps["a"]
    assert step.output == "echo: hi"
    assert step.usage.total_tokens == 5
    assert step.usage.requests == 1
    dumped = json.loads(json.dumps(result.to_dict()))["steps"]["a"]
    assert dumped["output"] == "echo: hi"
    assert dumped["usage"]["input_tokens"] == 3


async def test_max_turns_and_context_reach_the_runner(reg: ab.Registry) -> None:
    reg.register("agent", "echo", Agent(name="echo", model=Echo()))
    steps = [{"id": "a", "agent": "echo", "inputs": {"prompt": "x", "max_turns": 0, "context": {}}}]
    with pytest.raises(ab.StepFailedError, match="MaxTurnsExceeded"):
        await run(reg, steps)
