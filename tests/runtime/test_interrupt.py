"""Ctrl-C on ``run_workflow`` cancels every running async step before it is raised.

A signal can only be sent safely to another process, so the workflow runs in a child
interpreter that reports, line by line, what its steps did.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

CHILD = """
    import sys
    import anyio
    import agentbridge as ab

    reg = ab.Registry()

    @reg.function
    async def hang(name):
        try:
            print("started", name, flush=True)
            await anyio.sleep_forever()
        finally:
            print("cleanup", name, flush=True)

    @reg.function
    async def later():
        print("later ran", flush=True)

    wf = ab.Workflow.from_dict({
        "name": "interrupted",
        "steps": [
            {"id": "a", "function": "hang", "inputs": {"name": "a"}},
            {"id": "b", "function": "hang", "inputs": {"name": "b"}},
            {"id": "c", "function": "later", "depends_on": ["a"]},
        ],
    })
    try:
        ab.run_workflow(wf, registry=reg, backend=sys.argv[1])
    except KeyboardInterrupt:
        print("caught KeyboardInterrupt", flush=True)
    else:
        print("returned", flush=True)
"""


def read_lines(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.strip())
    lines.put(None)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_cancels_running_steps(backend: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTBRIDGE_")}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=read_lines, args=(child.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:

        def next_line() -> str | None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail(f"the child went quiet; it printed {seen}")
            if line is not None:
                seen.append(line)
            return line

        while {"started a", "started b"} - set(seen):
            if next_line() is None:
                pytest.fail(f"the child ended early: {seen}")
        child.send_signal(signal.SIGINT)
        while next_line() is not None:
            pass
        assert child.wait(30) == 0, seen
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()

    assert "caught KeyboardInterrupt" in seen, seen
    caught = seen.index("caught KeyboardInterrupt")
    assert seen.index("cleanup a") < caught
    assert seen.index("cleanup b") < caught
    assert "later ran" not in seen
