"""Agent frameworks as workflow steps: pydantic-ai, LangChain/LangGraph, OpenAI Agents.

An ``agent:`` or ``tool:`` step may name (through the registry like any target) a
pydantic-ai ``Agent``, a LangChain ``Runnable`` (a LangGraph compiled graph is one) or an
OpenAI Agents SDK ``Agent``. The runtime turns it into an async callable with
:func:`adapt`: the step's inputs become the framework's natural input, its output is the
framework's output, and the usage it reports lands in the step result
(:attr:`~agentbridge.StepResult.usage`).

A framework is recognised by the classes of the target's type, by module and name, so
nothing here imports a framework: the module of a framework is imported only when one
of its objects is adapted, and it was imported already, since that object exists. All
three frameworks run on asyncio only: on a trio run, the step runs on the bridge's
asyncio portal of the run's thread (see the integrations guide).
"""

from __future__ import annotations

from ._adapt import adapt
from ._detect import framework_of
from ._output import StepOutput

__all__ = ("StepOutput", "adapt", "framework_of")
