"""FastAPI (``examples/fastapi_app.py``) on real uvicorn (asyncio, uvloop) and hypercorn (trio).

What a user would check, from outside, over loopback HTTP:

* each of the three route styles answers 30 concurrent requests, each with its own
  result and its own request id (set by a middleware, read by the steps);
* ``async def`` + ``run_workflow_async`` and ``def`` + ``run_workflow`` run the steps
  on the server's own loop; ``async def`` + ``run_workflow`` runs them on a portal loop;
* a failing step becomes a 409 naming the user's exception type; a run that outlives
  its ``timeout=`` becomes a 504, its running step cancelled;
* the server answers ``/health`` while workflows are parked at a gate;
* SIGINT and SIGTERM during in-flight requests stop the server promptly and cleanly.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ._harness import (
    DEADLINE,
    HostProcess,
    Spawner,
    async_client,
    free_port,
    get_all,
    probe_outputs,
)

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

STYLES = ("async-api", "sync-api-def", "sync-api-async")
#: The styles whose workflows run on the server's loop, so a gate there can park them.
NON_BLOCKING_STYLES = ("async-api", "sync-api-def")
CONCURRENT = 30


def server_argv(kind: str, port: int, graceful: float | None = None) -> list[str]:
    """The command line that serves ``fastapi_app:app`` with server ``kind``."""
    if kind == "hypercorn-trio":
        argv = ["hypercorn", "-k", "trio", "--bind", f"127.0.0.1:{port}", "fastapi_app:app"]
        return argv + (["--graceful-timeout", str(graceful)] if graceful else [])
    loop = "uvloop" if kind == "uvicorn-uvloop" else "asyncio"
    argv = ["uvicorn", "fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--loop", loop, "--no-access-log"]
    return argv + (["--timeout-graceful-shutdown", str(graceful)] if graceful else [])


def start_server(spawn: Spawner, kind: str, graceful: float | None = None) -> HostProcess:
    """Start the example app under ``kind`` and wait until it answers ``/health``."""
    port = free_port()
    server = spawn(server_argv(kind, port, graceful), port=port)
    server.wait_ready()
    return server


@pytest.fixture(scope="module", params=["uvicorn", "uvicorn-uvloop", "hypercorn-trio"])
def server(request: pytest.FixtureRequest, module_spawn: Spawner) -> Iterator[HostProcess]:
    """One running server per kind, shared by this module's traffic tests."""
    host = start_server(module_spawn, request.param)
    yield host
    host.send(signal.SIGINT)
    host.wait_exit()
    host.assert_clean_stderr()


def test_import_time_call_ran_on_a_portal_loop(server: HostProcess) -> None:
    """The app module's ``ab.run_sync`` at import time worked, on a loop of its own."""
    health = server.get("/health").json()
    assert health["settings"]["loaded_in_pid"] == health["pid"]
    assert health["settings"]["loaded_on"].startswith("asyncio:")
    assert health["settings"]["loaded_on"] != health["loop"]


@pytest.mark.parametrize("style", STYLES)
def test_concurrent_requests_each_get_their_own_result(server: HostProcess, style: str) -> None:
    app = server.get("/health").json()
    paths = [f"/{style}/probe?n={i}" for i in range(CONCURRENT)]
    ids = [{"x-request-id": f"{style}-{i}"} for i in range(CONCURRENT)]
    responses = get_all(server.url, paths, ids)
    for i, response in enumerate(responses):
        _, describe, offload = probe_outputs(response, i, f"{style}-{i}")
        assert offload["thread"] != describe["thread"]
        if style == "sync-api-async":
            assert describe["loop"] != app["loop"]
            assert describe["thread"].startswith("agentbridge-portal-")
        else:
            assert describe["loop"] == app["loop"], "the steps must run on the server's loop"
            assert describe["thread"] == "MainThread"
    if style == "sync-api-def":  # Starlette ran the route itself in a worker thread
        assert {r.json()["route_thread"] for r in responses} != {"MainThread"}


@pytest.mark.parametrize("style", STYLES)
def test_step_exception_becomes_the_error_response(server: HostProcess, style: str) -> None:
    response = server.get(f"/{style}/fail?item=widget")
    assert response.status_code == 409
    assert response.json() == {
        "step": "check",
        "error": "InventoryError",
        "message": "item 'widget' is out of stock",
    }


@pytest.mark.parametrize("style", STYLES)
def test_workflow_timeout_cancels_the_running_steps(server: HostProcess, style: str) -> None:
    n = 100 + STYLES.index(style)  # unique in this server's output
    response = server.get(f"/{style}/park?n={n}&timeout=0.2")
    assert response.status_code == 504, response.text
    assert response.json() == {
        "error": "WorkflowTimeoutError",
        "timeout": 0.2,
        "steps": {"park": "cancelled"},
    }
    # The step parked at the gate was cancelled (not abandoned): its cleanup ran.
    server.wait_output(f"park step n={n} cancelled: cleanup ran")
    assert server.get("/gate").json()["parked"] == 0


