"""Step-runner benchmarks (issue #10).

- R1. A fan-out of four independent steps of about half a second of pure-Python work
  each runs as one workflow, once with ``runner: thread`` (the steps take turns on the
  GIL) and once with ``runner: process`` on a :class:`agentbridge.ProcessRunner` with
  one worker per core (the pool is started and warmed before timing, as it is reused
  across runs). The ratio is the process run's time over the thread run's: the
  speed-up is its inverse, at best the number of cores.
- R2-R7. A fan-out of 200 and a chain of 50 tiny steps on Dask (a cluster of threads,
  and one of processes) and on Ray, as a workflow on the engine's runner against the
  raw engine doing the same graph: ``client.submit`` + ``gather`` (a chain passes each
  future to the next submit), ``ray.remote`` + ``ray.get`` (a chain passes each
  ``ObjectRef``). The engines are started once, before timing. A third subject runs
  the raw graph learning each task's outcome as it ends, by the engine's
  done-callbacks (what any scheduler of steps must do): its rows show how much of the
  runner's gap is the engine's own cost of telling outcomes one by one.
- R8. Local scaling: the cost per step of a 50,000-step async fan-out against a
  1,000-step one (target: within 1.2x), and the peak memory per step of each,
  measured once with :mod:`tracemalloc` and printed in the group's note.
"""

from __future__ import annotations

import atexit
import math
import os
import secrets
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from typing import Any

from _harness import Group, MaxRatio, Row, Runner, Subject, Unavailable

__all__ = ("burn", "groups", "inc", "noop")

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


def inc(x: int = 0) -> int:
    """A tiny step: the step before's output plus one."""
    return x + 1


async def noop() -> None:
    """A tiny async step."""


#: Engines started once per process, by kind, shared by a group's subjects.
_ENGINES: dict[str, Any] = {}


def _engine(kind: str) -> Any:
    """The started runner of ``kind`` (``dask-threads``, ``dask-processes``, ``ray``)."""
    if kind not in _ENGINES:
        import agentbridge as ab

        try:
            if kind == "ray":
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                os.environ.setdefault("RAY_AUTH_MODE", "token")  # no ~/.ray/auth_token
                os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
                runner: Any = ab.RayRunner(num_cpus=os.cpu_count())
            else:
                runner = ab.DaskRunner(processes=kind == "dask-processes", n_workers=1)
            runner.start()
        except (ImportError, ab.RunnerError) as exc:
            raise Unavailable(f"{kind}: {exc}") from None
        atexit.register(runner.close)
        _ENGINES[kind] = runner
    return _ENGINES[kind]


def _graph(shape: str, steps: int, runner_name: str | None) -> Any:
    import agentbridge as ab

    def step(i: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"id": f"s{i}", "function": inc}
        if shape == "chain" and i:
            spec["inputs"] = {"x": f"${{steps.s{i - 1}.output}}"}
        if runner_name:
            spec["runner"] = runner_name
        return spec

    return ab.Workflow.from_dict({"name": shape, "steps": [step(i) for i in range(steps)]})


def _timed(operation: Callable[[], object]) -> Runner:
    def run() -> float:
        start = time.perf_counter()
        operation()
        return time.perf_counter() - start

    return run


@contextmanager
def on_runner(kind: str, shape: str, ops: int) -> Iterator[Runner]:
    """The graph of ``ops`` steps as a workflow on the engine's runner."""
    import agentbridge as ab

    executor = ab.Executor(_graph(shape, ops, "engine"), runners={"engine": _engine(kind)})
    executor.run()  # warms the portal and the engine's workers, untimed
    yield _timed(executor.run)


def _each_done(futures: list[Any]) -> None:
    """Wait for every one of ``futures`` (``concurrent.futures`` or Dask's), learning
    each outcome by its own done-callback, as a scheduler of steps must."""
    import threading

    left = [len(futures)]
    lock, done = threading.Lock(), threading.Event()

    def finished(future: Any) -> None:
        future.result()
        with lock:
            left[0] -= 1
            if not left[0]:
                done.set()

    for future in futures:
        future.add_done_callback(finished)
    done.wait()


