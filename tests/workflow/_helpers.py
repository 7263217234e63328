"""Small building blocks shared by the workflow model tests (and the runtime tests)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import agentbridge as ab

__all__ = ("build", "shape", "yaml_workflow")


def build(
    *steps: Mapping[str, Any],
    name: str = "t",
    inputs: object = None,
    outputs: Mapping[str, Any] | None = None,
) -> ab.Workflow:
    """A workflow built from Python, like ``from_dict`` would receive it."""
    data: dict[str, Any] = {"name": name, "steps": [dict(step) for step in steps]}
    if inputs is not None:
        data["inputs"] = inputs
    if outputs is not None:
        data["outputs"] = dict(outputs)
    return ab.Workflow.from_dict(data)


def yaml_workflow(text: str) -> ab.Workflow:
    """A workflow from an indented YAML literal."""
    return ab.Workflow.from_yaml_string(textwrap.dedent(text))


def shape(workflow: ab.Workflow) -> tuple[object, ...]:
    """Everything a workflow means, without where it was read from (source, lines)."""
    steps = tuple(
        (
            step.id,
            step.kind,
            step.target,
            dict(step.inputs),
            step.depends_on,
            step.timeout,
            step.retries,
            step.retry_delay,
        )
        for step in workflow.steps
    )
    return workflow.name, dict(workflow.inputs), steps, dict(workflow.outputs)
