"""pydantic-ai agents as steps: ``Agent.run`` with the step's prompt, on asyncio."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from pydantic_ai.agent import AbstractAgent

from ._asyncio import on_asyncio
from ._naming import named
from ._output import StepOutput

__all__ = ("adapter",)


def adapter(agent: AbstractAgent[Any, Any]) -> Callable[..., Coroutine[Any, Any, StepOutput]]:
    """An async callable running ``agent`` once per call.

    The step's ``prompt`` is the user prompt; ``deps``, ``message_history``,
    ``instructions``, ``model_settings``, ``usage_limits`` and ``metadata`` are passed to
    ``Agent.run`` under their own names. The output is the run's ``output``; the usage
    is its ``RunUsage``.
    """

    async def run_agent(
        prompt: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        message_history: Sequence[Any] | None = None,
        instructions: Any = None,
        model_settings: Mapping[str, Any] | None = None,
        usage_limits: Any = None,
        metadata: Any = None,
    ) -> StepOutput:
        result = await on_asyncio(
            agent.run,
            prompt,
            deps=deps,
            message_history=message_history,
            instructions=instructions,
            model_settings=model_settings,
            usage_limits=usage_limits,
            metadata=metadata,
        )
        return StepOutput(result.output, usage=result.usage)

    return named(run_agent, agent, getattr(agent, "name", None))
