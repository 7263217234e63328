"""``agentbridge validate``, and validation errors of ``run``: exit 2, one clear message."""

from __future__ import annotations

import pytest

from ._helpers import STEPS, Invoke, WriteWorkflow

VALID = """\
    name: pipeline
    inputs:
      text: null
      times: {default: 2}
    steps:
      - id: fetch
        tool: cli_echo
        inputs: {value: "${inputs.text}"}
      - id: left
        tool: cli_echo
        inputs: {value: "${steps.fetch.output}"}
      - id: right
        function: cli_add
        inputs: {a: "${inputs.times}", b: 1}
        depends_on: [fetch]
      - id: join
        agent: cli_flaky
        inputs: {key: "${steps.left.output}"}
        depends_on: [right]
    outputs:
      result: "${steps.join.output}"
"""


def test_validate_prints_ok_and_a_summary(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    path = write_workflow(VALID)
    result = invoke("validate", path, "--import", STEPS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"OK: workflow 'pipeline' from {path}"
    assert lines[1] == "4 steps (1 agent, 1 function, 2 tool), 4 dependencies"
    assert any("join" in line and "cli_flaky" in line and "left, right" in line for line in lines)
    assert "inputs: text, times=2" in lines
    assert "outputs: result" in lines
    assert result.stderr == ""


INVALID = [
    pytest.param("name: broken\nsteps: [\n", ["line"], id="yaml-syntax"),
    pytest.param(
        "name: dup\nsteps:\n  - {id: a, tool: cli_echo}\n  - {id: a, tool: cli_echo}\n",
        ["'a'"],
        id="duplicate-id",
    ),
    pytest.param(
        "name: loop\nsteps:\n"
        "  - {id: a, tool: cli_echo, depends_on: [b]}\n"
        "  - {id: b, tool: cli_echo, depends_on: [a]}\n",
        ["cycle"],
        id="cycle",
    ),
    pytest.param("name: evil\nsteps: !!python/object:os.system {}\n", ["line"], id="unsafe-tag"),
    pytest.param(
        "name: typos\nsteps:\n  - {id: one, tool: cli_ecko}\n  - {id: two, function: cli_addd}\n",
        ["Error: invalid workflow: 2 problems", "step 'one'", "cli_ecko", "step 'two'", "cli_addd"],
        id="unknown-registry-names",
    ),
    pytest.param(
        "name: typo\nsteps:\n  - id: sum\n    function: cli_add\n    inputs: {a: 1, bb: 2}\n",
        [
            "line 3, step 'sum': input 'bb' is not a parameter of function 'cli_add'",
            "needs the argument 'b'",
        ],
        id="inputs-not-fitting-the-signature",
    ),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_an_invalid_workflow_exits_2_with_every_problem(
    invoke: Invoke, write_workflow: WriteWorkflow, command: str, text: str, expected: list[str]
) -> None:
    result = invoke(command, write_workflow(text), "--import", STEPS)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: invalid workflow:")
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


BAD_FILES = {
    "float-abc": "name: !!float abc\nsteps: []\n",
    "bool-maybe": "name: !!bool maybe\nsteps: []\n",
    "timestamp-x": "name: !!timestamp x\nsteps: []\n",
    "seq-scalar": "name: !!seq abc\nsteps: []\n",
    "huge-integer": "name: x\nsteps: []\noutputs: {o: " + "9" * 5_000 + "}\n",
    "timeout-overflow": "name: x\nsteps:\n  - {id: a, tool: cli_echo, timeout: 1"
    + "0" * 309
    + "}\n",
    "deep": "name: x\nsteps: []\noutputs: {o: " + "[" * 2_000 + "]" * 2_000 + "}\n",
    "self-alias": "name: x\nsteps:\n  - {id: a, tool: cli_echo, inputs: &x {k: [*x]}}\n",
    "alias-bomb": "name: x\nsteps: []\noutputs:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
        for i in range(8)
    ),
    "outputs-list": "name: x\nsteps:\n  - {id: a, tool: cli_echo}\noutputs: []\n",
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("text", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_every_bad_file_exits_2_with_its_line(
    invoke: Invoke, write_workflow: WriteWorkflow, command: str, text: str
) -> None:
    result = invoke(command, write_workflow(text), "--import", STEPS)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: invalid workflow: 1 problem")
    assert "line " in result.stderr
    assert "unexpected error" not in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback_of_a_validation_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow("name: typo\nsteps:\n  - {id: one, tool: cli_ecko}\n")
    result = invoke("validate", path, "--import", STEPS, "--debug")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "WorkflowValidationError" in result.stderr
    assert "Error: invalid workflow:" in result.stderr


def test_validate_refuses_a_directory(invoke: Invoke, tmp_path: object) -> None:
    result = invoke("validate", tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_validate_knows_the_built_in_runners_and_lists_them_for_an_unknown_one(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow("""\
        name: runners
        steps:
          - {id: here, function: cli_add, inputs: {a: 1, b: 2}, runner: thread}
          - {id: there, function: cli_add, inputs: {a: 1, b: 2}, runner: process}
    """)
    assert invoke("validate", path, "--import", STEPS).exit_code == 0
    path = write_workflow("""\
        name: runners
        steps:
          - {id: there, function: cli_add, inputs: {a: 1, b: 2}, runner: gpu}
    """)
    result = invoke("validate", path, "--import", STEPS)
    assert result.exit_code == 2
    assert "unknown runner 'gpu'" in result.stderr
    assert "process, thread" in result.stderr
