"""OpenAI Agents SDK agents as steps: ``Runner.run`` with the step's prompt."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from agents import Agent, Runner

from ._asyncio import on_asyncio
from ._naming import named
from ._output import StepOutput

__all__ = ("adapter",)

# Runner.run's own default, kept here so a step that gives none behaves the same.
_MAX_TURNS = 10


def adapter(agent: Agent[Any]) -> Callable[..., Coroutine[Any, Any, StepOutput]]:
    """An async callable running ``agent`` through ``Runner.run`` once per call.

    The step's ``prompt`` is the input (a string or a list of input items);
    ``context``, ``max_turns``, ``previous_response_id`` and ``conversation_id`` are
    passed under their own names. The output is the run's ``final_output``; the usage is
    its context's ``Usage``.
    """

    async def run_agent(
        prompt: Any,
        *,
        context: Any = None,
        max_turns: int = _MAX_TURNS,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
    ) -> StepOutput:
        result = await on_asyncio(
            Runner.run,
            agent,
            prompt,
            context=context,
            max_turns=max_turns,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
        )
        return StepOutput(result.final_output, usage=result.context_wrapper.usage)

    return named(run_agent, agent, agent.name)
