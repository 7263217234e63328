"""The harness for the real-host tests: start a real program, talk to it, always reap it.

Every scenario starts its host (uvicorn, hypercorn, gunicorn, waitress, a Jupyter
kernel, a script) as a subprocess in its own session, on a free loopback port, with its
stdout and stderr going to files. Every wait has a deadline. The process group is
killed at teardown whatever happened, so a failing or hanging host never outlives its
test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

#: The examples the hosts run; the tests execute them so they never rot.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The console scripts (uvicorn, gunicorn, ...) installed next to this interpreter.
BIN = Path(sys.executable).parent
#: How long a host may take to start, or to exit once asked to; far above the norm.
DEADLINE = 30.0
#: What a cleanly behaving host never prints on stderr.
FORBIDDEN = ("Traceback", "Task was destroyed", "Exception ignored", "never awaited")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def host_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a host: ours minus agentbridge/Python tweaks, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBRIDGE_")}
    for name in ("PYTHONWARNINGS", "PYTHONDEVMODE", "PYTHONASYNCIODEBUG"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def execute_notebook(relative: str) -> Any:
    """Run the notebook at ``examples/<relative>`` in a real ipykernel started in
    ``examples/``; return it, its cells' outputs filled in."""
    import nbclient
    import nbformat

    notebook = nbformat.read(EXAMPLES / relative, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=DEADLINE,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    # The sync `execute` leaves an event loop of jupyter_core's open in this thread, and
    # a later test's asyncio.run drops it, to be collected unclosed (a ResourceWarning)
    # in some test after. A thread of its own runs the execution on a loop that closes.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, client.async_execute(env=host_env())).result()
    return notebook


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and the
    # children would inherit that; a host must see SIGINT as a terminal would send it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class HostProcess:
    """One real host program, started in its own session with its output in files."""

    def __init__(self, argv: Sequence[str], logs: Path, *, port: int | None, env: Any) -> None:
        self.argv = list(argv)
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else ""
        self._out_path = logs / "stdout.txt"
        self._err_path = logs / "stderr.txt"
        with open(self._out_path, "wb") as out, open(self._err_path, "wb") as err:
            self.process = subprocess.Popen(
                self.argv,
                cwd=EXAMPLES,
                env=host_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_default_sigint,
            )

    @property
    def pid(self) -> int:
        """The host's process id (also its process group id)."""
        return self.process.pid

    @property
    def stdout(self) -> str:
        """Everything the host has printed on stdout so far."""
        return self._out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """Everything the host has printed on stderr so far."""
        return self._err_path.read_text(errors="replace")

    def report(self) -> str:
        """The host's state and output, for an assertion message."""
        return (
            f"argv={self.argv} returncode={self.process.poll()}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError("the host exited early\n" + self.report())

    def get(self, path: str, timeout: float = DEADLINE) -> httpx.Response:
        """``GET path`` from the host, directly (never through a proxy from the environment)."""
        return httpx.get(self.url + path, timeout=timeout, trust_env=False)

    def wait_ready(self, path: str = "/health") -> dict[str, Any]:
        """Poll ``path`` until the server answers 200; return its JSON body."""

        def ready() -> dict[str, Any] | None:
            self._alive()
            try:
                response = self.get(path, timeout=5)
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        try:
            return dict(wait_for(ready, f"{self.url}{path} to answer"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None

    def wait_output(self, text: str, count: int = 1, timeout: float = DEADLINE) -> None:
        """Wait until ``text`` has appeared ``count`` times in the host's stdout or stderr."""

        def seen() -> bool:
            found = (self.stdout + self.stderr).count(text) >= count
            if not found:
                self._alive()
            return found

        try:
            wait_for(seen, f"{text!r} x{count} in the output", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None

    def send(self, signum: int, *, group: bool = False) -> None:
        """Send ``signum`` to the host, or to its whole group (as a terminal's Ctrl-C)."""
        if group:
            os.killpg(self.pid, signum)
        else:
            self.process.send_signal(signum)

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        """Wait for the host to exit on its own; return its exit code."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the host did not exit within {timeout} s and was killed\n" + self.report()
            ) from None

    def kill(self) -> None:
        """Kill the host's whole process group and reap the host."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel reaps it
            pass

    def assert_clean_stderr(self) -> None:
        """Fail if stderr shows a traceback, a destroyed task or an ignored exception."""
        errors = self.stderr
        bad = [marker for marker in FORBIDDEN if marker in errors]
        assert not bad, f"stderr contains {bad}\n{self.report()}"


class Spawner:
    """Starts host programs and kills every one of them (their process groups) on exit.

    ``spawner(argv, port=None, env=None)``: ``argv[0]`` names a console script next to
    this interpreter (``"uvicorn"``), or is ``"python"`` for this interpreter.
    """

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._started: list[HostProcess] = []

    def __call__(
        self, argv: Sequence[str], *, port: int | None = None, env: dict[str, str] | None = None
    ) -> HostProcess:
        program = sys.executable if argv[0] == "python" else str(BIN / argv[0])
        logs = self._logs / f"host{len(self._started)}"
        logs.mkdir()
        host = HostProcess([program, *argv[1:]], logs, port=port, env=env)
        self._started.append(host)
        return host

    def __enter__(self) -> Spawner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for host in self._started:
            host.kill()


def async_client(base_url: str, max_connections: int = 100) -> httpx.AsyncClient:
    """An async client for ``base_url`` that opens a new connection for every request.

    Without keep-alive, a prefork server's workers each get a chance to accept, and a
    server shutting down has no idle connection to close under a request.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, timeout=DEADLINE, limits=limits, trust_env=False)


def get_all(
    base_url: str, paths: Sequence[str], headers: Sequence[dict[str, str]] | None = None
) -> list[httpx.Response]:
    """GET every path concurrently (one connection each) and return the responses in order."""

    async def main() -> list[httpx.Response]:
        async with async_client(base_url, max(len(paths), 1)) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.get(path, headers=(headers[i] if headers else None))
                        for i, path in enumerate(paths)
                    )
                )
            )

    return asyncio.run(main())


def probe_outputs(
    response: httpx.Response, n: int, request_id: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The body of a run of the probe workflow for ``n``, and the outputs of its steps
    ``describe`` and ``offload``, checked to answer request ``request_id`` on one loop."""
    assert response.status_code == 200, response.text
    body = response.json()
    describe, offload = body["outputs"]["describe"], body["outputs"]["offload"]
    assert (describe["n"], offload["doubled"]) == (n, 2 * n)
    assert describe["request_id"] == offload["request_id"] == request_id
    # One run, one loop: the blocking step's run_sync went back to the run's loop.
    assert describe["loop"] == offload["loop"]
    return body, describe, offload
