"""The agent workflow behind FastAPI: a ``def`` route and an ``async def`` route.

From the ``examples/`` directory::

    uvicorn agent_app.server:app

then ``curl localhost:8000/def/widget`` or ``curl localhost:8000/async/widget``. Both
run the agent on the server's own loop: the ``def`` route runs in a worker thread and
``run_workflow`` goes back to that loop; the ``async def`` route awaits
``run_workflow_async`` there. The tool's ``ab.run_sync`` comes back to it too, so its
answer's ``checked_on`` is the server's loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

import agentbridge as ab

from .agent import current_loop, registry

WORKFLOW = ab.Workflow.from_yaml(Path(__file__).with_name("workflow.yaml"))

app = FastAPI(title="agentbridge agent app")


@app.get("/health")
async def health() -> dict[str, Any]:
    """The server's loop, for comparison with where the tool ran."""
    return {"loop": await current_loop()}


@app.get("/def/{item}")
def answer_sync(item: str) -> dict[str, Any]:
    """A ``def`` route: Starlette's worker thread, the sync API."""
    return ab.run_workflow(WORKFLOW, {"item": item}, registry=registry).to_dict()


@app.get("/async/{item}")
async def answer_async(item: str) -> dict[str, Any]:
    """An ``async def`` route: the async API, on the server's loop."""
    result = await ab.run_workflow_async(WORKFLOW, {"item": item}, registry=registry)
    return result.to_dict()
