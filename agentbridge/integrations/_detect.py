"""Which agent framework an object belongs to, decided without importing any framework."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ("Framework", "framework_of")

#: The frameworks whose objects a step may name.
Framework = Literal["pydantic_ai", "langchain", "openai_agents"]

# The base class of each framework's runnable objects, by module and qualified name: a
# type's MRO names them without anything being imported. The adapter module imports
# the framework only then, and it is loaded already: one of its classes exists.
_BASES: Final[dict[tuple[str, str], Framework]] = {
    ("pydantic_ai.agent.abstract", "AbstractAgent"): "pydantic_ai",
    ("langchain_core.runnables.base", "Runnable"): "langchain",
    ("agents.agent", "Agent"): "openai_agents",
}


def framework_of(target: object) -> Framework | None:
    """The framework ``target`` is an agent (or runnable) of, or ``None``.

    ``"pydantic_ai"`` for a pydantic-ai agent, ``"langchain"`` for a LangChain
    ``Runnable`` (chains, chat models, tools, LangGraph compiled graphs),
    ``"openai_agents"`` for an OpenAI Agents SDK ``Agent``. Only the classes of
    ``target``'s type are read: no framework is imported.

    .. versionadded:: 0.2
    """
    if isinstance(target, type):
        return None
    for cls in type(target).__mro__:
        found = _BASES.get((cls.__module__, cls.__qualname__))
        if found is not None:
            return found
    return None
