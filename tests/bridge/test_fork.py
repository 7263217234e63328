"""fork: a child process never inherits a dead portal; its first ``run_sync`` works.

Forking the pytest process itself would copy its threads' state into the child, so
every test runs a child script that forks, and reports back through its stdout. The
forked grandchildren report their results through a pipe and their exit status; the
script waits for them with a deadline and kills one that hangs.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from ._subproc import BACKENDS, run_snippet

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not hasattr(__import__("os"), "fork") or sys.platform == "darwin",
        reason="needs os.fork (and a fork-safe platform)",
    ),
]

#: Helpers shared by the fork scripts: run a child, collect what it wrote, bounded.
FORK_HELPERS = """
    import json, os, sys, threading, time, warnings
    import anyio, anyio.lowlevel
    import agentbridge as ab

    # Python 3.12+ warns that forking a multi-threaded process may deadlock; that risk
    # is exactly what these scripts check.
    warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)

    backend = sys.argv[1]

    async def double(value):
        await anyio.lowlevel.checkpoint()
        return 2 * value

    async def where():
        await anyio.lowlevel.checkpoint()
        return os.getpid()

    async def identity():
        return anyio.lowlevel.current_token().native_token

    def child_body():
        # Runs in a forked child: report what the bridge does there.
        inherited = ab.get_portal_manager().open_portals
        results = [ab.run_sync(double, i, backend=backend) for i in range(5)]
        ran_in = ab.run_sync(where, backend=backend)
        return {
            "inherited_portals": inherited,
            "results": results,
            "ran_in_child": ran_in == os.getpid(),
            "open_portals": ab.get_portal_manager().open_portals,
        }

    def fork_and_run(body, timeout=15, exit=sys.exit):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 0
            try:
                report = body()
            except BaseException as exc:
                report, code = {"error": repr(exc)}, 3
            os.write(write_end, json.dumps(report).encode())
            os.close(write_end)
            exit(code)  # sys.exit: a normal exit, the child's atexit hooks run too
        os.close(write_end)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                os.close(read_end)
                return {"error": f"child hung for {timeout} s and was killed"}
            time.sleep(0.01)
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
        os.close(read_end)
        report = json.loads(data) if data else {}
        report["exitcode"] = os.waitstatus_to_exitcode(status)
        return report
