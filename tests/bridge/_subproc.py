"""A tiny harness that runs a Python snippet in a fresh interpreter, with bounded waits.

Lifecycle behaviour (interpreter exit, fork, Ctrl-C) can only be observed from outside
the process, so these tests start a child interpreter. Every wait here has a deadline,
and a child that overstays it is killed and reported with whatever it printed, so a
hang becomes a test failure with a diagnosis instead of a stuck test run.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

__all__ = ("BACKENDS", "Outcome", "Snippet", "child_env", "run_snippet")

#: The portal backends a child can use; uvloop is skipped where it is not installed.
BACKENDS = (
    pytest.param("asyncio"),
    pytest.param("trio"),
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
)

#: How long a child may take unless a test says otherwise; far above the normal runtime.
DEFAULT_TIMEOUT = 30.0


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours without AGENTBRIDGE_* settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTBRIDGE_")}
    env.pop("PYTHONWARNINGS", None)
    env.pop("PYTHONDEVMODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def _argv(code: str, flags: Iterable[str], args: Iterable[str]) -> list[str]:
    return [sys.executable, *flags, "-c", textwrap.dedent(code), *args]


@dataclass
class Outcome:
    """What a finished child did."""

    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def lines(self) -> list[str]:
        """The stdout lines, stripped."""
        return [line.strip() for line in self.stdout.splitlines() if line.strip()]

    def describe(self) -> str:
        """A report for an assertion message."""
        return (
            f"returncode={self.returncode} after {self.elapsed:.2f} s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def run_snippet(
    code: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    flags: Iterable[str] = (),
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run ``code`` (dedented) as ``python [flags] -c code [args]``; return its outcome.

    :raises AssertionError: if the child is still running after ``timeout`` seconds; it
        is killed first, and the message carries its output so far
    """
    start = time.monotonic()
    try:
        done = subprocess.run(
            _argv(code, flags, args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(env),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child
        out = _text(exc.stdout)
        err = _text(exc.stderr)
        raise AssertionError(
            f"the child did not finish within {timeout} s and was killed\n"
            f"--- stdout ---\n{out}\n--- stderr ---\n{err}"
        ) from None
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


@dataclass
class Snippet:
    """A running child whose stdout lines can be awaited one by one, with deadlines.

    Use it as a context manager: leaving the block always kills a child that is still
    running, whatever happened in the test::

        with Snippet(code) as child:
            child.expect("started")
            child.send_signal(signal.SIGINT)
            outcome = child.finish()
    """

    code: str
    flags: Iterable[str] = ()
    args: Iterable[str] = ()
    env: Mapping[str, str] | None = None
    seen: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = None
    _buffer: bytes = b""
    _start: float = 0.0

    def __enter__(self) -> Snippet:
        self._start = time.monotonic()
        self._process = subprocess.Popen(
            _argv(self.code, self.flags, self.args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(self.env),
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self.process
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The child process."""
        assert self._process is not None, "use Snippet as a context manager"
        return self._process

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def expect(self, line: str, timeout: float = DEFAULT_TIMEOUT) -> float:
        """Wait until the child prints ``line`` on stdout; return the monotonic time it did.

        Lines printed before it are kept in :attr:`seen`.

        :raises AssertionError: if the line does not come within ``timeout`` seconds,
            or stdout closes first
        """
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    raw, self._buffer = self._buffer.split(b"\n", 1)
                    text = raw.decode(errors="replace").strip()
                    self.seen.append(text)
                    if text == line:
                        return time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail(f"the child did not print {line!r} within {timeout} s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    self._fail(f"the child closed stdout before printing {line!r}")
                self._buffer += chunk

    def send_signal(self, signum: int = signal.SIGINT) -> float:
        """Send ``signum`` to the child; return the monotonic time it was sent."""
        self.process.send_signal(signum)
        return time.monotonic()

    def finish(self, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
        """Wait for the child to exit and return its outcome (all of stdout, stderr).

        :raises AssertionError: if it is still running after ``timeout`` seconds (it is
            killed first)
        """
        process = self.process
        try:
            rest, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, err = process.communicate()
            self._buffer += rest
            raise AssertionError(
                f"the child did not exit within {timeout} s and was killed\n" + self._report(err)
            ) from None
        self._buffer += rest
        text = "\n".join([*self.seen, self._buffer.decode(errors="replace")])
        elapsed = time.monotonic() - self._start
        return Outcome(process.returncode, text, err.decode(errors="replace"), elapsed)

    def _fail(self, message: str) -> None:
        process = self.process
        process.kill()
        rest, err = process.communicate()
        self._buffer += rest
        raise AssertionError(message + "\n" + self._report(err))

    def _report(self, err: bytes) -> str:
        out = "\n".join([*self.seen, self._buffer.decode(errors="replace")])
        return f"--- stdout ---\n{out}\n--- stderr ---\n{err.decode(errors='replace')}"
