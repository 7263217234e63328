"""Step-runner benchmarks (issue #10): CPU-bound steps on ``thread`` against ``process``.

A fan-out of four independent steps of about half a second of pure-Python work each
runs as one workflow, once with ``runner: thread`` (the steps take turns on the GIL)
and once with ``runner: process`` on a :class:`agentbridge.ProcessRunner` with one
worker per core (the pool is started and warmed before timing, as it is reused across
runs). The ratio is the process run's time over the thread run's: the speed-up is its
inverse, at best the number of cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, partial

from _harness import Group, MaxRatio, Row, Runner, Subject

__all__ = ("burn", "groups")

#: Steps in the fan-out, and the pure-Python work each does.
STEPS = 4
SECONDS = 0.5


def burn(n: int) -> int:
    """Pure-Python work: holds the GIL throughout."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


@cache
def _calibrated() -> int:
    """The ``n`` for which :func:`burn` takes about :data:`SECONDS` here: measured once,
    so both subjects do the same work."""
    n = 200_000
    start = time.perf_counter()
    burn(n)
    return max(1, int(n * SECONDS / (time.perf_counter() - start)))


@contextmanager
def fan_out(runner_name: str, ops: int) -> Iterator[Runner]:
    """``ops`` runs of the fan-out, with every step on ``runner_name``."""
    import agentbridge as ab

    n = _calibrated()
    workflow = ab.Workflow.from_dict(
        {
            "name": "cpu",
            "steps": [
                {"id": f"s{i}", "function": burn, "inputs": {"n": n}, "runner": runner_name}
                for i in range(STEPS)
            ],
        }
    )
    with ab.ProcessRunner(os.cpu_count()) as pool:
        executor = ab.Executor(workflow, runners={"process": pool})
        executor.run()  # starts and warms the workers (and the portal), untimed

        def run() -> float:
            start = time.perf_counter()
            for _ in range(ops):
                executor.run()
            return time.perf_counter() - start

        yield run


def groups() -> list[Group]:
    """The runner group."""
    return [
        Group(
            f"R1. CPU-bound fan-out: {STEPS} steps of ~{SECONDS:g} s pure Python, thread vs "
            f"process ({os.cpu_count()} cores)",
            subjects=[
                Subject("thread", "runner: thread", partial(fan_out, "thread")),
                Subject("process", "runner: process", partial(fan_out, "process")),
            ],
            rows=[Row("process", "thread", MaxRatio(0.75))],
            ops=1,
            quick_ops=1,
            noun="run",
            note=(
                "the ratio is process time over thread time; the speed-up is its inverse, "
                "ideally the core count (0.5x on 2 cores)"
            ),
        )
    ]
