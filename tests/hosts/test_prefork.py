"""Prefork: ``gunicorn --preload`` with uvicorn workers serving ``examples/fastapi_app.py``.

The app module makes a bridged call at import time, so with ``--preload`` the master
process holds an open portal when it forks the workers. Each worker must start clean
(the inherited portal's thread does not exist there) and serve all three route styles.
"""

from __future__ import annotations

import signal

import pytest

from ._harness import Spawner, free_port, get_all, wait_for

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

WORKERS = 2
GRACEFUL_TIMEOUT = 10
STYLES = ("async-api", "sync-api-def", "sync-api-async")


def _gunicorn_flags() -> set[str]:
    from gunicorn.config import KNOWN_SETTINGS

    return {flag for setting in KNOWN_SETTINGS for flag in setting.cli or ()}


def test_every_preloaded_worker_serves_every_route_style(spawn: Spawner) -> None:
    port = free_port()
    argv = ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "--preload"]
    argv += ["-w", str(WORKERS), "--bind", f"127.0.0.1:{port}"]
    argv += ["--graceful-timeout", str(GRACEFUL_TIMEOUT), "fastapi_app:app"]
    if "--no-control-socket" in _gunicorn_flags():  # gunicorn 25+: no socket in $HOME
        argv.insert(1, "--no-control-socket")
    server = spawn(argv, port=port)
    health = server.wait_ready()
    # The import-time call ran once, in the master, before the fork.
    assert health["settings"]["loaded_in_pid"] == server.pid != health["pid"]

    def workers_seen(style: str) -> set[int]:
        """Send batches of concurrent requests until every worker has answered."""
        seen: set[int] = set()

        def all_workers_answered() -> bool:
            for n, response in enumerate(
                get_all(server.url, [f"/{style}/probe?n={i}" for i in range(8)])
            ):
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["outputs"]["offload"]["doubled"] == 2 * n
                seen.add(body["pid"])
            return len(seen) == WORKERS

        wait_for(all_workers_answered, f"all {WORKERS} workers to answer {style}")
        return seen

    pids = {style: workers_seen(style) for style in STYLES}
    assert len(set.union(*pids.values())) == WORKERS, pids
    assert server.pid not in set.union(*pids.values())
    server.send(signal.SIGTERM)
    # The master exits within the graceful timeout, without having to kill a worker.
    assert server.wait_exit(GRACEFUL_TIMEOUT) == 0, server.report()
    assert "Shutting down: Master" in server.stderr
    assert "SIGKILL" not in server.stderr, server.report()
    server.assert_clean_stderr()
