"""FastAPI: the three ways a route can run a workflow, and which one to pick.

Run it with any ASGI server, from this directory::

    uvicorn fastapi_app:app                      # asyncio (add --loop uvloop for uvloop)
    hypercorn -k trio fastapi_app:app            # trio
    gunicorn -k uvicorn.workers.UvicornWorker --preload -w 2 fastapi_app:app

then ``curl localhost:8000/async-api/probe?n=3``. The three route styles:

* ``/async-api/{workflow}``: an ``async def`` route awaiting ``run_workflow_async``. The
  workflow's async steps run on the server's own loop. The recommended style.
* ``/sync-api-def/{workflow}``: a plain ``def`` route calling the sync ``run_workflow``.
  Starlette runs it in a worker thread, and the bridge runs the workflow back on the
  server's own loop: the loop keeps serving other requests meanwhile.
* ``/sync-api-async/{workflow}``: an ``async def`` route calling the sync
  ``run_workflow``. It works (the workflow runs on a portal loop in another thread),
  but the server's loop is blocked for the whole call: avoid it for anything slow.

A middleware puts the request's ``x-request-id`` header in a context variable that the
steps read; a failing step becomes a 409 response naming the step's exception type.
``?timeout=SECONDS`` bounds a run; one that outlives it becomes a 504 listing its steps'
statuses (``curl 'localhost:8000/async-api/park?timeout=1'``: the step is cancelled).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from host_steps import WORKFLOWS, current_loop, gate, loop_identity, registry, request_id
from starlette.types import ASGIApp, Receive, Scope, Send

import agentbridge as ab


async def load_settings() -> dict[str, Any]:
    """Stand-in for async start-up work, such as fetching configuration."""
    return {"loaded_in_pid": os.getpid(), "loaded_on": await current_loop()}


#: A bridged call made while the module is imported: in a plain process it opens the
#: main thread's portal; under ``gunicorn --preload`` it runs in the master before fork.
SETTINGS = ab.run_sync(load_settings)


class RequestIdMiddleware:
    """Pure ASGI middleware: copies the ``x-request-id`` header into :data:`request_id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            request_id.set(headers.get(b"x-request-id", b"-").decode())
        await self.app(scope, receive, send)


app = FastAPI(title="agentbridge FastAPI example")
app.add_middleware(RequestIdMiddleware)


def _reply(style: str, result: Any) -> dict[str, Any]:
    return {
        "style": style,
        "pid": os.getpid(),
        "route_thread": threading.current_thread().name,
        "outputs": result.outputs,
    }


@app.get("/async-api/{workflow}")
async def async_api(
    workflow: str, n: int = 0, item: str = "", timeout: float | None = None
) -> dict[str, Any]:
    """Recommended: await the async API; steps run on this server's loop."""
    inputs = _inputs(workflow, n, item)
    result = await ab.run_workflow_async(
        WORKFLOWS[workflow], inputs, registry=registry, timeout=timeout
    )
    return _reply("async-api", result)


@app.get("/sync-api-def/{workflow}")
def sync_api_def(
    workflow: str, n: int = 0, item: str = "", timeout: float | None = None
) -> dict[str, Any]:
    """Also fine: a ``def`` route runs in a worker thread; the workflow runs on the loop."""
    inputs = _inputs(workflow, n, item)
    result = ab.run_workflow(WORKFLOWS[workflow], inputs, registry=registry, timeout=timeout)
    return _reply("sync-api-def", result)


@app.get("/sync-api-async/{workflow}")
async def sync_api_async(
    workflow: str, n: int = 0, item: str = "", timeout: float | None = None
) -> dict[str, Any]:
    """Works, but blocks this server's loop until the workflow returns."""
    inputs = _inputs(workflow, n, item)
    result = ab.run_workflow(WORKFLOWS[workflow], inputs, registry=registry, timeout=timeout)
    return _reply("sync-api-async", result)


def _inputs(workflow: str, n: int, item: str) -> dict[str, Any]:
    return {"item": item} if workflow == "fail" else {"n": n}


@app.exception_handler(ab.StepFailedError)
async def step_failed(request: Request, exc: ab.StepFailedError) -> JSONResponse:
    """Turn a failed step into a response that names the step and its exception type."""
    cause = exc.__cause__
    return JSONResponse(
        status_code=409,
        content={"step": exc.step_id, "error": type(cause).__name__, "message": str(cause)},
    )


@app.exception_handler(ab.WorkflowTimeoutError)
async def timed_out(request: Request, exc: ab.WorkflowTimeoutError) -> JSONResponse:
    """A run that outlived its ``timeout=``: its running steps were cancelled."""
    steps = {step_id: step.status for step_id, step in exc.result.steps.items()}
    return JSONResponse(
        status_code=504,
        content={"error": type(exc).__name__, "timeout": exc.timeout, "steps": steps},
    )


@app.get("/health")
async def health() -> dict[str, Any]:
    """Liveness, plus what the tests compare against: this process and its loop."""
    return {"status": "ok", "pid": os.getpid(), "loop": loop_identity(), "settings": SETTINGS}


#: How many ``/gate/open`` requests are waiting for the rest of their body.
_openers = 0


@app.get("/gate")
async def gate_status() -> dict[str, int]:
    """How many ``park`` steps wait at the gate, and how many openers are pending."""
    return {"parked": gate.parked, "openers": _openers}


@app.post("/gate/open")
async def gate_open(request: Request) -> dict[str, int]:
    """Release the parked ``park`` steps once this request's body has arrived.

    A client can stream the body slowly to hold the request in flight and choose the
    moment of release, even while the server shuts down and accepts no new connections.
    """
    global _openers
    _openers += 1
    try:
        await request.body()
    finally:
        _openers -= 1
    return {"released": gate.open()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run("fastapi_app:app", host="127.0.0.1", port=8000)