class Parking:
    """Requests parked at the example app's gate, and a held-open request to release them.

    Everything is ordered by what the server reports (``/gate``), never by sleeping.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.parked: list[asyncio.Future[httpx.Response]] = []
        self._release = asyncio.Event()
        self.opener: asyncio.Future[httpx.Response] | None = None

    async def _poll_gate(self, field: str, count: int) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while (await self.client.get("/gate")).json()[field] < count:
            early = [task.result() for task in self.parked if task.done()]
            assert not early, f"requests finished before the gate opened: {early}"
            assert asyncio.get_running_loop().time() < deadline, f"/gate {field} < {count}"
            await asyncio.sleep(0.02)

    async def park(self, paths: list[str]) -> None:
        """Send ``paths`` and wait until all of them are waiting at the gate."""
        self.parked += [asyncio.ensure_future(self.client.get(path)) for path in paths]
        await self._poll_gate("parked", len(self.parked))

    async def hold_opener(self) -> None:
        """Start ``POST /gate/open`` and wait until the app is waiting for its body."""

        async def body() -> AsyncIterator[bytes]:
            yield b"open"
            await self._release.wait()
            yield b"!"

        self.opener = asyncio.ensure_future(self.client.post("/gate/open", content=body()))
        await self._poll_gate("openers", 1)

    async def release(self) -> list[httpx.Response]:
        """Finish the opener's body; return the parked requests' responses."""
        assert self.opener is not None
        self._release.set()
        assert (await self.opener).json() == {"released": len(self.parked)}
        return list(await asyncio.gather(*self.parked))


@pytest.mark.parametrize("style", NON_BLOCKING_STYLES)
def test_health_answers_while_workflows_are_parked(server: HostProcess, style: str) -> None:
    count = 5

    async def scenario() -> list[httpx.Response]:
        async with async_client(server.url) as client:
            parking = Parking(client)
            await parking.park([f"/{style}/park?n={i}" for i in range(count)])
            await parking.hold_opener()
            health = await client.get("/health")
            assert health.status_code == 200
            assert (await client.get("/gate")).json()["parked"] == count
            return await parking.release()

    responses = asyncio.run(scenario())
    assert [r.json()["outputs"]["park"]["n"] for r in responses] == list(range(count))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("kind", ["uvicorn", "uvicorn-uvloop"])
def test_signal_during_in_flight_requests_stops_cleanly(
    spawn: Spawner, kind: str, signum: int
) -> None:
    """The signal starts a graceful shutdown: in-flight requests finish, then the server exits.

    The requests are parked in workflows (one per non-blocking style) when the signal
    comes; the test waits until uvicorn says it is waiting for them, then releases
    them through a request that was already in flight.
    """
    server = start_server(spawn, kind)

    async def scenario() -> list[httpx.Response]:
        async with async_client(server.url) as client:
            parking = Parking(client)
            await parking.park([f"/{style}/park?n=7" for style in NON_BLOCKING_STYLES])
            await parking.hold_opener()
            server.send(signum)
            await asyncio.to_thread(server.wait_output, "Waiting for connections to close", 1)
            return await parking.release()

    responses = asyncio.run(scenario())
    assert [r.json()["outputs"]["park"]["n"] for r in responses] == [7, 7]
    code = server.wait_exit()
    # uvicorn re-raises a captured SIGTERM once it has shut down, so it dies of it.
    assert code == (0 if signum == signal.SIGINT else -signal.SIGTERM), server.report()
    assert "Finished server process" in server.stderr
    server.assert_clean_stderr()


def test_graceful_timeout_cancels_the_workflows_still_running(spawn: Spawner) -> None:
    """With ``--timeout-graceful-shutdown``, workflows that never finish do not hold the
    server: once the timeout expires uvicorn cancels the requests and exits.

    The ``async def`` route's workflow is cancelled with its request (its step's cleanup
    runs); the ``def`` route's worker thread is abandoned by Starlette, and its workflow
    is left to the process exit. Whether uvicorn still sends a cancelled request its 500
    before it exits, or just closes the connection, is a race inside uvicorn.
    """
    server = start_server(spawn, "uvicorn", graceful=1)

    async def scenario() -> list[httpx.Response | BaseException]:
        async with async_client(server.url) as client:
            parking = Parking(client)
            await parking.park(["/async-api/park?n=1", "/sync-api-def/park?n=2"])
            server.send(signal.SIGTERM)
            return await asyncio.gather(*parking.parked, return_exceptions=True)

    for outcome in asyncio.run(scenario()):
        if isinstance(outcome, httpx.Response):
            assert outcome.status_code == 500, outcome.text
        else:
            assert isinstance(outcome, httpx.RemoteProtocolError), repr(outcome)
    assert server.wait_exit() == -signal.SIGTERM, server.report()
    assert "timeout graceful shutdown exceeded" in server.stderr
    assert "park step n=1 cancelled: cleanup ran" in server.stdout, server.report()
    assert "Finished server process" in server.stderr


def test_hypercorn_trio_shuts_down_cleanly_after_traffic(spawn: Spawner) -> None:
    server = start_server(spawn, "hypercorn-trio", graceful=1)
    paths = [f"/{style}/probe?n={i}" for style in STYLES for i in range(10)]
    assert all(r.status_code == 200 for r in get_all(server.url, paths))
    server.send(signal.SIGTERM)
    assert server.wait_exit() == 0, server.report()
    server.assert_clean_stderr()
