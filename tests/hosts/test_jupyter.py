"""Jupyter: ``examples/notebook.ipynb`` in a real ipykernel, plus interrupt, restart, shutdown.

The kernel runs each cell on its main thread with its asyncio loop running: the host
where ``asyncio.run`` fails and a blocking call must go through a portal.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager
from jupyter_core.utils import ensure_event_loop

from ._harness import DEADLINE, EXAMPLES, execute_notebook, host_env, wait_for

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]

ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def outputs_of(cell: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """A code cell's plain-text results and its error outputs."""
    results = [out["data"]["text/plain"] for out in cell.outputs if "data" in out]
    errors = [out for out in cell.outputs if out["output_type"] == "error"]
    return results, errors


def stream_text(cells: Any, index: int) -> str:
    """What the ``index``-th code cell printed on stdout and stderr."""
    cell = [cell for cell in cells if cell.cell_type == "code"][index]
    return "".join(out["text"] for out in cell.outputs if out["output_type"] == "stream")


def test_notebook_runs_and_shows_the_right_outputs() -> None:
    notebook = execute_notebook("notebook.ipynb")
    cells = [outputs_of(cell) for cell in notebook.cells if cell.cell_type == "code"]
    assert cells[0] == (["True"], [])  # a cell is an async context: the kernel's loop runs
    assert cells[1] == (["True"], [])  # run_sync ran on a portal loop, not the kernel's
    assert cells[2] == (["42"], [])  # run_workflow from a cell
    assert cells[3] == (["(True, 8)"], [])  # await run_workflow_async: on the kernel's loop
    (error,) = cells[4][1]
    assert error["ename"] == "InventoryError"  # the user's own exception type
    (error,) = cells[5][1]
    assert error["ename"] == "StepFailedError"
    traceback = ANSI_COLOURS.sub("", "\n".join(error["traceback"]))
    assert "InventoryError: item 'widget' is out of stock" in traceback
    # A run timeout cancelled the step parked at the gate (its cleanup printed a line).
    assert cells[6] == (["('timed_out', 'cancelled')"], [])
    assert "park step n=1 cancelled: cleanup ran" in stream_text(notebook.cells, 6)
    assert cells[7] == (["'the kernel is still fine'"], [])


@pytest.fixture
def kernel() -> Iterator[KernelManager]:
    """A running ipykernel started in ``examples/``; always shut down (or killed)."""
    manager = KernelManager(kernel_name="python3")
    manager.shutdown_wait_time = DEADLINE / 2  # jupyter_client kills the kernel after this
    manager.start_kernel(cwd=str(EXAMPLES), env=host_env())
    try:
        yield manager
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        # jupyter_client's sync API runs on a loop jupyter_core makes and never closes;
        # left open, it is collected later as an unclosed loop, in some other test.
        ensure_event_loop().close()
        asyncio.set_event_loop(None)


def execute(manager: KernelManager, code: str) -> tuple[dict[str, Any], list[str]]:
    """Run ``code`` in the kernel; return the execute reply's content and the text outputs."""
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=DEADLINE)
        texts: list[str] = []

        def collect(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if "text" in content:
                texts.append(content["text"])
            elif "data" in content:
                texts.append(content["data"].get("text/plain", ""))

        reply = client.execute_interactive(
            textwrap.dedent(code), timeout=DEADLINE, output_hook=collect
        )
        return reply["content"], texts
    finally:
        client.stop_channels()


#: The two sync calls a cell can be blocked in when the kernel is interrupted.
BLOCKED_CALLS = {
    "run_sync": "ab.run_sync(wait_forever, marker)",
    "run_workflow": "ab.run_workflow(WAIT, {'marker': marker}, registry=registry)",
}


@pytest.mark.parametrize("call", sorted(BLOCKED_CALLS))
def test_interrupt_cancels_the_sync_call_and_the_kernel_keeps_working(
    kernel: KernelManager, tmp_path: Path, call: str
) -> None:
    code = f"""
        import anyio, pathlib
        import agentbridge as ab

        registry = ab.Registry()

        @registry.agent
        async def wait_forever(marker):
            pathlib.Path(marker, "started").touch()
            try:
                await anyio.sleep_forever()
            finally:
                pathlib.Path(marker, "cancelled").touch()

        WAIT = ab.Workflow.from_dict({{
            "name": "wait",
            "inputs": ["marker"],
            "steps": [
                {{"id": "wait", "agent": "wait_forever",
                  "inputs": {{"marker": "${{inputs.marker}}"}}}},
            ],
        }})
        marker = {str(tmp_path)!r}
        {BLOCKED_CALLS[call]}
    """
    client = kernel.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=DEADLINE)
        msg_id = client.execute(textwrap.dedent(code))
        wait_for(lambda: (tmp_path / "started").exists(), "the coroutine to start")
        kernel.interrupt_kernel()
        reply = wait_for(lambda: _reply_to(client, msg_id), "the interrupted cell's reply")
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # The coroutine was cancelled and its finally block ran before the cell returned.
    assert (tmp_path / "cancelled").exists()
    still = "import asyncio; print(ab.run_sync(asyncio.sleep, 0, 'still works'))"
    content, texts = execute(kernel, still)
    assert content["status"] == "ok"
    assert texts == ["still works\n"]


def _reply_to(client: Any, msg_id: str) -> dict[str, Any] | None:
    msg = client.get_shell_msg(timeout=DEADLINE)
    return msg if msg["parent_header"].get("msg_id") == msg_id else None


OPEN_PORTALS = """
    import threading
    import anyio
    import agentbridge as ab
    from host_steps import current_loop

    ab.run_sync(current_loop)
    ab.run_sync(current_loop, backend="trio")
    worker = threading.Thread(target=ab.run_sync, args=(current_loop,))
    worker.start()
    worker.join()
    # A daemon thread that stays blocked in a call, with its portal open.
    threading.Thread(target=ab.run_sync, args=(anyio.sleep_forever,), daemon=True).start()
    print(ab.get_portal_manager().open_portals >= 2)
"""


def test_restart_and_shutdown_with_portals_open_are_prompt(kernel: KernelManager) -> None:
    """The kernel exits on its own each time (exit code 0), before jupyter_client would
    give up waiting and kill it."""
    content, texts = execute(kernel, OPEN_PORTALS)
    assert (content["status"], texts) == ("ok", ["True\n"])
    first = kernel.provisioner.process  # type: ignore[union-attr]
    kernel.restart_kernel(now=False)
    assert first.returncode == 0, "the kernel had to be killed to restart"
    content, texts = execute(kernel, OPEN_PORTALS)
    assert (content["status"], texts) == ("ok", ["True\n"])
    second = kernel.provisioner.process  # type: ignore[union-attr]
    kernel.shutdown_kernel(now=False)
    assert second.returncode == 0, "the kernel had to be killed to shut down"
