"""Threaded WSGI (``examples/flask_app.py`` on waitress): portals are per server thread, reused."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ._harness import (
    DEADLINE,
    HostProcess,
    Spawner,
    free_port,
    get_all,
    probe_outputs,
    wait_for,
)

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

THREADS = 4
BATCH = 40
BATCHES = 8  # 320 requests in all


def start_flask(spawn: Spawner) -> HostProcess:
    """Start the Flask example on waitress with ``THREADS`` threads."""
    port = free_port()
    server = spawn(
        ["python", "flask_app.py", "--port", str(port), "--threads", str(THREADS)], port=port
    )
    server.wait_ready("/stats")
    return server


def test_hundreds_of_requests_reuse_one_portal_per_thread(spawn: Spawner) -> None:
    server = start_flask(spawn)
    loops: dict[str, set[str]] = {}  # view thread -> the portal loops its workflows ran on
    first_stats: dict[str, int] = {}
    for batch in range(BATCHES):
        numbers = range(batch * BATCH, (batch + 1) * BATCH)
        responses = get_all(
            server.url,
            [f"/run/{n}" for n in numbers],
            [{"x-request-id": f"r{n}"} for n in numbers],
        )
        for n, response in zip(numbers, responses, strict=True):
            body, describe, _ = probe_outputs(response, n, f"r{n}")
            assert describe["thread"] == f"agentbridge-portal-asyncio-for-{body['view_thread']}"
            loops.setdefault(body["view_thread"], set()).add(describe["loop"])
        if batch == 0:
            first_stats = server.get("/stats").json()
    stats = server.get("/stats").json()
    # Each server thread opened one portal and reused it for every request it served.
    assert 1 <= len(loops) <= THREADS
    assert all(len(thread_loops) == 1 for thread_loops in loops.values()), loops
    assert stats["open_portals"] == stats["portal_threads"] == len(loops)
    # Nothing grew after the first batch: no new portals, no piling up of threads.
    assert stats["open_portals"] == first_stats["open_portals"]
    assert stats["threads"] <= first_stats["threads"] + THREADS, (first_stats, stats)
    # The main thread, the server's threads, and per portal its loop thread and the
    # worker thread its blocking steps run in: nothing else.
    assert stats["threads"] <= 1 + THREADS + 2 * stats["open_portals"], stats
    server.send(signal.SIGINT)  # waitress stops serving; atexit closes the portals
    assert server.wait_exit() == 0, server.report()
    # (waitress warns about its queue depth under a burst: that is all it may print)
    server.assert_clean_stderr()


def test_step_exception_becomes_the_error_response(spawn: Spawner) -> None:
    server = start_flask(spawn)
    response = server.get("/fail/widget")
    assert response.status_code == 409
    assert response.json() == {
        "step": "check",
        "error": "InventoryError",
        "message": "item 'widget' is out of stock",
    }


def test_ctrl_c_with_a_workflow_in_flight_exits_cleanly(spawn: Spawner) -> None:
    """Ctrl-C while a view waits in ``run_workflow``: waitress stops serving, waits for
    its busy thread (5 s, fixed in waitress), says so, and lets the interpreter exit; the
    bridge's exit hook then cancels the workflow still running (its step's cleanup runs).
    """
    server = start_flask(spawn)
    with ThreadPoolExecutor(1) as pool:
        request = pool.submit(server.get, "/park/1")
        wait_for(lambda: server.get("/stats").json()["parked"] == 1, "the workflow to park")
        server.send(signal.SIGINT)
        code = server.wait_exit()
        with pytest.raises(httpx.TransportError):
            request.result(DEADLINE)
    assert code == 0, server.report()
    assert "park step n=1 cancelled: cleanup ran" in server.stdout, server.report()
    assert "WARNING:waitress:1 thread(s) still running" in server.stderr
    server.assert_clean_stderr()
