"""A real terminal (a pseudo-terminal) gets the live table; Ctrl-C exits with 130."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._helpers import DEMO, PROJECT, REPO, STEPS, cli_env

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys and signals"),
]

#: The longest any child may take here; far above what they need.
DEADLINE = 30.0


def _read_until_exit(process: subprocess.Popen[bytes], fd: int) -> bytes:
    """Everything the child writes to ``fd`` until it exits (bounded by DEADLINE)."""
    chunks = []
    deadline = time.monotonic() + DEADLINE
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: Linux reports EIO
                break
            if not chunk:
                break
            chunks.append(chunk)
    process.wait(timeout=5)
    return b"".join(chunks)


def test_a_terminal_gets_a_live_table_then_the_summary() -> None:
    import pty

    leader, follower = pty.openpty()
    env = {**cli_env(), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    with subprocess.Popen(
        [sys.executable, "-m", "agentbridge", *DEMO],
        cwd=REPO,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    ) as process:
        os.close(follower)
        try:
            output = _read_until_exit(process, leader).decode("utf-8", errors="replace")
        finally:
            os.close(leader)
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, output
    assert "\x1b[?25l" in output  # the live display hid the cursor while it redrew
    assert "running" in output  # a frame caught a step running
    assert "pending" in output  # and one caught a step still waiting for its dependencies
    assert output.count("helpdesk-triage") >= 2  # live frames, then the summary title
    assert "succeeded" in output
    assert "summary" in output


def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "hang.yaml"
    path.write_text("name: hang\nsteps:\n  - {id: wait, tool: cli_hang}\n", encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, "-m", "agentbridge", "run", str(path), "--import", STEPS],
        cwd=PROJECT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stdout is not None
            deadline = time.monotonic() + DEADLINE
            line = b""
            # The step is running once its progress line is out: then press Ctrl-C.
            while not (b"wait" in line and b"running" in line):
                assert time.monotonic() < deadline, "the step never started"
                line = process.stdout.readline()
                assert line, "the CLI exited before the step started"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=DEADLINE)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130
    assert stderr.decode() == "Error: interrupted: the running steps were cancelled\n"
