"""``agentbridge run --runner NAME=dask:ADDRESS``: a workflow file's steps on a Dask
cluster the command connects to (a real scheduler on 127.0.0.1, the CLI in its own
interpreter)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._helpers import PROJECT, STEPS, run_cli

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The address of a Dask cluster of one worker thread in this process, which can
    import the CLI tests' steps."""
    from distributed import LocalCluster

    monkeypatch.syspath_prepend(str(PROJECT))
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        local_directory=str(tmp_path / "dask"),
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def on_cluster(tmp_path: Path) -> Path:
    """A workflow file whose one step runs on the runner named ``cluster``."""
    workflow = tmp_path / "on_cluster.yaml"
    workflow.write_text(
        "name: pids\nsteps:\n  - {id: there, function: cli_pid, runner: cluster}\n",
        encoding="utf-8",
    )
    return workflow


def test_the_steps_naming_the_runner_run_on_the_cluster_it_connects_to(
    scheduler: str, tmp_path: Path
) -> None:
    workflow = tmp_path / "pids.yaml"
    workflow.write_text(
        "name: pids\nsteps:\n"
        "  - {id: here, function: cli_pid}\n"
        "  - {id: there, function: cli_pid, runner: cluster}\n",
        encoding="utf-8",
    )
    args = ["run", workflow, "--import", STEPS, "--runner", f"cluster=dask:{scheduler}", "--json"]
    done = run_cli(args, cwd=PROJECT, timeout=60)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps["there"]["output"] == os.getpid()  # the cluster's worker thread is here
    assert steps["here"]["output"] != os.getpid()  # the CLI's own process ran this one


def test_validate_checks_against_the_runners_given_without_reaching_them(
    on_cluster: Path,
) -> None:
    # Nothing listens on port 1: validating must not try to connect (it would wait out
    # the runner's connect timeout, then fail).
    args = ["validate", on_cluster, "--import", STEPS, "--runner", "cluster=dask:tcp://127.0.0.1:1"]
    done = run_cli(args, cwd=PROJECT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_an_engine_that_cannot_be_reached_is_a_clear_error_before_anything_runs(
    on_cluster: Path,
) -> None:
    args = ["run", on_cluster, "--import", STEPS, "--runner", "cluster=dask:tcp://127.0.0.1:1"]
    done = run_cli(args, cwd=PROJECT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "runner 'cluster': the Dask cluster at tcp://127.0.0.1:1 could not be reached" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no progress: nothing ran
