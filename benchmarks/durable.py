"""Durable-run benchmarks (issue #11): what the run store costs per step.

A chain of ``STEPS`` async no-op steps (each takes the previous one's output) runs
with and without an :class:`agentbridge.SqliteRunStore`, side by side; then two kinds
of resume of a stored run: one that reuses every step through the normal path (the run
was marked unfinished, as if its process died after its last step was written), and
one of a finished run, which returns the stored result. Times are per step.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

from _harness import Group, MaxOverhead, MaxTime, Row, Runner, Subject

__all__ = ("groups",)

STEPS = 300
QUICK_STEPS = 50
#: Targets of the issue: the store adds at most this per stored step, a reused step
#: costs at most this.
STORED_OVERHEAD = 100e-6
REUSED_TIME = 20e-6


async def noop(v: object = None) -> object:
    """The step: returns its input."""
    return v


def _executor(steps: int, store: object | None) -> object:
    import agentbridge as ab

    chain = [{"id": "s0", "function": noop}] + [
        {"id": f"s{i}", "function": noop, "inputs": {"v": f"${{steps.s{i - 1}.output}}"}}
        for i in range(1, steps)
    ]
    workflow = ab.Workflow.from_dict({"name": "chain", "steps": chain})
    return ab.Executor(workflow, store=store)  # type: ignore[arg-type]


@contextmanager
def subject(mode: str, ops: int) -> Iterator[Runner]:
    """One run of an ``ops``-step chain per round: ``plain``, ``stored`` (a new run id
    each time), ``reused`` (a stored run marked unfinished, resumed) or ``finished``."""
    import time

    import agentbridge as ab

    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "runs.db"
        store = ab.SqliteRunStore(db) if mode != "plain" else None
        executor = _executor(ops, store)
        ids = (f"run-{n}" for n in count())
        executor.run(run_id=next(ids) if store else None)  # type: ignore[attr-defined]

        def unfinish(run_id: str) -> None:
            connection = sqlite3.connect(db)
            with connection:
                connection.execute("UPDATE runs SET status = 'failed' WHERE run_id = ?", (run_id,))
            connection.close()

        def run() -> float:
            run_id = next(ids) if store else None
            if mode in ("reused", "finished"):
                executor.run(run_id=run_id)  # type: ignore[attr-defined]
                if mode == "reused":
                    assert run_id is not None
                    unfinish(run_id)
            start = time.perf_counter()
            result = executor.run(run_id=run_id)  # type: ignore[attr-defined]
            elapsed = time.perf_counter() - start
            reused = all(step.reused for step in result.steps.values())
            assert reused == (mode in ("reused", "finished")), f"{mode}: reuse went wrong"
            return elapsed

        try:
            yield run
        finally:
            if store is not None:
                store.close()


def groups() -> list[Group]:
    """The durable-run group."""
    return [
        Group(
            f"D1. A {STEPS}-step chain of async no-op steps, with and without a SQLite run "
            f"store; resumes that reuse every step",
            subjects=[
                Subject("plain", "no store", lambda ops: subject("plain", ops)),
                Subject("stored", "SqliteRunStore", lambda ops: subject("stored", ops)),
                Subject("reused", "resume, every step reused", lambda ops: subject("reused", ops)),
                Subject(
                    "finished", "resume of a finished run", lambda ops: subject("finished", ops)
                ),
            ],
            rows=[
                Row("stored", "plain", MaxOverhead(STORED_OVERHEAD, floor="plain")),
                Row("reused", "plain", MaxTime(REUSED_TIME)),
                Row("finished", "plain", MaxTime(REUSED_TIME)),
            ],
            ops=STEPS,
            quick_ops=QUICK_STEPS,
            noun="step",
            note=(
                "per step; stored: overhead over the plain run (claim, batched writes, "
                "final write); reused and finished: the whole resume's time per step"
            ),
        )
    ]
