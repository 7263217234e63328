"""Bridge benchmarks (issues #2 and #9): what one sync-to-async or async-to-thread hop
costs, and what one loop shared by many threads serves.

Every group pits ``agentbridge`` against the cheapest way to do the same hop by hand
(the baseline its target is set against) and against the libraries users reach for.
The awaited coroutine and the offloaded function do nothing, so only the hop is timed.

A hop's cost depends on where the scheduler puts its two threads (27-33 us when they
share a vCPU, 60-80 us when they do not, on the project's VM), so a ratio's baseline
is a raw hop between the very same two threads: the calling thread and the loop
thread of the portal ``run_sync`` uses from it. A group with a target holds only its
two subjects, so nothing unrelated runs in its rounds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from _fixtures import (
    Build,
    agentbridge_api,
    asyncio_loop_thread,
    hosted_subject,
    noop,
    portal,
    require,
    sync_noop,
)
from _harness import Group, MaxRatio, Row, Runner, Subject, simple_runner

__all__ = ("groups",)

#: Worker threads calling at once in the multi-thread group.
THREADS = 8
#: Untimed calls each of those threads makes before its first round.
WARMUP = 20

Operation = Callable[[], object]


# --- ways to make one sync-to-async call ---------------------------------------------------

#: Sets up one way of calling ``noop`` from synchronous code and yields the call.
OperationSetup = Callable[[], AbstractContextManager[Operation]]


@contextmanager
def ab_run_sync(backend: str | None = None) -> Iterator[Operation]:
    """``ab.run_sync(noop, backend=...)``: the candidate."""
    run_sync = agentbridge_api("run_sync")
    if backend == "uvloop":
        require("uvloop")
    if backend is None:
        yield lambda: run_sync(noop)  # the common call: no option passed
        return
    yield lambda: run_sync(noop, backend=backend)


@contextmanager
def one_hop(use_uvloop: bool = False) -> Iterator[Operation]:
    """``run_coroutine_threadsafe(noop(), loop).result()`` to a persistent loop thread."""
    with asyncio_loop_thread(use_uvloop) as loop:
        yield lambda: asyncio.run_coroutine_threadsafe(noop(), loop).result()


@contextmanager
def hop_to_ab_portal(backend: str = "asyncio") -> Iterator[Operation]:
    """A raw hop from the calling thread to the loop of the portal ``ab.run_sync`` uses
    from it: ``run_coroutine_threadsafe(...).result()``, or ``trio.from_thread.run``."""
    if backend == "uvloop":
        require("uvloop")
    portal = agentbridge_api("get_portal_manager")().portal(backend)
    if backend == "trio":
        import trio.from_thread
        import trio.lowlevel

        token = portal.call(trio.lowlevel.current_trio_token)
        yield lambda: trio.from_thread.run(noop, trio_token=token)
        return
    loop = portal.call(asyncio.get_running_loop)
    yield lambda: asyncio.run_coroutine_threadsafe(noop(), loop).result()


@contextmanager
def portal_call(backend: str = "asyncio") -> Iterator[Operation]:
    """A reused anyio portal's ``portal.call(noop)``."""
    with portal(backend) as reused:
        yield lambda: reused.call(noop)


@contextmanager
def asyncio_run() -> Iterator[Operation]:
    """``asyncio.run(noop())``: a new loop for every call."""
    yield lambda: asyncio.run(noop())


@contextmanager
def asgiref_async_to_sync() -> Iterator[Operation]:
    """``asgiref.sync.async_to_sync(noop)()``: a new thread and loop for every call."""
    yield require("asgiref.sync").async_to_sync(noop)


@contextmanager
def anyio_from_thread_run() -> Iterator[Operation]:
    """``anyio.from_thread.run(noop)``: from a worker thread back to its host loop."""
    yield lambda: anyio.from_thread.run(noop)


def caller_subject(key: str, label: str, setup: OperationSetup) -> Subject:
    """Calls made one after the other from the benchmark's own (plain) thread."""

    @contextmanager
    def factory(ops: int) -> Iterator[Runner]:
        with setup() as operation:
            yield simple_runner(operation, ops)

    return Subject(key, label, factory)


# --- many threads calling at once -----------------------------------------------------------


