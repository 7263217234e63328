"""Crashes and owners, with real processes: SIGKILL, Ctrl-C, SIGSTOP, two at once.

Every step of the worker's run appends to a log file, so the tests count side effects;
leases are short (0.5 s) so a dead owner's lease expires quickly. Waits are bounded:
on a line the worker prints, on the store's rows, or on the lease's expiry.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agentbridge as ab

from . import _worker
from ._procs import DEADLINE, Worker, every_row, first_outcome, lines, until

pytestmark = pytest.mark.timeout(60)

LEASE = 0.5
Spawn = Callable[..., Worker]
BACKENDS = ["asyncio", "trio"]


def store_of(db: Path) -> ab.SqliteRunStore:
    return ab.SqliteRunStore(db, lease=LEASE)


def attempts(db: Path, run_id: str) -> list[tuple[str, int, str]]:
    store = store_of(db)
    try:
        history = ab.run_sync(store.history(run_id))
    finally:
        store.close()
    return [(h.step_id, h.attempt, h.status) for h in history]


def b_is_running(db: Path, run_id: str) -> bool:
    return ("b", 1, "running") in attempts(db, run_id)


def resume(db: Path, run_id: str, directory: Path, backend: str) -> ab.WorkflowResult:
    """Resume in this process, as soon as the previous owner's lease has expired."""
    store = store_of(db)
    runtime = ab.Runtime(_worker.registry, store=store, backend=backend)
    end = time.monotonic() + DEADLINE
    try:
        while True:
            try:
                return runtime.run(_worker.WORKFLOW, {"dir": str(directory)}, run_id=run_id)
            except ab.RunOwnershipError:
                if time.monotonic() > end:
                    raise
                time.sleep(LEASE / 10)  # the lease expires by the clock only
    finally:
        store.close()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts workers, and stops those still running when the test ends."""
    started: list[Worker] = []

    def start(db: Path, *, lease: float, backend: str) -> Worker:
        started.append(Worker(db, lease=lease, backend=backend))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def started_worker(spawn: Spawn, db: Path, directory: Path, run_id: str, backend: str) -> Worker:
    worker = spawn(db, lease=LEASE, backend=backend)
    worker.expect("ready")
    worker.go(run_id, directory)
    worker.expect("b waiting")
    until(lambda: b_is_running(db, run_id), "the store shows step b running")
    return worker


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("signum", "code", "left"),
    [
        pytest.param(signal.SIGKILL, -signal.SIGKILL, "interrupted", id="SIGKILL"),
        pytest.param(signal.SIGINT, 130, "cancelled", id="Ctrl-C"),
    ],
)
def test_a_run_stopped_mid_step_resumes_reusing_its_finished_steps(
    db: Path, tmp_path: Path, backend: str, spawn: Spawn, signum: int, code: int, left: str
) -> None:
    worker = started_worker(spawn, db, tmp_path, "k", backend)
    worker.process.send_signal(signum)
    assert worker.wait() == code
    (owner,) = {row[11] for row in every_row(db)["runs"]}
    assert (owner is None) == (signum == signal.SIGINT), "Ctrl-C released the lease"
    (tmp_path / "gate").touch()
    result = resume(db, "k", tmp_path, backend)
    assert result.succeeded
    assert {k: s.reused for k, s in result.steps.items()} == {"a": True, "b": False, "c": False}
    assert lines(tmp_path / "a.log") == ["k:a"]  # its side effect happened once
    assert lines(tmp_path / "b.log") == ["k:b", "k:b"]  # at least once: the same key
    assert lines(tmp_path / "c.log") == ["k:c"]
    assert attempts(db, "k") == [
        ("a", 1, "succeeded"),
        ("b", 1, left),
        ("b", 1, "succeeded"),
        ("c", 1, "succeeded"),
    ]


@pytest.mark.timeout(90)
def test_two_runs_started_together_never_both_run(db: Path, tmp_path: Path, spawn: Spawn) -> None:
    workers = [spawn(db, lease=30, backend="asyncio") for _ in "12"]
    for worker in workers:
        worker.expect("ready")
    for repetition in range(20):
        directory = tmp_path / str(repetition)
        directory.mkdir()
        run_id = f"r{repetition}"
        for worker in workers:
            worker.go(run_id, directory)
        # The winner waits in step b until the gate opens, so the other one, whenever it
        # claims, finds the run owned and gives up: it is the first to end.
        loser, code = first_outcome(workers)
        assert code == 3, f"repetition {repetition}: the first to end had code {code}"
        (directory / "gate").touch()
        (winner,) = [worker for worker in workers if worker is not loser]
        assert winner.outcome() == 0
        assert lines(directory / "a.log") == [f"{run_id}:a"]
        assert lines(directory / "b.log") == [f"{run_id}:b"]
    assert [worker.wait() for worker in workers] == [0, 0]
    refused = "".join(worker.stderr for worker in workers)
    assert refused.count("is being run by another process") == 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_owner_frozen_past_its_lease_writes_nothing_when_it_wakes(
    db: Path, tmp_path: Path, backend: str, spawn: Spawn
) -> None:
    worker = started_worker(spawn, db, tmp_path, "s", backend)
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        (tmp_path / "gate").touch()
        result = resume(db, "s", tmp_path, backend)
        assert result.succeeded
        finished = every_row(db)
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)
    assert worker.outcome() == 3
    assert worker.wait() == 0
    assert "this process lost the lease of run 's'" in worker.stderr
    assert every_row(db) == finished
    assert lines(tmp_path / "c.log") == ["s:c"], "the frozen owner started no step once awake"
