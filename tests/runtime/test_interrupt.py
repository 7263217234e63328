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
import time
from pathlib import Path

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


class ChildOutput:
    """A child's output lines as they come, read in a thread; each wait is bounded."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=read_lines, args=(child.stdout, self.lines), daemon=True).start()

    def next_line(self) -> str | None:
        """The next line, or ``None`` at the end; fails the test after 30 s of quiet."""
        try:
            line = self.lines.get(timeout=30)
        except queue.Empty:
            pytest.fail(f"the child went quiet; it printed {self.seen}")
        if line is not None:
            self.seen.append(line)
        return line


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
    output = ChildOutput(child)
    next_line, seen = output.next_line, output.seen
    try:
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


PROCESS_CHILD = """
    import os, sys
    import agentbridge as ab
    from tests.runtime import _process_steps as steps

    def workflow(step):
        return ab.Workflow.from_dict({"name": "t", "steps": [{**step, "runner": "cpu"}]})

    if __name__ == "__main__":
        with ab.ProcessRunner(1) as runner:
            hold = {"id": "hold", "function": steps.announce_then_sleep, "inputs": {"seconds": 30}}
            try:
                ab.run_workflow(workflow(hold), runners={"cpu": runner}, backend=sys.argv[1])
            except KeyboardInterrupt:
                print("caught KeyboardInterrupt", flush=True)
            else:
                print("returned", flush=True)
            again = ab.run_workflow(
                workflow({"id": "a", "function": steps.pid}), runners={"cpu": runner}
            )
            print("runner still usable:", again.outputs["a"] != os.getpid(), flush=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_on_a_process_step_interrupts_the_run_and_leaves_the_runner_usable(
    backend: str, tmp_path: Path
) -> None:
    # Ctrl-C in a terminal signals the whole foreground process group: the run's
    # process and its worker processes alike. The child gets a session of its own, so
    # the signal reaches exactly its group, once its step is known to run.
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(PROCESS_CHILD))
    root = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTBRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    child = subprocess.Popen(
        [sys.executable, str(script), backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=root,
        start_new_session=True,
    )
    output = ChildOutput(child)
    next_line, seen = output.next_line, output.seen
    try:
        while "step started" not in seen:
            if next_line() is None:
                pytest.fail(f"the child ended early: {seen}")
        start = time.monotonic()
        os.killpg(child.pid, signal.SIGINT)
        while next_line() is not None:
            pass
        assert child.wait(30) == 0, seen
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        assert child.stdout is not None
        child.stdout.close()

    assert "caught KeyboardInterrupt" in seen, seen
    assert time.monotonic() - start < 25, "the run waited for the step's 30 s sleep"
    assert "runner still usable: True" in seen, seen
