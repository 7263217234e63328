"""The entry points: ``python -m agentbridge`` in a real process, and the missing extra."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from agentbridge._distribution import install_hint
from agentbridge.cli import main

from ._helpers import PROJECT, STEPS, run_cli


def _workflow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.hosts
def test_python_m_agentbridge_runs_a_workflow(tmp_path: Path) -> None:
    path = _workflow(
        tmp_path,
        """\
        name: sub
        inputs: [n]
        steps:
          - {id: add, function: cli_add, inputs: {a: "${inputs.n}", b: 1}}
        outputs: {total: "${steps.add.output}"}
        """,
    )
    done = run_cli(["run", path, "--import", STEPS, "--input", "n=41"], cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "total: 42" in done.stdout
    assert done.stderr == ""

    as_json = run_cli(["run", path, "--import", STEPS, "-i", "n=1", "--json"], cwd=PROJECT)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["outputs"] == {"total": 2}


@pytest.mark.hosts
def test_python_m_agentbridge_exit_codes_and_messages(tmp_path: Path) -> None:
    failing = _workflow(
        tmp_path, "name: f\nsteps:\n  - {id: b, function: cli_boom, inputs: {message: nope}}\n"
    )
    done = run_cli(["run", failing, "--import", STEPS, "--json"], cwd=PROJECT)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "failed"
    assert done.stderr == "Error: step 'b' failed: ValueError: nope\n"

    invalid = run_cli(["validate", tmp_path / "missing.yaml"], cwd=PROJECT)
    assert invalid.returncode == 2
    assert "Traceback" not in invalid.stderr
    assert "does not exist" in invalid.stderr


def test_usage_without_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["click", "rich"])
def test_without_the_cli_extra_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith((f"{module}.", "agentbridge.cli.")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # what a missing package looks like
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "workflow.yaml"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"agentbridge: the CLI needs the 'cli' extra: {install_hint('cli')}"
        f" (cannot import {module!r})\n"
    )
