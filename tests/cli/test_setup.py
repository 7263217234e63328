"""``--runner`` and ``--limit``: runners and load limits given on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._helpers import PROJECT, STEPS, Invoke, WriteWorkflow, run_cli

pytestmark = pytest.mark.timeout(60)

ON_POOL = """
name: pids
steps:
  - {id: here, function: cli_pid}
  - {id: away, function: cli_pid, runner: pool}
"""


def test_a_process_runner_given_on_the_command_line_runs_the_steps_that_name_it(
    write_workflow: WriteWorkflow,
) -> None:
    done = run_cli(
        ["run", write_workflow(ON_POOL), "--import", STEPS, "--runner", "pool=process:1", "--json"],
        cwd=PROJECT,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps["away"]["output"] != steps["here"]["output"]  # another process ran it


def test_a_step_naming_a_runner_nobody_gave_is_refused_before_anything_runs(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(ON_POOL), "--import", STEPS)
    assert result.exit_code == 2
    assert "unknown runner 'pool'" in result.stderr
    assert "pids" not in result.stdout  # no progress: nothing ran


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("pool", "is not NAME=KIND[:ARGUMENT]"),
        ("pool=", "is not NAME=KIND[:ARGUMENT]"),
        ("=process", "is not NAME=KIND[:ARGUMENT]"),
        ("my-pool=process", "not an identifier"),
        ("thread=process", "'thread' is built in"),
        ("pool=spark", "unknown runner kind 'spark'"),
        ("pool=process:0", "number of worker processes, got '0'"),
        ("pool=process:many", "number of worker processes, got 'many'"),
    ],
)
def test_a_malformed_runner_is_a_usage_error_that_says_what_is_wrong(
    invoke: Invoke, write_workflow: WriteWorkflow, spec: str, says: str
) -> None:
    result = invoke("validate", write_workflow(ON_POOL), "--import", STEPS, "--runner", spec)
    assert result.exit_code == 2
    assert says in result.stderr


def test_a_runner_given_twice_is_a_usage_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow(ON_POOL)
    result = invoke("validate", path, "--runner", "pool=process", "--runner", "pool=process:2")
    assert result.exit_code == 2
    assert "'pool' is given twice" in result.stderr


def _fan_out(steps: int) -> str:
    lines = ["name: wide", "steps:"]
    lines += [
        f"  - {{id: s{i}, function: cli_add, inputs: {{a: {i}, b: 1}}}}" for i in range(steps)
    ]
    return "\n".join(lines) + "\n"


def test_a_limit_can_be_lowered_and_raised(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    small = write_workflow(_fan_out(3))
    lowered = invoke("validate", small, "--import", STEPS, "--limit", "max_steps=2")
    assert lowered.exit_code == 2
    assert "max_steps" in lowered.stderr

    large = write_workflow(_fan_out(10_001))  # one step over the default limit
    refused = invoke("graph", large)
    assert refused.exit_code == 2
    assert "--limit max_steps=... on the command line" in refused.stderr
    raised = invoke("graph", large, "--limit", "max-steps=20_000")
    assert raised.exit_code == 0, raised.stderr
    assert "s10000" in raised.stdout


def test_a_limit_raised_applies_to_the_inputs_file_too(
    invoke: Invoke, write_workflow: WriteWorkflow, tmp_path: Path
) -> None:
    workflow = write_workflow(
        "name: e\ninputs: [v]\nsteps:\n"
        "  - {id: e, tool: cli_echo, inputs: {value: '${inputs.v}'}}\n"
    )
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"v": "x" * 2_000}), encoding="utf-8")
    args = ("run", workflow, "--import", STEPS, "--inputs", inputs, "--json")
    assert invoke(*args, "--limit", "max_string_length=1000").exit_code == 2
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"]["e"]["output"] == "x" * 2_000


@pytest.mark.parametrize(
    ("limit", "says"),
    [
        ("max_stepz=5", "one of the limits: max_bytes"),
        ("max_steps", "is not LIMIT=NUMBER"),
        ("max_steps=lots", "takes a whole number, got 'lots'"),
        ("max_depth=500", "200"),
        ("max_steps=0", "max_steps"),
    ],
)
def test_a_malformed_limit_is_a_usage_error_that_says_what_is_wrong(
    invoke: Invoke, write_workflow: WriteWorkflow, limit: str, says: str
) -> None:
    result = invoke("validate", write_workflow(ON_POOL), "--limit", limit)
    assert result.exit_code == 2
    assert says in result.stderr