@contextmanager
def raw(kind: str, shape: str, ops: int, *, each: bool = False) -> Iterator[Runner]:
    """The same graph on the raw engine; ``each``: with every task's outcome learnt as
    it ends, through the engine's done-callbacks (``ObjectRef.future()``, a Dask
    future's), not by one wait for the last or for all of them."""
    engine = _engine(kind)
    if kind == "ray":
        import ray

        remote = ray.remote(max_retries=0)(inc)

        def run_ray() -> None:
            refs = [remote.remote(0) if shape == "chain" else remote.remote()]
            for _ in range(ops - 1):
                refs.append(remote.remote(refs[-1]) if shape == "chain" else remote.remote())
            if each:
                _each_done([ref.future() for ref in refs])
            else:
                ray.get(refs[-1] if shape == "chain" else refs)

        operation: Callable[[], None] = run_ray
    else:
        client = engine.client

        def run_dask() -> None:
            futures = [client.submit(inc, 0, pure=False)]
            for _ in range(ops - 1):
                upstream = (futures[-1],) if shape == "chain" else ()
                futures.append(client.submit(inc, *upstream, pure=False))
            if each:
                _each_done(futures)
            else:
                client.gather(futures[-1:] if shape == "chain" else futures)

        operation = run_dask
    operation()
    yield _timed(operation)


def _engine_group(number: int, kind: str, shape: str, steps: int) -> Group:
    label = {"dask-threads": "Dask (threads)", "dask-processes": "Dask (processes)"}.get(
        kind, "Ray"
    )
    what = f"{steps}-step fan-out" if shape == "fan-out" else f"{steps}-step chain"
    return Group(
        f"R{number}. {label}: {what} of tiny steps, runner vs raw engine",
        subjects=[
            Subject("ab", f"runner: {kind}", partial(on_runner, kind, shape)),
            Subject("raw", "raw engine", partial(raw, kind, shape)),
            Subject("each", "raw, each outcome", partial(raw, kind, shape, each=True)),
        ],
        rows=[Row("ab", "raw", MaxRatio(1.1)), Row("each", "raw"), Row("ab", "each")],
        ops=steps,
        quick_ops=steps,
        noun="step",
        note=(
            "raw: client.submit + gather, ray.remote + ray.get; a raw chain passes "
            "futures along, the workflow brings each output back for its expressions; "
            "raw, each outcome: the raw graph, each task's outcome learnt by its "
            "done-callback (the engine's floor for a scheduler of steps)"
        ),
    )


#: The two fan-out sizes of R8.
SMALL, LARGE = 1_000, 50_000


def _async_fan_out(steps: int) -> Any:
    import agentbridge as ab

    return ab.Executor(
        ab.Workflow.from_dict(
            {"name": "wide", "steps": [{"id": f"s{i}", "function": noop} for i in range(steps)]},
            limits=ab.LoadLimits(max_steps=steps),
        )
    )


@contextmanager
def async_fan_out(size: int, ops: int) -> Iterator[Runner]:
    """``ops`` steps as fan-outs of ``size`` steps (one of them if ``size`` is larger)."""
    import anyio

    size = min(size, ops)
    executor = _async_fan_out(size)
    runs = math.ceil(ops / size)

    async def run_all() -> float:
        start = time.perf_counter()
        for _ in range(runs):
            await executor.run_async()
        return (time.perf_counter() - start) * ops / (runs * size)

    anyio.run(executor.run_async)
    yield lambda: anyio.run(run_all)


def peak_bytes_per_step(steps: int) -> float:
    """The peak memory :mod:`tracemalloc` sees during one async fan-out, per step."""
    import anyio

    executor = _async_fan_out(steps)
    anyio.run(executor.run_async)
    tracemalloc.start()
    try:
        anyio.run(executor.run_async)
        return tracemalloc.get_traced_memory()[1] / steps
    finally:
        tracemalloc.stop()


def _scaling_group() -> Group:
    memory = ", ".join(f"{n:,} steps {peak_bytes_per_step(n):,.0f} B" for n in (SMALL, LARGE))
    return Group(
        f"R8. Local scaling: async fan-out of {LARGE:,} no-op steps vs {SMALL:,}, per step",
        subjects=[
            Subject("large", f"fan-out of {LARGE:,}", partial(async_fan_out, LARGE)),
            Subject("small", f"fan-outs of {SMALL:,}", partial(async_fan_out, SMALL)),
        ],
        rows=[Row("large", "small", MaxRatio(1.2))],
        ops=LARGE,
        quick_ops=5 * SMALL,
        noun="step",
        note=f"peak memory per step (tracemalloc): {memory}",
    )


def groups() -> list[Group]:
    """The runner groups."""
    engines = [
        _engine_group(number, kind, shape, steps)
        for number, (kind, shape, steps) in enumerate(
            [
                (kind, shape, steps)
                for kind in ("dask-threads", "dask-processes", "ray")
                for shape, steps in (("fan-out", 200), ("chain", 50))
            ],
            start=2,
        )
    ]
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
        ),
        *engines,
        _scaling_group(),
    ]
