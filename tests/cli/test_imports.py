"""``--import``: modules from the current directory, and clear errors for bad ones."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from ._helpers import Invoke, WriteWorkflow


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> Path:
    """Work from an empty directory (after ``invoke`` moved to the project)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_modules_import_from_the_current_directory(
    invoke: Invoke, write_workflow: WriteWorkflow, in_tmp: Path
) -> None:
    module, step = f"steps_{uuid.uuid4().hex}", f"cli_local_{uuid.uuid4().hex}"
    (in_tmp / f"{module}.py").write_text(
        f"import agentbridge as ab\n\n\n@ab.function({step!r})\ndef double(x):\n    return 2 * x\n"
    )
    path = write_workflow(
        f"name: local\nsteps:\n  - {{id: d, function: {step}, inputs: {{x: 21}}}}\n"
    )
    assert str(in_tmp) not in sys.path
    result = invoke("run", path, "--import", module, "--json")
    assert result.exit_code == 0, result.output
    assert '"output": 42' in result.stdout


def test_a_module_that_does_not_exist_exits_2(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    path = write_workflow("name: x\nsteps:\n  - {id: a, tool: cli_echo}\n")
    result = invoke("run", path, "--import", "no_such_module_here")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: cannot import module 'no_such_module_here' given to --import: there is no"
        " module 'no_such_module_here' in the current directory or on sys.path\n"
    )


def test_a_file_path_gets_a_hint(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    path = write_workflow("name: x\nsteps:\n  - {id: a, tool: cli_echo}\n")
    result = invoke("validate", path, "--import", "myapp/steps.py")
    assert result.exit_code == 2
    assert "try --import myapp.steps" in result.stderr


def test_a_module_that_raises_exits_2(
    invoke: Invoke, write_workflow: WriteWorkflow, in_tmp: Path
) -> None:
    module = f"broken_{uuid.uuid4().hex}"
    (in_tmp / f"{module}.py").write_text("import no_such_dependency_either\n")
    path = write_workflow("name: x\nsteps:\n  - {id: a, tool: cli_echo}\n")
    result = invoke("validate", path, "--import", module)
    assert result.exit_code == 2
    assert f"importing module '{module}' failed: ModuleNotFoundError" in result.stderr
    assert "no_such_dependency_either" in result.stderr
    assert "Traceback" not in result.stderr

    debug = invoke("validate", path, "--import", module, "--debug")
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.stderr


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize(
    "target", ["{module}:os.system", "{module}:system", "{module}.os.system", "os:system"]
)
def test_a_workflow_file_cannot_reach_what_an_imported_module_imports(
    invoke: Invoke, write_workflow: WriteWorkflow, in_tmp: Path, command: str, target: str
) -> None:
    """``--import`` runs a module so it registers steps; it allows no import path."""
    module = f"evil_{uuid.uuid4().hex}"
    (in_tmp / f"{module}.py").write_text("import os\nfrom os import system\n")
    sentinel = in_tmp / "pwned"
    path = write_workflow(
        f"name: x\nsteps:\n  - id: a\n    function: {target.format(module=module)}\n"
        f"    inputs: {{command: touch {sentinel}}}\n"
    )
    result = invoke(command, path, "--import", module)
    assert result.exit_code == 2, result.output
    assert "importing is not allowed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not sentinel.exists(), "the workflow file ran a shell command"
