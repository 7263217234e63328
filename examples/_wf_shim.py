"""TEMPORARY stand-in for the workflow runtime (issue #3) until ``ab.run_workflow`` exists.

It only fills in the names ``agentbridge`` does not have yet, and supports just what the
host examples use: steps without dependencies (run concurrently) whose inputs are
literals or ``${inputs.NAME}``. Delete this file, and its import in ``host_steps.py``,
once the runtime is exported from ``agentbridge``.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import anyio

import agentbridge as ab


class Registry:
    """Names to callables, registered with ``@registry.agent(name)`` and friends."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def _register(self, name: str | None = None) -> Any:
        def decorate(fn: Any) -> Any:
            self.items[name or fn.__name__] = fn
            return fn

        return decorate

    agent = function = tool = _register


class Workflow(dict):  # type: ignore[type-arg]
    """A workflow mapping."""

    @classmethod
    def from_dict(cls, mapping: Any) -> Workflow:
        """Wrap ``mapping``."""
        return cls(mapping)


class StepFailedError(Exception):
    """A step raised; the step's exception is the cause."""

    def __init__(self, step_id: str) -> None:
        super().__init__(f"step {step_id} failed")
        self.step_id = step_id


class Result:
    """The outputs of every step, by step id."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs
        self.status = "succeeded"


async def _run_step(step: dict[str, Any], inputs: Any, registry: Any, out: dict[str, Any]) -> None:
    kind = next(k for k in ("agent", "function", "tool") if k in step)
    fn = registry.items[step[kind]]
    kwargs = {}
    for key, value in step.get("inputs", {}).items():
        match = re.fullmatch(r"\$\{inputs\.(\w+)\}", value)
        kwargs[key] = inputs[match.group(1)] if match else value
    try:
        if inspect.iscoroutinefunction(fn):
            out[step["id"]] = await fn(**kwargs)
        else:
            out[step["id"]] = await ab.to_thread(functools.partial(fn, **kwargs))
    except Exception as exc:
        raise StepFailedError(step["id"]) from exc


async def run_workflow_async(
    workflow: Any, inputs: Any = None, *, registry: Any = None, **_: Any
) -> Result:
    """Run every step concurrently on the caller's loop."""
    outputs: dict[str, Any] = {}
    failed: BaseException | None = None
    try:
        async with anyio.create_task_group() as group:
            for step in workflow["steps"]:
                group.start_soon(_run_step, step, inputs, registry, outputs)
    except Exception as exc:  # an ExceptionGroup of one failed step: re-raise its error
        failed = getattr(exc, "exceptions", [exc])[0]
    if failed is not None:
        raise failed
    return Result(outputs)


def run_workflow(
    workflow: Any, inputs: Any = None, *, registry: Any = None, backend: Any = None
) -> Any:
    """The sync entry point: ``run_workflow_async`` through the bridge."""
    run = functools.partial(run_workflow_async, workflow, inputs, registry=registry)
    return ab.run_sync(run, backend=backend)


for _name in ("Registry", "Workflow", "StepFailedError", "run_workflow", "run_workflow_async"):
    if not hasattr(ab, _name):
        setattr(ab, _name, globals()[_name])
