"""``agentbridge run``: progress and summary, JSON, exit codes, inputs, backends."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import agentbridge as ab
from agentbridge.bridge._settings import BACKEND_NAMES
from agentbridge.cli._app import cli
from agentbridge.cli._options import BACKENDS

from ._helpers import STEPS, Invoke, WriteWorkflow

ADD = """\
    name: adder
    inputs:
      a: {default: 1}
      b: {default: 2}
    steps:
      - id: first
        function: cli_add
        inputs: {a: "${inputs.a}", b: "${inputs.b}"}
      - id: second
        function: cli_add
        inputs: {a: "${steps.first.output}", b: 10}
    outputs:
      total: "${steps.second.output}"
"""

FAILING = """\
    name: breaks
    steps:
      - id: ok
        tool: cli_echo
        inputs: {value: fine}
      - id: broken
        function: cli_boom
        inputs: {message: "the disk is on fire"}
        depends_on: [ok]
      - id: after
        tool: cli_echo
        inputs: {value: "${steps.broken.output}"}
"""


def _lines_with(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(word in line for word in words)]


def test_run_shows_progress_then_a_summary_and_the_outputs(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS)
    assert result.exit_code == 0, result.output
    # Without a terminal, progress is one plain line per event, then the summary table.
    assert "\x1b" not in result.output
    assert _lines_with(result.stdout, "first", "running", "attempt 1")
    assert _lines_with(result.stdout, "second", "succeeded")
    assert _lines_with(result.stdout, "adder", "succeeded in")
    summary_rows = [line for line in result.stdout.splitlines() if "function" in line]
    assert any("first" in row and "succeeded" in row for row in summary_rows)
    assert _lines_with(result.stdout, "total: 13")
    assert result.stderr == ""


def test_json_prints_only_the_result(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["workflow"] == "adder"
    assert data["status"] == "succeeded"
    assert data["outputs"] == {"total": 13}
    assert {step: info["status"] for step, info in data["steps"].items()} == {
        "first": "succeeded",
        "second": "succeeded",
    }
    assert data["steps"]["first"]["output"] == 3
    assert result.stderr == ""


def test_json_stdout_stays_json_when_a_step_prints(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow("""\
        name: chatty
        steps:
          - id: talk
            function: cli_chatty
            inputs: {text: "hello from the step"}
    """)
    result = invoke("run", path, "--import", STEPS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"]["talk"]["output"] == "hello from the step"
    assert "hello from the step" in result.stderr


def test_a_failing_step_exits_1_with_one_message(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(FAILING), "--import", STEPS)
    assert result.exit_code == 1
    assert _lines_with(result.stdout, "broken", "failed", "ValueError")
    assert _lines_with(result.stdout, "after", "skipped")
    assert result.stderr == "Error: step 'broken' failed: ValueError: the disk is on fire\n"
    assert "Traceback" not in result.output


def test_a_failing_step_in_json_mode(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    result = invoke("run", write_workflow(FAILING), "--import", STEPS, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["status"] == "failed"
    assert {step: info["status"] for step, info in data["steps"].items()} == {
        "ok": "succeeded",
        "broken": "failed",
        "after": "skipped",
    }
    assert data["steps"]["broken"]["error"] == {
        "type": "ValueError",
        "message": "the disk is on fire",
    }
    assert "step 'broken' failed" in result.stderr


def test_debug_shows_the_step_traceback(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    result = invoke("run", write_workflow(FAILING), "--import", STEPS, "--debug")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "raise ValueError(message)" in result.stderr
    assert "Error: step 'broken' failed: ValueError: the disk is on fire" in result.stderr


def test_retries_show_in_the_progress(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    key = uuid.uuid4().hex
    path = write_workflow(f"""\
        name: flaky
        steps:
          - id: wobbly
            agent: cli_flaky
            inputs: {{key: "{key}"}}
            retries: 1
    """)
    result = invoke("run", path, "--import", STEPS)
    assert result.exit_code == 0, result.output
    assert _lines_with(result.stdout, "wobbly", "retrying", "ConnectionError")
    assert _lines_with(result.stdout, "wobbly", "running", "attempt 2")
    assert _lines_with(result.stdout, "wobbly", "succeeded", "2 attempts")


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("value=3", 3),
        ("value=2.5", 2.5),
        ("value=true", True),
        ("value=hello", "hello"),
        ("value='3'", "3"),
        ("value=null", None),
        ("value=", ""),
        ("value=a=b", "a=b"),
        ("value=[1, 2]", "[1, 2]"),
        ("value=key: value", "key: value"),
    ],
)
def test_inputs_are_yaml_scalars(
    invoke: Invoke, write_workflow: WriteWorkflow, argument: str, expected: object
) -> None:
    path = write_workflow("""\
        name: echo
        inputs: [value]
        steps:
          - id: echo
            tool: cli_echo
            inputs: {value: "${inputs.value}"}
    """)
    result = invoke("run", path, "--import", STEPS, "--input", argument, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"]["echo"]["output"] == expected


def test_inputs_override_defaults(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    path = write_workflow(ADD)
    result = invoke("run", path, "--import", STEPS, "-i", "a=5", "--input", "b=7", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"total": 22}


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("a", "'a' is not KEY=VALUE"),
        ("=3", "'=3' is not KEY=VALUE"),
    ],
)
def test_a_malformed_input_is_a_usage_error(
    invoke: Invoke, write_workflow: WriteWorkflow, argument: str, message: str
) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "--input", argument)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "value",
    ["!!float abc", "!!int abc", "!!bool maybe", "!!bool", "!!timestamp x", "!!int", "9" * 5_000],
)
def test_an_input_that_does_not_fit_its_yaml_tag_is_a_usage_error(
    invoke: Invoke, write_workflow: WriteWorkflow, value: str
) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "-i", f"a={value}")
    assert result.exit_code == 2
    assert "input 'a'" in result.stderr
    assert "quote it to pass it as a string" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_input_given_twice_is_a_usage_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "-i", "a=1", "-i", "a=2")
    assert result.exit_code == 2
    assert "input 'a' is given twice" in result.stderr


def test_a_missing_required_input_is_a_validation_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow("""\
        name: needs
        inputs: [ticket]
        steps:
          - id: echo
            tool: cli_echo
            inputs: {value: "${inputs.ticket}"}
    """)
    result = invoke("run", path, "--import", STEPS)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid workflow:")
    assert "ticket" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_input_is_a_validation_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "--input", "c=1")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid workflow:")
    assert "'c'" in result.stderr


def test_a_run_timeout_exits_1(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    path = write_workflow("""\
        name: slow
        steps:
          - id: wait
            tool: cli_hang
    """)
    result = invoke("run", path, "--import", STEPS, "--timeout", "0.2", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["status"] == "timed_out"
    assert data["steps"]["wait"]["status"] == "cancelled"
    assert result.stderr.startswith("Error: workflow 'slow' timed out: WorkflowTimeoutError:")


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(
    invoke: Invoke, write_workflow: WriteWorkflow, timeout: str
) -> None:
    result = invoke("run", write_workflow(ADD), "--timeout", timeout)
    assert result.exit_code == 2
    assert "Invalid value for '--timeout'" in result.stderr


@pytest.mark.parametrize(
    ("backend", "library", "loop"),
    [
        ("asyncio", "asyncio", "asyncio"),
        pytest.param(
            "uvloop",
            "asyncio",
            "uvloop",
            marks=pytest.mark.skipif(sys.platform == "win32", reason="uvloop is POSIX-only"),
        ),
        ("trio", "trio", "trio"),
    ],
)
def test_backend_chooses_the_event_loop(
    invoke: Invoke, write_workflow: WriteWorkflow, backend: str, library: str, loop: str
) -> None:
    path = write_workflow("""\
        name: which
        steps:
          - {id: library, tool: cli_backend}
          - {id: loop, tool: cli_loop}
    """)
    result = invoke("run", path, "--import", STEPS, "--backend", backend, "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert (steps["library"]["output"], steps["loop"]["output"]) == (library, loop)


def test_an_unknown_backend_is_a_usage_error(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    result = invoke("run", write_workflow(ADD), "--backend", "curio")
    assert result.exit_code == 2
    assert "'curio' is not one of 'asyncio', 'trio', 'uvloop'" in result.stderr


def test_backend_offers_every_backend_of_the_library() -> None:
    assert BACKENDS == BACKEND_NAMES


def test_every_command_with_a_backend_offers_the_same_choices() -> None:
    def commands(group: click.Group) -> Iterator[click.Command]:
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    offered = {
        command.name: tuple(param.type.choices)
        for command in commands(cli)
        for param in command.params
        if param.name == "backend" and isinstance(param.type, click.Choice)
    }
    assert set(offered) == {"run", "resume"}
    assert set(offered.values()) == {BACKENDS}


def test_run_refuses_a_missing_file(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("run", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_backend_setting_in_the_environment_exits_2(
    invoke: Invoke, write_workflow: WriteWorkflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTBRIDGE_BACKEND", "bogus")
    result = invoke("run", write_workflow(ADD), "--import", STEPS, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: invalid agentbridge environment variable")
    assert "AGENTBRIDGE_BACKEND='bogus'" in result.stderr


def test_an_unexpected_error_is_one_line_unless_debug(
    invoke: Invoke, write_workflow: WriteWorkflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_runtime(**options: object) -> None:
        raise RuntimeError("the runtime is broken")

    monkeypatch.setattr(ab, "Runtime", broken_runtime)
    path = write_workflow(ADD)
    result = invoke("run", path, "--import", STEPS)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unexpected error: RuntimeError: the runtime is broken"
        " (run again with --debug to see the traceback)\n"
    )
    debug = invoke("run", path, "--import", STEPS, "--debug")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.endswith("Error: unexpected error: RuntimeError: the runtime is broken\n")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_setting_broken_during_the_run_exits_2_with_its_message(
    invoke: Invoke,
    write_workflow: WriteWorkflow,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    as_json: bool,
) -> None:
    # Read again when the run's stream closes, inside the run's task group: the CLI
    # reports the error, not the group wrapped around it.
    monkeypatch.delenv("AGENTBRIDGE_CANCEL_GRACE", raising=False)
    path = write_workflow("""\
        name: breaks-setting
        steps:
          - id: set
            function: cli_set_env
            inputs: {name: AGENTBRIDGE_CANCEL_GRACE, value: soon}
    """)
    args = ["--backend", backend, *(["--json"] if as_json else [])]
    result = invoke("run", path, "--import", STEPS, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "Error: invalid agentbridge environment variable: AGENTBRIDGE_CANCEL_GRACE='soon'"
    )
    assert "unexpected" not in result.stderr


def test_a_bridge_timeout_is_a_timeout_that_names_the_timeout_option(
    invoke: Invoke, write_workflow: WriteWorkflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", "0.2")
    path = write_workflow("""\
        name: slow
        steps:
          - id: wait
            tool: cli_hang
    """)
    result = invoke("run", path, "--import", STEPS, "--json")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: timed out: the run sent no event within the bridge's timeout of 0.2 s"
    )
    assert "--timeout SECONDS" in result.stderr
    assert "unexpected" not in result.stderr
