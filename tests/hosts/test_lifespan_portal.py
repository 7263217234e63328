"""A FastAPI lifespan client used from threads through a handle on the server's loop,
under real uvicorn (``tests/hosts/lifespan_portal_app.py``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ._harness import Spawner, free_port

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

APP_DIR = Path(__file__).resolve().parent


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_lifespan_client_from_to_thread_and_an_app_thread(spawn: Spawner, loop: str) -> None:
    port = free_port()
    argv = ["uvicorn", "lifespan_portal_app:app", "--app-dir", str(APP_DIR)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--loop", loop, "--no-access-log"]
    server = spawn(argv, port=port, env={"APP_PORT": str(port)})
    server.wait_ready()
    for _ in range(3):  # the same client, request after request (keep-alive reused)
        fanned = server.get("/fan-out")
        assert fanned.status_code == 200, server.report()
        answers = fanned.json()
        assert [answer.split("@")[0] for answer in answers] == [f"echo-{i}" for i in range(8)]
        threads = {answer.split("@")[1] for answer in answers}
        assert "MainThread" not in threads, "each call was made from a to_thread thread"
        assert len(threads) > 1, answers
    for i in range(5):
        response = server.get(f"/from-thread/{i}")
        assert response.status_code == 200, server.report()
        assert response.json() == f"echo-{i}@app-thread"
    server.send(signal.SIGINT)
    assert server.wait_exit() == 0, server.report()
    server.assert_clean_stderr()
