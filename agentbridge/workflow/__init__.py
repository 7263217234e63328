"""The workflow model: steps, inputs, outputs and ``${...}`` expressions, read from YAML
or built in Python, and the registries that name what steps call.

Nothing in this package runs a workflow; :mod:`agentbridge.runtime` does. Building a
model validates its structure, and nothing a workflow names is imported unless the
caller allows it.
"""

from __future__ import annotations

from ._limits import LoadLimits
from ._model import InputSpec, Step, StepKind, Workflow
from ._registry import Registry, agent, function, get_default_registry, tool

__all__ = (
    "InputSpec",
    "LoadLimits",
    "Registry",
    "Step",
    "StepKind",
    "Workflow",
    "agent",
    "function",
    "get_default_registry",
    "tool",
)
