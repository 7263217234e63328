"""LangChain runnables (LangGraph compiled graphs among them) as steps: ``ainvoke``.

A chat or language model takes the step's ``prompt`` (a string or a list of messages);
every other runnable takes the step's inputs as its input dict, which is a graph's
state. Usage is collected from every model call inside the run, by model name.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import Runnable, RunnableConfig

from ._asyncio import on_asyncio
from ._naming import named
from ._output import StepOutput

__all__ = ("adapter",)


def adapter(runnable: Runnable[Any, Any]) -> Callable[..., Coroutine[Any, Any, StepOutput]]:
    """An async callable running ``runnable.ainvoke`` once per call."""
    name = getattr(runnable, "name", None)
    if isinstance(runnable, BaseLanguageModel):

        async def run_model(prompt: Any) -> StepOutput:
            return await _invoke(runnable, prompt)

        return named(run_model, runnable, name)

    async def run_runnable(**inputs: Any) -> StepOutput:
        return await _invoke(runnable, inputs)

    return named(run_runnable, runnable, name)


async def _invoke(runnable: Runnable[Any, Any], value: Any) -> StepOutput:
    usage = UsageMetadataCallbackHandler()
    config: RunnableConfig = {"callbacks": [usage]}
    output = await on_asyncio(runnable.ainvoke, value, config)
    return StepOutput(output, usage=dict(usage.usage_metadata) or None)
