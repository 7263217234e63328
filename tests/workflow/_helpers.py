"""Small building blocks shared by the workflow tests."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel

import agentbridge as ab

__all__ = ("Rendezvous", "build", "collect", "loop_token", "shape", "yaml_workflow")


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


async def loop_token() -> object:
    """The identity of the running event loop (asyncio loop or trio token)."""
    return anyio.lowlevel.current_token().native_token


async def collect(events: Any) -> list[ab.Event]:
    """Every event of an async event stream."""
    return [event async for event in events]


class Rendezvous:
    """Lets ``parties`` async steps through only once all of them are waiting.

    Steps that the runtime does not run concurrently never all arrive, so the wait is
    bounded: a missing party fails the test instead of hanging it.
    """

    def __init__(self, parties: int, *, timeout: float = 10) -> None:
        self.parties = parties
        self.arrived = 0
        self.timeout = timeout
        self._all_here = anyio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self._all_here.set()
        with anyio.fail_after(self.timeout):
            await self._all_here.wait()
