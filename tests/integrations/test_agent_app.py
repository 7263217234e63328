"""``examples/agent_app``: a pydantic-ai agent step in a script, FastAPI and Jupyter, for real.

The agent's sync tool calls ``ab.run_sync`` on an async HTTP request to a stock service
on 127.0.0.1; in every host the request must run on the loop the run is on (the answer's
``checked_on``), and the result's JSON must be the answer's pydantic dump plus usage.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from ..hosts._harness import HostProcess, Spawner, execute_notebook, free_port

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]


@pytest.fixture
def spawn(tmp_path: Any) -> Iterator[Spawner]:
    """Start host programs for one test; their process groups are killed at teardown."""
    with Spawner(tmp_path) as spawner:
        yield spawner


def _answer_step(result: dict[str, Any], item: str, count: int) -> dict[str, Any]:
    assert result["status"] == "succeeded", result
    step = result["steps"]["answer"]
    assert step["output"]["item"] == item
    assert step["output"]["in_stock"] == count
    assert result["outputs"]["answer"] == step["output"]
    assert step["usage"]["requests"] == 2  # the tool call, then the answer
    assert step["usage"]["tool_calls"] == 1
    assert not [key for key in step["output"] if key.startswith("_")]
    return dict(step["output"])


def test_the_script_runs_the_agent_on_its_portal_loop(spawn: Spawner) -> None:
    script = spawn(["python", "-m", "agent_app.script", "widget"])
    assert script.wait_exit() == 0, script.report()
    report = json.loads(script.stdout)
    answer = _answer_step(report["result"], "widget", 7)
    assert answer["checked_on"] == report["run_loop"]
    assert script.stderr == "", script.report()


def test_inside_trio_run_the_agent_runs_on_the_asyncio_portal(spawn: Spawner) -> None:
    script = spawn(["python", "-m", "agent_app.script", "gizmo", "--trio"])
    assert script.wait_exit() == 0, script.report()
    report = json.loads(script.stdout)
    answer = _answer_step(report["result"], "gizmo", 42)
    assert report["run_loop"].startswith("trio:")
    assert answer["checked_on"].startswith("asyncio:")
    assert script.stderr == "", script.report()


@pytest.fixture
def server(spawn: Spawner) -> Iterator[HostProcess]:
    """The agent app on real uvicorn, answering /health."""
    port = free_port()
    argv = ["uvicorn", "agent_app.server:app", "--host", "127.0.0.1", "--port", str(port)]
    host = spawn([*argv, "--no-access-log"], port=port)
    host.wait_ready()
    yield host
    host.send(signal.SIGINT)
    host.wait_exit()
    host.assert_clean_stderr()


@pytest.mark.parametrize("route", ["def", "async"])
def test_both_fastapi_routes_run_the_agent_on_the_server_s_loop(
    server: HostProcess, route: str
) -> None:
    server_loop = server.get("/health").json()["loop"]
    response = server.get(f"/{route}/widget")
    assert response.status_code == 200, response.text
    answer = _answer_step(response.json(), "widget", 7)
    assert answer["checked_on"] == server_loop


def test_the_notebook_runs_the_agent_in_a_real_kernel() -> None:
    notebook = execute_notebook("agent_app/notebook.ipynb")
    results = [
        [out["data"]["text/plain"] for out in cell.outputs if "data" in out]
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    assert results == [
        ["True"],  # a cell runs with the kernel's asyncio loop running
        ["(7, True, True)"],  # run_workflow: the tool ran on the run's portal loop
        ["(42, True)"],  # await run_workflow_async: on the kernel's own loop
        ["('gizmo', 2, 1)"],  # to_dict: the pydantic dump and the usage
    ]
