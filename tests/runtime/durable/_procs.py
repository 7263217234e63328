"""Workers in processes of their own, and bounded waits on them."""

from __future__ import annotations

import os
import selectors
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

_WORKER = (sys.executable, "-m", "tests.runtime.durable._worker")

#: Seconds any wait here may take before the test fails: far above the normal time.
DEADLINE = 20.0


class Worker:
    """One ``_worker`` process: started, told to go, watched, ended."""

    def __init__(self, db: Path, *, lease: float, backend: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONWARNINGS", None)
        self.stderr = ""
        self.process = subprocess.Popen(
            [*_WORKER, str(db), str(lease), backend],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expect(self, line: str) -> str:
        """Wait until the worker prints ``line`` (or a line starting with it); that line."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end:
                if selector.select(end - time.monotonic()):
                    got = self.process.stdout.readline()
                    if got.startswith(line):
                        return got.strip()
                    if not got:
                        break
        self.process.kill()
        raise AssertionError(f"the worker never printed {line!r}: {self.process.stderr.read()}")  # type: ignore[union-attr]

    def go(self, run_id: str, directory: Path) -> None:
        """Let the worker start run ``run_id``, its steps logging to ``directory``."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{run_id} {directory}\n")
        self.process.stdin.flush()

    def outcome(self) -> int:
        """The code of the run the worker was last told to start, once it ended."""
        return int(self.expect("exit ").split()[1])

    def wait(self) -> int:
        """The worker's exit code, once it exits (killed after the deadline); what it
        printed to stderr is kept in :attr:`stderr`."""
        try:
            _, self.stderr = self.process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode

    def stop(self) -> None:
        """Kill the worker if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def first_outcome(workers: list[Worker]) -> tuple[Worker, int]:
    """The first of ``workers`` to end its run, and that run's code (other lines they
    print meanwhile, such as ``b waiting``, are passed over)."""
    end = time.monotonic() + DEADLINE
    with selectors.DefaultSelector() as selector:
        for worker in workers:
            assert worker.process.stdout is not None
            selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
        while time.monotonic() < end:
            for key, _ in selector.select(end - time.monotonic()):
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if line.startswith("exit "):
                    return key.data, int(line.split()[1])
    raise AssertionError("no worker ended its run in time")


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds, checking often; fail after the deadline."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def lines(path: Path) -> list[str]:
    """The lines of a side-effect log (none if it does not exist)."""
    return path.read_text().splitlines() if path.exists() else []


def every_row(db: Path) -> dict[str, list[Any]]:
    """Every row of the store's tables, in order: to compare before and after."""
    connection = sqlite3.connect(db)
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("runs", "steps", "attempts")
        }
    finally:
        connection.close()
