"""trio (``examples/trio_app.py``): every entry point from inside ``trio.run``."""

from __future__ import annotations

import json

import pytest

from ._harness import Spawner

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(60)]


def test_trio_app_runs_each_entry_point_on_the_right_loop(spawn: Spawner) -> None:
    app = spawn(["python", "trio_app.py"])
    assert app.wait_exit() == 0, app.report()
    assert app.stderr == "", app.report()
    report = json.loads(app.stdout)
    host = report["host_loop"]
    assert host.startswith("trio:")

    def check(outputs: dict[str, dict[str, str]], n: int, loop: str) -> None:
        describe, offload = outputs["describe"], outputs["offload"]
        assert (describe["n"], offload["doubled"]) == (n, 2 * n)
        assert describe["loop"] == loop
        # The blocking step ran in a worker thread whose run_sync came back to the loop.
        assert offload["loop"] == loop
        assert offload["thread"] != describe["thread"]

    # Async API: async steps on the host trio loop, in the trio thread itself.
    check(report["async_api"], 1, host)
    assert report["async_api"]["describe"]["thread"] == "MainThread"
    # Sync API from the trio thread: a portal loop of the chosen backend, elsewhere.
    for backend in ("asyncio", "trio"):
        outputs = report[f"sync_api_{backend}_portal"]
        loop = outputs["describe"]["loop"]
        assert loop.startswith(f"{backend}:")
        assert loop != host
        check(outputs, 2, loop)
        assert outputs["describe"]["thread"] == f"agentbridge-portal-{backend}-for-MainThread"
    # Sync API from trio.to_thread.run_sync: back on the host trio loop (same token).
    in_worker = report["sync_api_in_worker"]
    assert in_worker["caller_thread"] != "MainThread"
    check(in_worker, 3, host)
    assert in_worker["describe"]["thread"] == "MainThread"
