"""What only real worker processes show, on Dask (``processes=True``) and Ray: a worker
that dies mid-step, an output or inputs that cannot be pickled; each a clear error on
its step, the run's other steps and the runner still usable. And a scheduler that
cannot be reached.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentbridge as ab

from .. import _process_steps as steps
from .._helpers import build

Engine = ab.DaskRunner | ab.RayRunner


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ab.DaskRunner]:
    """A Dask cluster of one worker process with one thread, on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("dask-processes")
    with ab.DaskRunner(
        n_workers=1, threads_per_worker=1, processes=True, local_directory=str(directory)
    ) as runner:
        yield runner


@pytest.fixture(params=["dask", "ray"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine in turn, with worker processes."""
    fixture = "dask_processes" if request.param == "dask" else "ray_runner"
    runner: Engine = request.getfixturevalue(fixture)
    return runner


def _on(**step: Any) -> dict[str, Any]:
    return {**step, "runner": "engine"}


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("not this one")


@pytest.mark.anyio
async def test_a_worker_that_dies_is_a_crash_of_its_step_alone(engine: Engine) -> None:
    workflow = build(
        _on(id="boom", function=steps.crash),
        {"id": "local", "function": steps.add, "inputs": {"a": 1, "b": 1}},
    )
    runtime = ab.Runtime(runners={"engine": engine}, fail_fast=False)
    with pytest.raises(ab.StepFailedError) as caught:
        await runtime.run_async(workflow)
    results = caught.value.result.steps
    assert isinstance(results["boom"].error, ab.WorkerCrashedError)
    assert results["boom"].attempts == 1
    assert "died" in str(results["boom"].error)
    assert results["local"].output == 2
    again = await runtime.run_async(build(_on(id="a", function=steps.pid)))
    assert again.outputs["a"] != os.getpid()


@pytest.mark.anyio
async def test_what_cannot_cross_back_or_out_is_a_clear_step_error(engine: Engine) -> None:
    workflow = build(
        _on(id="out", function=steps.unpicklable_result),
        _on(id="into", function=steps.add, inputs={"a": "${inputs.lock}", "b": 1}),
        _on(id="fine", function=steps.add, inputs={"a": 1, "b": 2}),
        inputs=["lock"],
    )
    runtime = ab.Runtime(runners={"engine": engine}, fail_fast=False)
    with pytest.raises(ab.StepFailedError) as caught:
        await runtime.run_async(workflow, {"lock": _Unpicklable()})
    results = caught.value.result.steps
    assert isinstance(results["out"].error, ab.RunnerError)
    assert "cannot be pickled back" in str(results["out"].error)
    assert "return plain data" in str(results["out"].error)
    assert isinstance(results["into"].error, ab.RunnerError)
    assert "inputs can be pickled" in str(results["into"].error)
    assert results["fine"].output == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_scheduler_is_a_clear_error_and_its_steps_fail_alone(
    tmp_path: Path,
) -> None:
    runner = ab.DaskRunner(f"tcp://127.0.0.1:{_free_port()}", connect_timeout=1)
    start = time.monotonic()
    with pytest.raises(ab.RunnerError, match="could not be reached within 1 s"):
        runner.start()
    assert time.monotonic() - start < 15
    workflow = build(
        _on(id="remote", function=steps.pid),
        {"id": "local", "function": steps.mark, "inputs": {"path": str(tmp_path / "m")}},
    )
    with pytest.raises(ab.StepFailedError) as caught:
        ab.Runtime(runners={"engine": runner}, fail_fast=False).run(workflow)
    assert "never started" in str(caught.value.result.steps["remote"].error)
    assert (tmp_path / "m").exists()


#: Started in a fresh interpreter (this one may hold the tests' Ray session): a Ray
#: runner given an address nothing listens at.
UNREACHABLE_RAY = """
import sys, time
import agentbridge as ab
import ray
runner = ab.RayRunner(f"ray://127.0.0.1:{sys.argv[1]}", connect_timeout=1)
start = time.monotonic()
try:
    runner.start()
except ab.RunnerError as exc:
    print(type(exc).__name__, ray.is_initialized(), round(time.monotonic() - start, 1), exc)
"""


def test_an_unreachable_ray_address_is_a_clear_error_within_its_timeout() -> None:
    # ray.init alone retries such an address for minutes.
    done = subprocess.run(
        [sys.executable, "-c", UNREACHABLE_RAY, str(_free_port())],
        capture_output=True,
        text=True,
        timeout=45,
        check=True,
    )
    name, initialised, seconds, message = done.stdout.split(" ", 3)
    assert (name, initialised) == ("RunnerError", "False")
    assert float(seconds) < 5
    assert "the Ray cluster at ray://127.0.0.1:" in message
    assert "could not be reached within 1 s" in message


def test_options_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ab.ConfigurationError, match="leave out the local cluster's options"):
        ab.DaskRunner("tcp://127.0.0.1:8786", n_workers=2)
    with pytest.raises(ab.ConfigurationError, match="leave out the local Ray's options"):
        ab.RayRunner("auto", num_cpus=1)
    with pytest.raises(ab.ConfigurationError, match="capacity must be a whole number"):
        ab.DaskRunner(capacity=0)


def test_a_second_ray_address_in_one_process_is_refused(ray_runner: ab.RayRunner) -> None:
    elsewhere = ab.RayRunner("ray://127.0.0.1:1")
    with pytest.raises(ab.RunnerError, match="already initialised in this process"):
        elsewhere.start()


LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def test_every_engine_process_listens_on_the_loopback_interface_only(
    dask_processes: ab.DaskRunner, dask_threads: ab.DaskRunner, ray_runner: ab.RayRunner
) -> None:
    import psutil

    outward = []
    here = psutil.Process()
    for process in [here, *here.children(recursive=True)]:
        try:
            sockets = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        outward += [
            (process.name(), s.laddr)
            for s in sockets
            if s.status == psutil.CONN_LISTEN and s.laddr.ip not in LOOPBACK
        ]
    assert outward == []


OWN_FOLDER = """
import sys
import agentbridge as ab
from tests.runtime import _process_steps as steps

if __name__ == "__main__":
    workflow = ab.Workflow.from_dict(
        {"name": "t", "steps": [{"id": "a", "function": steps.pid, "runner": "dask"}]}
    )
    with ab.DaskRunner(n_workers=1, processes=sys.argv[2] == "processes",
                       local_directory=sys.argv[1]) as dask:
        ab.run_workflow(workflow, runners={"dask": dask})
"""


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_local_cluster_writes_only_in_its_folder(tmp_path: Path, kind: str) -> None:
    # The system's temporary folder is an empty one of the test's: Dask's default
    # scratch space (/tmp/dask-scratch-space) would appear in it.
    system_tmp, local = tmp_path / "tmp", tmp_path / "local"
    system_tmp.mkdir()
    local.mkdir()
    script = tmp_path / "own_folder.py"
    script.write_text(OWN_FOLDER)
    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "TMPDIR": str(system_tmp),
        "PYTHONPATH": os.pathsep.join([str(Path(ab.__file__).parent.parent), str(root)]),
    }
    done = subprocess.run(
        [sys.executable, str(script), str(local), kind],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert list(system_tmp.iterdir()) == []
    assert list(local.iterdir()) != []


@pytest.mark.anyio
async def test_a_crash_or_an_output_that_cannot_cross_is_its_own_steps_error_in_a_chain(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each dependent is submitted ahead of its upstream (see test_submit_ahead.py): the
    # error stays the upstream's, and the dependent never runs.
    from agentbridge.runtime._engine import EngineRunner

    ahead: list[str] = []
    begin = EngineRunner.begin

    def spying(self: Any, call: Any, kwargs: Any, upstream: Any = (), places: Any = ()) -> Any:
        if upstream:
            ahead.append(call.step.id)
        return begin(self, call, kwargs, upstream, places)

    monkeypatch.setattr(EngineRunner, "begin", spying)
    runtime = ab.Runtime(runners={"engine": engine}, fail_fast=False)
    # Two runs, the crash last: a worker that dies fails whatever else it was running,
    # and loses the outputs it held, which Dask then computes again.
    out = await _upstream_error(runtime, "out", steps.unpicklable_result)
    boom = await _upstream_error(runtime, "boom", steps.crash)
    assert ahead == ["after", "after"]
    assert boom[0] is ab.WorkerCrashedError
    assert "step 'boom': " in boom[1]
    assert out[0] is ab.RunnerError
    assert "step 'out' returned a value that cannot be pickled back" in out[1]


async def _upstream_error(
    runtime: ab.Runtime, upstream: str, function: Any
) -> tuple[type[BaseException], str]:
    """Run ``upstream`` then a step reading its output, on the engine; the type and
    message of the error of ``upstream``, once the dependent was skipped."""
    dependent = {"a": f"${{steps.{upstream}.output}}", "b": 1}
    workflow = build(
        _on(id=upstream, function=function),
        _on(id="after", function=steps.add, inputs=dependent),
    )
    try:
        await runtime.run_async(workflow)
    except ab.StepFailedError as failed:
        results = failed.result.steps
        assert results["after"].status is ab.StepStatus.SKIPPED
        assert results["after"].attempts == 0
        error = results[upstream].error
        assert error is not None
        return type(error), str(error)
    raise AssertionError(f"the run did not fail at step {upstream!r}")