"""

EXPECTED_CHILD = {
    "inherited_portals": 0,
    "results": [0, 2, 4, 6, 8],
    "ran_in_child": True,
    "open_portals": 1,
    "exitcode": 0,
}


def run_fork_script(body: str, backend: str) -> list[object]:
    """Run FORK_HELPERS + ``body`` and return the JSON reports it printed, one a line."""
    script = textwrap.dedent(FORK_HELPERS) + textwrap.dedent(body)
    outcome = run_snippet(script, args=[backend], timeout=40)
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stderr == "", outcome.describe()
    return [json.loads(line) for line in outcome.lines]


@pytest.mark.parametrize("backend", BACKENDS)
def test_child_after_fork_with_a_portal_open_in_the_parent(backend: str) -> None:
    """The parent's main thread opened a portal before forking: the child starts with
    no portal (the inherited one has no loop thread there), its calls open a fresh one
    that runs in the child and return the right results, and it exits 0. The parent's
    portal is untouched: same loop after the fork.
    """
    reports = run_fork_script(
        """
        before = ab.run_sync(identity, backend=backend)
        print(json.dumps(fork_and_run(child_body)))
        print(json.dumps({"parent_same_loop": ab.run_sync(identity, backend=backend) is before}))
        """,
        backend,
    )
    assert reports == [EXPECTED_CHILD, {"parent_same_loop": True}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_child_after_fork_during_a_call_from_another_thread(backend: str) -> None:
    """Another thread's call is running on its portal at the moment of the fork (and the
    main thread has a portal too): the child's calls work, and the in-flight call still
    completes in the parent afterwards.
    """
    reports = run_fork_script(
        """
        ab.run_sync(identity, backend=backend)
        running, stop, outcome = threading.Event(), threading.Event(), []

        async def busy():
            running.set()
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                await anyio.sleep(0.005)
            return "finished"

        thread = threading.Thread(target=lambda: outcome.append(ab.run_sync(busy, backend=backend)))
        thread.start()
        assert running.wait(10)
        print(json.dumps(fork_and_run(child_body)))
        stop.set()
        thread.join(10)
        print(json.dumps({"in_flight": outcome}))
        """,
        backend,
    )
    assert reports == [EXPECTED_CHILD, {"in_flight": ["finished"]}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_prefork_server_style(backend: str) -> None:
    """A prefork server (gunicorn --preload style): the parent makes a call at import
    time, then forks two workers; each worker makes calls from its main thread and
    from a thread of its own, and reports correct results computed in itself. The
    parent keeps using its portal afterwards.
    """
    reports = run_fork_script(
        """
        warmup = ab.run_sync(double, 21, backend=backend)  # "import time"
        before = ab.run_sync(identity, backend=backend)

        def worker():
            report = child_body()
            threaded = []
            thread = threading.Thread(
                target=lambda: threaded.append(ab.run_sync(double, 50, backend=backend))
            )
            thread.start()
            thread.join(10)
            report["threaded"] = threaded
            return report

        for _ in range(2):
            print(json.dumps(fork_and_run(worker)))
        print(json.dumps({
            "warmup": warmup,
            "parent_same_loop": ab.run_sync(identity, backend=backend) is before,
            "parent_after": ab.run_sync(double, 7, backend=backend),
        }))
        """,
        backend,
    )
    worker = {**EXPECTED_CHILD, "threaded": [100]}
    assert reports == [worker, worker, {"warmup": 42, "parent_same_loop": True, "parent_after": 14}]


WORKERS = [
    pytest.param("asyncio", "ab.to_thread", id="asyncio-ab.to_thread"),
    pytest.param("asyncio", "anyio.to_thread", id="asyncio-anyio.to_thread"),
    pytest.param("trio", "ab.to_thread", id="trio-ab.to_thread"),
    pytest.param("trio", "anyio.to_thread", id="trio-anyio.to_thread"),
    pytest.param("trio", "trio.to_thread", id="trio-trio.to_thread"),
]


@pytest.mark.parametrize(("backend", "offload"), WORKERS)
def test_child_forked_from_a_worker_thread_opens_its_own_portal(backend: str, offload: str) -> None:
    """A child forked inside a worker thread of a running loop (``ab.to_thread``,
    ``anyio.to_thread``, ``trio.to_thread``) is no worker there: the loop that spawned
    the thread does not exist in the child. Its first call opens a fresh portal and
    runs in the child instead of waiting forever for the parent's loop. In the parent,
    the same worker thread still reaches its host loop afterwards.
    """
    hop = "ab.to_thread" if offload == "ab.to_thread" else f"{offload}.run_sync"
    reports = run_fork_script(
        f"""
        import trio

        async def host_token():
            return id(anyio.lowlevel.current_token().native_token)

        def in_worker(host):
            # The child exits with os._exit: in a worker thread, SystemExit would be
            # caught by the worker's own loop, which waits for work forever.
            report = fork_and_run(child_body, timeout=8, exit=os._exit)
            report["parent_still_on_host"] = ab.run_sync(host_token) == host
            return report

        async def main():
            host = await host_token()
            return await {hop}(in_worker, host)

        print(json.dumps(anyio.run(main, backend=backend)))
        """,
        backend,
    )
    assert reports == [{**EXPECTED_CHILD, "parent_still_on_host": True}]


FORK_WHILE_THREADS_CALL = """
    import trio

    stop = threading.Event()
    calls = [0, 0]

    def caller(slot):
        while not stop.is_set():
            ab.run_sync(double, 1, backend=backend)
            calls[slot] += 1

    threads = [threading.Thread(target=caller, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    while min(calls) == 0:  # both threads have a portal and are calling
        time.sleep(0.001)

    hung = exited = 0
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:
            os._exit(0)  # the child runs nothing of its own: only fork's own hooks
        deadline = time.monotonic() + 3
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exited += os.waitstatus_to_exitcode(status) == 0
                break
            if time.monotonic() > deadline:
                hung += 1
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                break
            time.sleep(0.001)
        if hung:
            break  # one hang is the failure; do not wait for more of them
    stop.set()
    for thread in threads:
        thread.join(10)
    print(json.dumps({"hung": hung, "exited": exited, "callers_done": calls[0] > 0 < calls[1]}))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fork_while_two_threads_call_never_deadlocks_the_child(backend: str) -> None:
    """Forking again and again while two other threads make calls in a loop: every
    child exits at once. The child's thread cleanup (which finalises the other threads'
    portal holders) runs before the after-fork hook; it must neither talk to an
    inherited loop nor wait on a lock a parent thread held at the fork.
    """
    forks = 60
    reports = run_fork_script(FORK_WHILE_THREADS_CALL.replace("FORKS", str(forks)), backend)
    assert reports == [{"hung": 0, "exited": forks, "callers_done": True}]
