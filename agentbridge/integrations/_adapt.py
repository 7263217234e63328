"""The one entry point from a step's target to the async callable that runs it."""

from __future__ import annotations

from typing import Any

from ._detect import framework_of

__all__ = ("adapt",)


def adapt(target: Any) -> Any:
    """The async callable that runs ``target`` as a step, for an agent (or runnable) of a
    supported framework; any other target as it is.

    Each framework's adapter module is imported here, and only for an object of that
    framework (so the framework itself is imported already). The callable takes the
    step's inputs as keyword arguments and returns a :class:`StepOutput`; its signature
    names the inputs the framework takes (see the integrations guide).

    .. versionadded:: 0.2
    """
    framework = framework_of(target)
    if framework == "pydantic_ai":
        from ._pydantic_ai import adapter as pydantic_ai_adapter

        return pydantic_ai_adapter(target)
    if framework == "langchain":
        from ._langchain import adapter as langchain_adapter

        return langchain_adapter(target)
    if framework == "openai_agents":
        from ._openai_agents import adapter as openai_agents_adapter

        return openai_agents_adapter(target)
    return target
