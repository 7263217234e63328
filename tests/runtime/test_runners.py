"""Step runners by name: ``runner: thread`` and ``runner: process``, on asyncio and trio.

The process tests share one two-worker :class:`ab.ProcessRunner` (its start-up, about
0.9 s with forkserver, is paid once), and a manager process whose barrier and events
let the worker processes and the test wait for each other with bounded timeouts.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentbridge as ab

from . import _process_steps as steps
from ._helpers import build

pytestmark = pytest.mark.timeout(60)

BOUND = 20.0  # seconds any wait across processes may take before the test fails


@pytest.fixture(scope="module")
def runner() -> Iterator[ab.ProcessRunner]:
    with ab.ProcessRunner(max_workers=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def manager() -> Iterator[Any]:
    with multiprocessing.get_context("spawn").Manager() as shared:
        yield shared


#: The inputs of ``steps.wait_for``: a step that holds its worker until released.
HOLD = {"event": "${inputs.e}", "timeout": BOUND}


def _on(runner_name: str, **step: Any) -> dict[str, Any]:
    return {**step, "runner": runner_name}


async def _run_holding(
    runner: ab.ProcessRunner,
    manager: Any,
    workflow: ab.Workflow,
    expected: type[ab.WorkflowError],
    **options: Any,
) -> Any:
    """Run ``workflow`` (its input ``e``: a manager's event), expecting it to raise
    ``expected``; then release every held step. The exception raised."""
    release = manager.Event()
    try:
        with pytest.raises(expected) as caught:
            await ab.Runtime(runners={"cpu": runner}).run_async(workflow, {"e": release}, **options)
    finally:
        release.set()
    return caught.value


# --- naming and validation: nothing runs -------------------------------------------------


def test_a_runner_name_is_a_plain_identifier_reported_with_its_line() -> None:
    text = "name: t\nsteps:\n  - id: a\n    function: f\n    runner: tcp://10.0.0.1:8786\n"
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml_string(text)
    (problem,) = caught.value.problems
    assert problem.step_id == "a"
    assert problem.line == 3
    assert "runner must be the name of a runner" in problem.message
    with pytest.raises(ab.WorkflowValidationError, match="runner must be the name"):
        ab.Step("a", "function", steps.pid, runner="pkg.module:Runner")
    assert ab.Step("a", "function", steps.pid, runner="cpu").runner == "cpu"
    assert ab.Step("a", "function", steps.pid).runner is None


def test_an_unknown_runner_is_refused_before_anything_runs_listing_the_known_ones(
    runner: ab.ProcessRunner, tmp_path: Path
) -> None:
    flag = tmp_path / "ran"
    workflow = build(
        {"id": "first", "function": steps.mark, "inputs": {"path": str(flag)}},
        _on("gpu", id="later", function=steps.pid),
    )
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Runtime(runners={"cpu": runner}).run(workflow)
    (problem,) = caught.value.problems
    assert problem.step_id == "later"
    assert "unknown runner 'gpu'" in problem.message
    assert "cpu, process, thread" in problem.message
    assert not flag.exists()


def _closure() -> Any:
    captured = 1

    def inner() -> int:
        return captured

    return inner


class _Agent:
    def run(self) -> str:
        return "hi"


def test_what_cannot_cross_to_a_process_is_refused_naming_the_step_and_why() -> None:
    workflow = build(
        _on("process", id="lam", function=lambda: 1),
        _on("process", id="clo", function=_closure()),
        _on("process", id="bot", agent=_Agent()),
        _on("process", id="fine", function=steps.pid),
    )
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Executor(workflow)
    problems = {problem.step_id: problem.message for problem in caught.value.problems}
    assert set(problems) == {"lam", "clo", "bot"}
    assert "cannot be pickled" in problems["lam"]
    assert "module-level function" in problems["clo"]
    assert "agent step cannot run on a process runner" in problems["bot"]


def test_the_runners_mapping_is_checked() -> None:
    with pytest.raises(ab.ConfigurationError, match="'thread' is built in"):
        ab.Runtime(runners={"thread": ab.ProcessRunner(1)})
    with pytest.raises(ab.ConfigurationError, match="must be a runner"):
        ab.Runtime(runners={"cpu": object()})  # type: ignore[dict-item]
    with pytest.raises(ab.ConfigurationError, match="identifier"):
        ab.Executor(build({"id": "a", "function": steps.pid}), runners={"a b": ab.ProcessRunner(1)})
    with pytest.raises(ab.ConfigurationError, match="fork"):
        ab.ProcessRunner(1, start_method="fork")
    with pytest.raises(ab.ConfigurationError, match="max_workers"):
        ab.ProcessRunner(0)


def test_a_closed_runner_fails_the_step_clearly() -> None:
    closed = ab.ProcessRunner(1)
    closed.close()
    result = ab.Runtime(runners={"cpu": closed}).executor(
        build(_on("cpu", id="a", function=steps.pid))
    )
    with pytest.raises(ab.StepFailedError) as caught:
        result.run()
    assert isinstance(caught.value.__cause__, ab.RunnerError)
    assert "closed" in str(caught.value.__cause__)


# --- running ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_thread_is_built_in_and_runs_in_this_process() -> None:
    result = await ab.run_workflow_async(build(_on("thread", id="a", function=steps.pid)))
    assert result.outputs == {"a": os.getpid()}


@pytest.mark.anyio
async def test_outputs_come_back_from_worker_processes_for_later_expressions(
    runner: ab.ProcessRunner,
) -> None:
    workflow = build(
        _on("cpu", id="where", function=steps.pid),
        _on("cpu", id="sum", function=steps.add, inputs={"a": "${steps.where.output}", "b": 1}),
        {"id": "local", "function": steps.add, "inputs": {"a": "${steps.sum.output}", "b": 1}},
    )
    result = await ab.Runtime(runners={"cpu": runner}).run_async(workflow)
    where = result.outputs["where"]
    assert where != os.getpid()
    assert result.outputs == {"where": where, "sum": where + 1, "local": where + 2}


@pytest.mark.anyio
async def test_two_steps_run_at_once_in_two_processes(
    runner: ab.ProcessRunner, manager: Any
) -> None:
    barrier = manager.Barrier(2, timeout=BOUND)  # passes only if both wait at once
    workflow = build(
        _on("cpu", id="a", function=steps.barrier_pid, inputs={"barrier": "${inputs.b}"}),
        _on("cpu", id="b", function=steps.barrier_pid, inputs={"barrier": "${inputs.b}"}),
        inputs=["b"],
    )
    result = await ab.Runtime(runners={"cpu": runner}).run_async(workflow, {"b": barrier})
    pids = {result.outputs["a"], result.outputs["b"]}
    assert len(pids) == 2
    assert os.getpid() not in pids


@pytest.mark.anyio
async def test_max_concurrency_caps_process_steps(runner: ab.ProcessRunner, manager: Any) -> None:
    entries = manager.list()
    workflow = build(
        *(
            _on("cpu", id=name, function=steps.log, inputs={"entries": "${inputs.l}", "name": name})
            for name in ("a", "b", "c")
        ),
        inputs=["l"],
    )
    runtime = ab.Runtime(runners={"cpu": runner}, max_concurrency=1)
    await runtime.run_async(workflow, {"l": entries})
    logged = list(entries)
    assert sorted(logged) == ["a in", "a out", "b in", "b out", "c in", "c out"]
    pairs = [logged[i : i + 2] for i in range(0, 6, 2)]
    assert all(first[:-3] == last[:-4] for first, last in pairs), logged


@pytest.mark.anyio
async def test_a_step_exception_comes_back_with_its_type_and_traceback(
    runner: ab.ProcessRunner,
) -> None:
    workflow = build(_on("cpu", id="bad", function=steps.fail, inputs={"message": "boom"}))
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.Runtime(runners={"cpu": runner}).run_async(workflow)
    error = caught.value.__cause__
    assert type(error) is ValueError
    assert str(error) == "boom"
    assert "in fail" in str(error.__cause__)
    assert "ValueError: boom" in str(error.__cause__)
    # Its frames here are the runner's only, dropped when the run ended.
    assert (error.__traceback__, error.__cause__.__traceback__) == (None, None)


@pytest.mark.anyio
async def test_an_async_step_runs_to_completion_under_asyncio_in_the_worker(
    runner: ab.ProcessRunner,
) -> None:
    workflow = build(_on("cpu", id="a", function=steps.async_pid, inputs={"x": 21}))
    result = await ab.Runtime(runners={"cpu": runner}).run_async(workflow)
    where, loop_module, doubled = result.outputs["a"]
    assert where != os.getpid()
    assert loop_module.startswith("asyncio")
    assert doubled == 42


@pytest.mark.anyio
async def test_retries_apply_to_process_steps(runner: ab.ProcessRunner, tmp_path: Path) -> None:
    counter = str(tmp_path / "count")
    workflow = build(
        _on(
            "cpu",
            id="flaky",
            function=steps.count_then_succeed,
            inputs={"path": counter, "succeed_on": 2},
            retries=1,
        )
    )
    result = await ab.Runtime(runners={"cpu": runner}).run_async(workflow)
    assert result.steps["flaky"].attempts == 2
    assert result.outputs == {"flaky": 2}


@pytest.mark.anyio
async def test_a_timed_out_step_is_reported_and_its_worker_finishes_in_the_background(
    runner: ab.ProcessRunner, manager: Any
) -> None:
    workflow = build(
        _on("cpu", id="slow", function=steps.wait_for, inputs=HOLD, timeout=0.2), inputs=["e"]
    )
    error = await _run_holding(runner, manager, workflow, ab.StepFailedError)
    step = error.result.steps["slow"]
    assert step.status is ab.StepStatus.TIMED_OUT
    assert step.cancelled_how == "its worker process finishes the call in the background"
    assert step.cancelled_how in str(step.error)
    assert step.to_dict()["cancelled_how"] == step.cancelled_how


@pytest.mark.anyio
async def test_cancelling_a_run_drops_work_waiting_for_a_worker(
    runner: ab.ProcessRunner, manager: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "queued-ran"
    workflow = build(
        _on("cpu", id="hold1", function=steps.wait_for, inputs=HOLD),
        _on("cpu", id="hold2", function=steps.wait_for, inputs=HOLD),
        _on("cpu", id="queued", function=steps.mark, inputs={"path": str(flag)}),
        inputs=["e"],
    )
    error = await _run_holding(runner, manager, workflow, ab.WorkflowTimeoutError, timeout=0.5)
    statuses = {k: v.status for k, v in error.result.steps.items()}
    assert statuses == dict.fromkeys(("hold1", "hold2", "queued"), ab.StepStatus.CANCELLED)
    # Both workers are free again once a run of two steps passes; the dropped step
    # would have run before them.
    after = build(_on("cpu", id="a", function=steps.pid), _on("cpu", id="b", function=steps.pid))
    await ab.Runtime(runners={"cpu": runner}).run_async(after)
    assert not flag.exists()


@pytest.mark.anyio
async def test_cancelling_the_caller_cancels_process_steps(
    runner: ab.ProcessRunner, manager: Any, tmp_path: Path
) -> None:
    release = manager.Event()
    flag = tmp_path / "queued-ran"
    events: list[ab.Event] = []
    workflow = build(
        _on("cpu", id="hold1", function=steps.wait_for, inputs=HOLD),
        _on("cpu", id="hold2", function=steps.wait_for, inputs=HOLD),
        _on("cpu", id="queued", function=steps.mark, inputs={"path": str(flag)}),
        inputs=["e"],
    )
    try:
        with anyio.move_on_after(0.5) as scope:
            async for event in ab.Runtime(runners={"cpu": runner}).stream(workflow, {"e": release}):
                events.append(event)
    finally:
        release.set()
    assert scope.cancelled_caught
    started = {event.step_id for event in events if isinstance(event, ab.StepStarted)}
    assert started == {"hold1", "hold2", "queued"}
    await ab.Runtime(runners={"cpu": runner}).run_async(
        build(_on("cpu", id="a", function=steps.pid), _on("cpu", id="b", function=steps.pid))
    )
    assert not flag.exists()


def test_one_runner_serves_runs_of_many_threads_and_loops(runner: ab.ProcessRunner) -> None:
    workflow = build(_on("cpu", id="a", function=steps.add, inputs={"a": 1, "b": 2}))
    results: dict[str, ab.WorkflowResult] = {}

    def run_on(backend: str) -> None:
        results[backend] = ab.run_workflow(workflow, backend=backend, runners={"cpu": runner})

    threads = [threading.Thread(target=run_on, args=(b,)) for b in ("asyncio", "trio")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert {b: r.outputs for b, r in results.items()} == {"asyncio": {"a": 3}, "trio": {"a": 3}}


@pytest.mark.anyio
async def test_fail_fast_cancels_a_running_process_sibling(
    runner: ab.ProcessRunner, manager: Any
) -> None:
    workflow = build(
        _on("cpu", id="hold", function=steps.wait_for, inputs=HOLD),
        _on("cpu", id="bad", function=steps.fail, inputs={"message": "no"}),
        inputs=["e"],
    )
    error = await _run_holding(runner, manager, workflow, ab.StepFailedError)
    assert error.step_id == "bad"
    hold = error.result.steps["hold"]
    assert hold.status is ab.StepStatus.CANCELLED
    assert hold.cancelled_how == "its worker process finishes the call in the background"
    assert error.result.steps["bad"].cancelled_how is None


@pytest.mark.anyio
async def test_a_worker_that_dies_fails_its_step_and_the_runner_recovers(
    runner: ab.ProcessRunner,
) -> None:
    workflow = build(_on("cpu", id="boom", function=steps.crash))
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.Runtime(runners={"cpu": runner}).run_async(workflow)
    assert isinstance(caught.value.__cause__, ab.WorkerCrashedError)
    again = await ab.Runtime(runners={"cpu": runner}).run_async(
        build(_on("cpu", id="a", function=steps.add, inputs={"a": 1, "b": 1}))
    )
    assert again.outputs == {"a": 2}


@pytest.mark.anyio
async def test_what_cannot_cross_back_or_out_is_a_clear_step_error(
    runner: ab.ProcessRunner,
) -> None:
    workflow = build(
        _on("cpu", id="out", function=steps.unpicklable_result),
        _on("cpu", id="into", function=steps.add, inputs={"a": "${inputs.lock}", "b": 1}),
        inputs=["lock"],
    )
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.Executor(workflow, runners={"cpu": runner}, fail_fast=False).run_async(
            {"lock": _Unpicklable()}
        )
    steps_ = caught.value.result.steps
    assert isinstance(steps_["out"].error, ab.RunnerError)
    assert "cannot be pickled back" in str(steps_["out"].error)
    assert isinstance(steps_["into"].error, ab.RunnerError)
    assert "inputs cannot be pickled" in str(steps_["into"].error)


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("not this one")


def test_the_runtime_imports_multiprocessing_only_once_a_process_runner_is_made() -> None:
    code = (
        "import sys, agentbridge as ab\n"
        "ab.run_workflow, ab.ProcessRunner\n"
        "assert 'multiprocessing' not in sys.modules, 'imported early'\n"
        "ab.ProcessRunner(1)\n"
        "assert 'multiprocessing' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(ab.__file__).parent.parent)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=BOUND)


FORK_CHILD = """
import os, time
import agentbridge as ab
from tests.runtime import _process_steps as steps

def main():
    runner = ab.ProcessRunner(1)
    workflow = ab.Workflow.from_dict(
        {"name": "t", "steps": [{"id": "a", "function": steps.pid, "runner": "cpu"}]}
    )
    ab.run_workflow(workflow, runners={"cpu": runner})  # the parent's pool is up
    child = os.fork()
    if child == 0:
        try:
            ab.run_workflow(workflow, runners={"cpu": runner}, timeout=10)
        except BaseException as exc:
            print("child:", type(exc).__name__, exc, flush=True)
            os._exit(1)
        finally:
            runner.close()  # os._exit skips the exit hooks: the child's workers stop here
        os._exit(0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            print("exit", os.waitstatus_to_exitcode(status), flush=True)
            break
        time.sleep(0.05)  # polling a child process with a bounded deadline
    else:
        os.kill(child, 9)
        print("child hung", flush=True)
    runner.close()

if __name__ == "__main__":
    main()
"""


def test_a_fork_child_gets_workers_of_its_own(tmp_path: Path) -> None:
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(ab.__file__).parent.parent), str(root)]),
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=40
    )
    assert done.stdout.strip().splitlines()[-1] == "exit 0", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("make", "module", "extra"),
    [(ab.DaskRunner, "distributed", "dask"), (ab.RayRunner, "ray", "ray")],
)
def test_an_engine_runner_without_its_extra_says_what_to_install(
    make: Any, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    runner = make()
    with pytest.raises(ab.RunnerError, match=rf"pip install 'agentbridge-runtime\[{extra}\]'"):
        runner.start()
    with pytest.raises(ab.WorkflowValidationError, match=rf"agentbridge-runtime\[{extra}\]"):
        ab.Executor(build(_on("engine", id="a", function=steps.pid)), runners={"engine": runner})