@contextmanager
def thread_gang(setup: OperationSetup, ops: int, threads: int = THREADS) -> Iterator[Runner]:
    """``threads`` persistent threads that each make ``ops // threads`` calls at once.

    Each thread enters ``setup`` once and warms up (so per-thread portals stay warm
    across rounds); a failure there is raised from here. Each round releases all
    threads from a barrier and times until every thread has finished its share.
    """
    share = range(ops // threads)
    ready, start, finish = (threading.Barrier(threads + 1, timeout=120) for _ in range(3))
    stopping = False
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with setup() as operation:
                for _ in range(WARMUP):
                    operation()
                ready.wait()
                while True:
                    start.wait()
                    if stopping:
                        return
                    for _ in share:
                        operation()
                    finish.wait()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            errors.append(exc)
            for barrier in (ready, start, finish):
                barrier.abort()

    def run() -> float:
        start.wait()
        began = time.perf_counter()
        finish.wait()
        return time.perf_counter() - began

    workers = [threading.Thread(target=work, name=f"bench-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        ready.wait()
        yield run
    except threading.BrokenBarrierError:
        if errors:
            raise errors[0] from None
        raise
    finally:
        stopping = True
        if not start.broken:
            start.wait()
        for worker in workers:
            worker.join()


def gang_subject(
    key: str,
    label: str,
    setup: OperationSetup,
    *,
    shared: bool,
    threads: int = THREADS,
    p99: bool = False,
) -> Subject:
    """``threads`` threads calling at once.

    :param shared: enter ``setup`` once for all threads (one portal or loop for all)
        rather than once in each thread
    :param p99: report the 99th percentile of one call's latency in the round (as the
        time of ``ops`` such calls, so the per-call figure is the p99) instead of the
        round's time
    """

    @contextmanager
    def factory(ops: int) -> Iterator[Runner]:
        with ExitStack() as stack:
            per_thread = setup
            if shared:
                operation = stack.enter_context(setup())

                def per_thread() -> AbstractContextManager[Operation]:
                    return nullcontext(operation)

            if not p99:
                yield stack.enter_context(thread_gang(per_thread, ops, threads))
                return
            latencies: list[float] = []
            run = stack.enter_context(thread_gang(_timed(per_thread, latencies), ops, threads))

            def run_p99() -> float:
                latencies.clear()
                run()
                ordered = sorted(latencies)
                return ordered[int(len(ordered) * 0.99)] * ops

            yield run_p99

    return Subject(key, label, factory)


def _timed(setup: OperationSetup, latencies: list[float]) -> OperationSetup:
    """``setup``, with each call's latency appended to ``latencies``."""

    @contextmanager
    def timed() -> Iterator[Operation]:
        with setup() as operation:
            clock = time.perf_counter

            def call() -> None:
                began = clock()
                operation()
                latencies.append(clock() - began)

            yield call

    return timed


@contextmanager
def ab_shared_portal(backend: str = "asyncio") -> Iterator[Operation]:
    """``portal.run_sync(noop)`` on one ``ab.open_portal()`` shared by every thread."""
    with agentbridge_api("open_portal")(backend, name="bench") as shared:
        yield lambda: shared.run_sync(noop)


def stall_subject(key: str, label: str, stall_warning: float) -> Subject:
    """``ab.run_sync(noop)`` from the benchmark's thread with the stall warning at
    ``stall_warning`` seconds (``inf``: off), set at the start of each of its rounds so
    the two subjects of a round can alternate."""
    configure = agentbridge_api("configure")

    @contextmanager
    def factory(ops: int) -> Iterator[Runner]:
        with ab_run_sync() as operation:
            run = simple_runner(operation, ops)

            def run_configured() -> float:
                configure(stall_warning=stall_warning)
                return run()

            yield run_configured
        configure(stall_warning=None)

    return Subject(key, label, factory)


# --- async code on a host loop that stays up across rounds ----------------------------------


def back_to_host(setup: OperationSetup, workers: int = 1) -> Build:
    """Offload ``workers`` worker threads at once, which call back into their host loop
    ``ops`` times in all."""

    def build(ops: int) -> Callable[[], Awaitable[object]]:
        share = range(ops // workers)
        limiter = anyio.CapacityLimiter(workers)

        def worker() -> None:
            with setup() as operation:
                for _ in share:
                    operation()

        async def run() -> None:
            async with anyio.create_task_group() as group:
                for _ in range(workers):
                    group.start_soon(partial(anyio.to_thread.run_sync, worker, limiter=limiter))

        return run

    return build


#: Runs ``sync_noop`` in a worker thread: ``ab.to_thread`` or ``anyio.to_thread.run_sync``.
Offload = Callable[[Callable[[], None]], Coroutine[Any, Any, None]]


def one_at_a_time(make_offload: Callable[[], Offload]) -> Build:
    """Await ``ops`` offloads one after the other."""

    def build(ops: int) -> Callable[[], Awaitable[object]]:
        offload = make_offload()

        async def run() -> None:
            for _ in range(ops):
                await offload(sync_noop)

        return run

    return build


def all_at_once(make_offload: Callable[[], Offload]) -> Build:
    """Start ``ops`` offloads in one task group and wait for them all."""

    def build(ops: int) -> Callable[[], Awaitable[object]]:
        offload = make_offload()

        async def run() -> None:
            async with anyio.create_task_group() as group:
                for _ in range(ops):
                    group.start_soon(offload, sync_noop)

        return run

    return build


def _ab_offload() -> Offload:
    return agentbridge_api("to_thread")  # type: ignore[no-any-return]


def _anyio_offload() -> Offload:
    return anyio.to_thread.run_sync


# --- the groups ----------------------------------------------------------------------------

WITHIN_10_PERCENT = MaxRatio(1.10)
#: At most the baseline's time (at least its throughput).
AT_MOST_THE_BASELINE = MaxRatio(1.0)
#: Within noise of the baseline: the cost of the stall bookkeeping.
WITHIN_2_PERCENT = MaxRatio(1.02)
#: Threads calling one shared portal at once.
SHARED_THREADS = (1, 8, 32, 128)
#: At least 0.97x the baseline's throughput.
WITHIN_3_PERCENT = MaxRatio(1 / 0.97)
#: Concurrent worker threads in the back-to-host groups.
WORKERS = (1, 10, 100)


def groups() -> list[Group]:
    """Every bridge group, in report order."""
    result = [
        Group(
            "1a. run_sync(noop) from a plain thread, asyncio (warm portal)",
            subjects=[
                caller_subject("ab", "ab.run_sync", ab_run_sync),
                caller_subject("hop", "raw hop, same threads", hop_to_ab_portal),
            ],
            rows=[Row("ab", "hop", WITHIN_10_PERCENT)],
            ops=1000,
            quick_ops=100,
            note="the raw hop: run_coroutine_threadsafe(...).result() to the portal's own loop",
        ),
        Group(
            "1a'. run_sync(noop) from a plain thread against other ways, asyncio",
            subjects=[
                caller_subject("ab", "ab.run_sync", ab_run_sync),
                caller_subject("asyncio.run", "asyncio.run", asyncio_run),
                caller_subject("portal", "anyio portal.call", portal_call),
                caller_subject("asgiref", "asgiref async_to_sync", asgiref_async_to_sync),
            ],
            rows=[Row("ab", "asyncio.run"), Row("ab", "portal"), Row("ab", "asgiref")],
            ops=1000,
            quick_ops=100,
        ),
        Group(
            "1b. run_sync(noop, backend='trio') from a plain thread",
            subjects=[
                caller_subject("ab", "ab.run_sync", partial(ab_run_sync, "trio")),
                caller_subject("hop", "raw hop, same threads", partial(hop_to_ab_portal, "trio")),
            ],
            rows=[Row("ab", "hop", WITHIN_10_PERCENT)],
            ops=1000,
            quick_ops=100,
            note="the raw hop: trio.from_thread.run to the portal's own trio loop",
        ),
        Group(
            "1b'. run_sync(noop, backend='trio') against anyio's portal",
            subjects=[
                caller_subject("ab", "ab.run_sync", partial(ab_run_sync, "trio")),
                caller_subject("portal", "anyio portal.call", partial(portal_call, "trio")),
            ],
            rows=[Row("ab", "portal")],
            ops=1000,
            quick_ops=100,
        ),
        Group(
            "1c. run_sync(noop, backend='uvloop') from a plain thread",
            subjects=[
                caller_subject("ab", "ab.run_sync", partial(ab_run_sync, "uvloop")),
                caller_subject("hop", "raw hop, same threads", partial(hop_to_ab_portal, "uvloop")),
            ],
            rows=[Row("ab", "hop", WITHIN_10_PERCENT)],
            ops=1000,
            quick_ops=100,
        ),
        Group(
            f"2. {THREADS} threads calling at once (asyncio)",
            subjects=[
                gang_subject("ab", "ab.run_sync", ab_run_sync, shared=False),
                gang_subject(
                    "shared-loop", "one loop, run_coroutine_threadsafe", one_hop, shared=True
                ),
                gang_subject("shared-portal", "one anyio portal", portal_call, shared=True),
                gang_subject(
                    "own-portal", "one anyio portal per thread", portal_call, shared=False
                ),
            ],
            rows=[
                Row("ab", "shared-loop"),
                Row("ab", "shared-portal"),
                Row("ab", "own-portal"),
            ],
            ops=THREADS * 500,
            quick_ops=THREADS * 25,
            unit="calls/s",
            note="ab.run_sync uses one portal per calling thread",
        ),
    ]
    result += _shared_portal_groups()
    for letter, backend in zip("ab", ("asyncio", "trio"), strict=True):
        for workers in WORKERS:
            result.append(
                Group(
                    f"3{letter}. {workers} worker thread{'s' if workers > 1 else ''} "
                    f"back to their host loop, {backend}",
                    subjects=[
                        hosted_subject(
                            "ab", "ab.run_sync", backend, back_to_host(ab_run_sync, workers)
                        ),
                        hosted_subject(
                            "anyio",
                            "anyio.from_thread.run",
                            backend,
                            back_to_host(anyio_from_thread_run, workers),
                        ),
                    ],
                    rows=[Row("ab", "anyio", WITHIN_3_PERCENT)],
                    ops=2000,
                    quick_ops=200,
                    note="target: at least 0.97x the throughput (time ratio <= 1.031x)",
                )
            )
    letters = iter("abcd")
    for shape, make, ops, quick_ops in (
        ("one at a time", one_at_a_time, 1000, 100),
        ("1,000 at once in a task group", all_at_once, 1000, 1000),
    ):
        for backend in ("asyncio", "trio"):
            result.append(
                Group(
                    f"4{next(letters)}. to_thread(noop) {shape}, {backend}",
                    subjects=[
                        hosted_subject("ab", "ab.to_thread", backend, make(_ab_offload)),
                        hosted_subject(
                            "anyio", "anyio.to_thread.run_sync", backend, make(_anyio_offload)
                        ),
                    ],
                    rows=[Row("ab", "anyio", WITHIN_10_PERCENT)],
                    ops=ops,
                    quick_ops=quick_ops,
                )
            )
    return result


def _shared_portal_groups() -> list[Group]:
    """Issue #9: one shared portal from many threads against one anyio portal and one
    loop shared the same way; and what the stall warning costs a plain call."""
    groups = []
    for number, threads in enumerate(SHARED_THREADS):
        for p99, unit in ((False, "calls/s"), (True, "us")):
            what = "p99 latency of one call" if p99 else "throughput"
            groups.append(
                Group(
                    f"5{'abcd'[number]}{chr(39) if p99 else ''}. one shared portal from "
                    f"{threads} thread{'s' if threads > 1 else ''}, {what} (asyncio)",
                    subjects=[
                        gang_subject(
                            "ab",
                            "ab.open_portal",
                            ab_shared_portal,
                            shared=True,
                            threads=threads,
                            p99=p99,
                        ),
                        gang_subject(
                            "shared-loop",
                            "one loop, run_coroutine_threadsafe",
                            one_hop,
                            shared=True,
                            threads=threads,
                            p99=p99,
                        ),
                        gang_subject(
                            "anyio",
                            "one anyio portal",
                            portal_call,
                            shared=True,
                            threads=threads,
                            p99=p99,
                        ),
                    ],
                    rows=[
                        Row("ab", "shared-loop", AT_MOST_THE_BASELINE),
                        Row("ab", "anyio", AT_MOST_THE_BASELINE),
                    ],
                    ops=threads * 100 if threads < 32 else threads * 25,
                    quick_ops=threads * 5,
                    unit=unit,
                    note="target: the shared loop's throughput and p99 or better",
                )
            )
    groups.append(
        Group(
            "5e. the stall warning's cost on run_sync(noop), asyncio (warm portal)",
            subjects=[
                stall_subject("on", "stall warning at 60 s", 60.0),
                stall_subject("off", "stall warning off", float("inf")),
            ],
            rows=[Row("on", "off", WITHIN_2_PERCENT)],
            ops=1000,
            quick_ops=100,
            note="the same call; only the wait for its outcome differs (timed or not)",
        )
    )
    return groups
