"""Structured inputs from the command line: ``--input-json KEY=JSON`` and ``--inputs FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._helpers import STEPS, Invoke, WriteWorkflow

pytestmark = pytest.mark.timeout(30)

ECHO = """\
    name: echo
    inputs:
      tags: null
      config: {default: {}}
      n: {default: 0}
    steps:
      - id: echo
        tool: cli_echo
        inputs: {value: {tags: "${inputs.tags}", config: "${inputs.config}", n: "${inputs.n}"}}
"""


def run_json(invoke: Invoke, path: Path, *args: str) -> object:
    result = invoke("run", path, "--import", STEPS, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["outputs"]["echo"]


def test_input_json_takes_lists_mappings_and_typed_values(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    output = run_json(
        invoke,
        write_workflow(ECHO),
        "--input-json",
        'tags=["a", 2, null]',
        "--input-json",
        'config={"deep": {"x": [true]}}',
        "--input",
        "n=3",
    )
    assert output == {"tags": ["a", 2, None], "config": {"deep": {"x": [True]}}, "n": 3}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("inputs.json", '{"tags": ["x"], "n": 5}'),
        ("inputs.yaml", "tags: [x]\nn: 5\n"),
    ],
)
def test_an_inputs_file_in_json_or_yaml(
    invoke: Invoke, write_workflow: WriteWorkflow, tmp_path: Path, name: str, text: str
) -> None:
    inputs = tmp_path / name
    inputs.write_text(text, encoding="utf-8")
    path = write_workflow(ECHO)
    assert run_json(invoke, path, "--inputs", str(inputs)) == {
        "tags": ["x"],
        "config": {},
        "n": 5,
    }
    overridden = run_json(invoke, path, "--inputs", str(inputs), "--input", "n=6")
    assert overridden == {"tags": ["x"], "config": {}, "n": 6}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input-json", "tags=[1,"], "is not a JSON value"),
        (["--input-json", "tags"], "is not KEY=VALUE; write it like --input-json"),
        (["--input-json", "tags=1", "--input-json", "tags=2"], "given twice"),
        (["--input-json", "tags=" + "[" * 100_000], "nests too deeply"),
    ],
)
def test_bad_json_inputs_exit_2(
    invoke: Invoke, write_workflow: WriteWorkflow, args: list[str], expected: str
) -> None:
    result = invoke("run", write_workflow(ECHO), "--import", STEPS, *args)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_an_input_given_as_a_scalar_and_as_json_exits_2(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow(ECHO)
    result = invoke("run", path, "--import", STEPS, "--input", "n=1", "--input-json", "n=2")
    assert result.exit_code == 2
    assert "given by both --input and --input-json" in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "n: !!python/object:os.system x\n", "python/object"),
        ("dup.yaml", "n: 1\nn: 2\n", "duplicate key"),
        ("list.yaml", "- 1\n- 2\n", "holds a mapping of input names to values"),
        ("bad.json", '{"n": }', "invalid JSON"),
        ("deep.json", "[" * 100_000, "nests too deeply"),
        (
            "bomb.yaml",
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                f" *{chr(97 + i)}, *{chr(97 + i)}]\n"
                for i in range(8)
            ),
            "max_values",
        ),
    ],
)
def test_an_unsafe_or_malformed_inputs_file_exits_2(
    invoke: Invoke,
    write_workflow: WriteWorkflow,
    tmp_path: Path,
    name: str,
    text: str,
    expected: str,
) -> None:
    inputs = tmp_path / name
    inputs.write_text(text, encoding="utf-8")
    result = invoke("run", write_workflow(ECHO), "--import", STEPS, "--inputs", str(inputs))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
