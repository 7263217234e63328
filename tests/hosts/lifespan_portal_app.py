"""A FastAPI app whose lifespan client is used from threads through ``ab.current_portal()``.

Served by ``tests/hosts/test_lifespan_portal.py`` under real uvicorn. The client is made
on the server's loop in the lifespan; ``/fan-out`` uses it from eight
``asyncio.to_thread`` threads, ``/from-thread/{i}`` from a ``threading.Thread`` that the
lifespan started, both through a handle on the server's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request

import agentbridge as ab

Job = tuple[int, "concurrent.futures.Future[str]"] | None


def echo_through(portal: ab.Portal, client: httpx.AsyncClient, i: int) -> str:
    """In a thread: GET /echo/{i} with the loop's client, on the loop."""
    response = portal.run_sync(client.get, f"/echo/{i}")
    return f"{response.json()}@{threading.current_thread().name}"


def serve_jobs(portal: ab.Portal, client: httpx.AsyncClient, jobs: queue.Queue[Job]) -> None:
    """The app's own thread: answer jobs until the None that ends it."""
    while (job := jobs.get()) is not None:
        i, future = job
        try:
            future.set_result(echo_through(portal, client, i))
        except BaseException as exc:
            future.set_exception(exc)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    portal = ab.current_portal()
    port = os.environ["APP_PORT"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        jobs: queue.Queue[Job] = queue.Queue()
        worker = threading.Thread(
            target=serve_jobs, args=(portal, client, jobs), name="app-thread", daemon=True
        )
        worker.start()
        app.state.portal, app.state.client, app.state.jobs = portal, client, jobs
        yield
        jobs.put(None)
        await asyncio.to_thread(worker.join)


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/echo/{i}")
async def echo(i: int) -> str:
    return f"echo-{i}"


@app.get("/fan-out")
async def fan_out(request: Request) -> list[str]:
    state = request.app.state
    return list(
        await asyncio.gather(
            *(asyncio.to_thread(echo_through, state.portal, state.client, i) for i in range(8))
        )
    )


@app.get("/from-thread/{i}")
async def from_thread(request: Request, i: int) -> str:
    future: concurrent.futures.Future[str] = concurrent.futures.Future()
    request.app.state.jobs.put((i, future))
    return await asyncio.wrap_future(future)
