"""What the integration tests share: which loop is running, and how to run a workflow."""

from __future__ import annotations

import asyncio
from typing import Any

import sniffio

import agentbridge as ab


async def loop_id() -> int:
    """The identity of the loop running this coroutine (asyncio's loop or trio's token)."""
    if sniffio.current_async_library() == "asyncio":
        return id(asyncio.get_running_loop())
    import trio

    return id(trio.lowlevel.current_trio_token())


async def run(
    registry: ab.Registry, steps: list[dict[str, Any]], inputs: dict[str, Any] | None = None
) -> ab.WorkflowResult:
    """Run a workflow of ``steps`` (declaring ``inputs``) on the calling task's loop."""
    workflow = {"name": "w", "inputs": list(inputs or {}), "steps": steps}
    return await ab.run_workflow_async(workflow, inputs, registry=registry)
