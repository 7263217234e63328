"""The workflow model: steps, inputs, outputs and ``${...}`` expressions, read from YAML
or built in Python, and the registries that name what steps call.

Nothing in this package runs a workflow; :mod:`agentbridge.runtime` does. Building a
model validates its structure, and nothing a workflow names is imported unless the
caller allows it.

The runtime reads the model through these names only: the compiled expressions of a
step and of a workflow's outputs are evaluated by :meth:`Step.evaluate_inputs` and
:meth:`Workflow.evaluate_outputs`, and steps' targets are resolved by
:func:`resolve_targets` (and the exception types of ``retry_on:`` by
:func:`resolve_retry_on`), with options checked by :func:`check_registry` and
:func:`check_allow_imports`.
"""

from __future__ import annotations

from ._inputs_file import read_inputs_file
from ._limits import LoadLimits
from ._model import InputSpec, Step, StepKind, Workflow
from ._registry import (
    Registry,
    agent,
    check_allow_imports,
    check_registry,
    function,
    get_default_registry,
    resolve_retry_on,
    resolve_targets,
    tool,
)

__all__ = (
    "InputSpec",
    "LoadLimits",
    "Registry",
    "Step",
    "StepKind",
    "Workflow",
    "agent",
    "check_allow_imports",
    "check_registry",
    "function",
    "get_default_registry",
    "read_inputs_file",
    "resolve_retry_on",
    "resolve_targets",
    "tool",
)
