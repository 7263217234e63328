"""LoadLimits: what one workflow may cost is bounded, each limit says how to raise it.

The bombs and the large files are loaded in a child process whose address space is
capped, so a regression fails the test (MemoryError, a timeout) instead of the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(60)

#: The child's address space: far below what any of these files took before the limits.
MEMORY_CAP = 1024 * 1024 * 1024

CHILD = textwrap.dedent(
    """\
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
    import agentbridge as ab
    start = time.perf_counter()
    try:
        if sys.argv[1] == "file":
            ab.Workflow.from_yaml(sys.argv[2])
        else:
            ab.Workflow.from_yaml_string(sys.stdin.read())
    except ab.WorkflowValidationError as exc:
        problems = [[p.line, p.message] for p in exc.problems]
        print(json.dumps({{"problems": problems, "seconds": time.perf_counter() - start}}))
    else:
        print(json.dumps({{"loaded": True}}))
    """
).format(cap=MEMORY_CAP)


def load_in_child(*args: str, text: str = "") -> dict[str, Any]:
    """Load in a fresh interpreter with capped memory; what it found, as JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def laughs(field: str, levels: int = 9) -> str:
    """A YAML bomb: ``levels`` anchors of ten aliases each to the one before."""
    lines = ["      l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"      l{level}: &l{level} [{aliases}]")
    body = "\n".join(lines)
    if field == "inputs":
        return f"name: bomb\nsteps:\n  - id: a\n    function: f\n    inputs:\n{body}\n"
    if field == "outputs":
        return f"name: bomb\nsteps:\n  - {{id: a, function: f}}\noutputs:\n    o:\n{body}\n"
    return f"name: bomb\ninputs:\n  i:\n    default:\n{body}\nsteps:\n  - {{id: a, function: f}}\n"


@pytest.mark.parametrize("field", ["inputs", "outputs", "default"])
def test_an_alias_bomb_is_refused_at_its_line(field: str) -> None:
    text = laughs(field)
    assert len(text) < 700
    found = load_in_child("text", text=text)
    ((line, message),) = found["problems"]
    assert "max_values" in message
    assert "*l" in text.splitlines()[line - 1], "the line of the alias that passes the limit"
    assert found["seconds"] < 10


def test_a_hundred_million_leaves_are_refused() -> None:
    found = load_in_child("text", text=laughs("inputs", levels=8))
    ((_, message),) = found["problems"]
    assert "alias counts as every value it repeats" in message


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(1 << 40)  # a sparse terabyte: reading it would never end
    found = load_in_child("file", str(path))
    ((_, message),) = found["problems"]
    assert "max_bytes" in message
    assert found["seconds"] < 1


def chain(steps: int) -> str:
    body = "".join(
        f"  - {{id: s{i}, function: f, depends_on: [s{i - 1}]}}\n" for i in range(1, steps)
    )
    return "name: chain\nsteps:\n  - {id: s0, function: f}\n" + body


def test_a_ten_megabyte_chain_is_refused_quickly() -> None:
    text = chain(150_818)
    assert len(text) < 10 * 1024 * 1024
    found = load_in_child("text", text=text)
    ((line, message),) = found["problems"]
    assert line == 10_003, "the first step too many: s10000"
    assert "max_steps" in message
    assert found["seconds"] < 10


def test_a_string_too_long_is_refused_at_its_line() -> None:
    text = "name: x\nsteps:\n  - id: a\n    function: f\n    inputs: {v: " + "x" * 1_000_001 + "}\n"
    found = load_in_child("text", text=text)
    ((line, message),) = found["problems"]
    assert line == 5
    assert "max_string_length" in message


SMALL = {
    "max_bytes": ("name: x\nsteps:\n  - {id: a, function: f}\n", 10),
    "max_steps": ("name: x\nsteps:\n  - {id: a, function: f}\n  - {id: b, function: f}\n", 1),
    "max_depth": ("name: x\nsteps:\n  - {id: a, function: f, inputs: {v: [[1]]}}\n", 5),
    "max_values": ("name: x\nsteps:\n  - {id: a, function: f, inputs: {v: [1, 2, 3]}}\n", 10),
    "max_string_length": ("name: x\nsteps:\n  - {id: a, function: f, inputs: {v: abcdef}}\n", 5),
    "max_int_digits": ("name: x\nsteps:\n  - {id: a, function: f, inputs: {v: 123456}}\n", 5),
}


@pytest.mark.parametrize(
    ("limit", "loader"),
    # A mapping has no size in bytes.
    [
        (limit, loader)
        for limit in SMALL
        for loader in ("yaml", "dict")
        if limit != "max_bytes" or loader == "yaml"
    ],
)
def test_each_limit_names_itself_and_can_be_raised(limit: str, loader: str) -> None:
    import yaml

    text, small = SMALL[limit]

    def load(value: int) -> ab.Workflow:
        limits = ab.LoadLimits(**{limit: value})
        if loader == "yaml":
            return ab.Workflow.from_yaml_string(text, limits=limits)
        return ab.Workflow.from_dict(yaml.safe_load(text), limits=limits)

    with pytest.raises(ab.WorkflowValidationError) as caught:
        load(small)
    (problem,) = caught.value.problems
    assert f"LoadLimits({limit}=...)" in problem.message
    assert isinstance(load(small * 20), ab.Workflow)


def test_the_runtime_passes_its_limits_to_the_loaders(tmp_path: Path) -> None:
    reg = ab.Registry()
    reg.register("function", "f", lambda: None)
    two = {"name": "x", "steps": [{"id": "a", "function": "f"}, {"id": "b", "function": "f"}]}
    path = tmp_path / "two.yaml"
    path.write_text("name: x\nsteps:\n  - {id: a, function: f}\n  - {id: b, function: f}\n")
    one_step = ab.LoadLimits(max_steps=1)
    for workflow in (two, path):
        with pytest.raises(ab.WorkflowValidationError, match="max_steps"):
            ab.Runtime(reg, limits=one_step).validate(workflow)
        with pytest.raises(ab.WorkflowValidationError, match="max_steps"):
            ab.Executor(workflow, reg, limits=one_step)
        assert ab.Runtime(reg).validate(workflow).name == "x"


@pytest.mark.parametrize(
    "options",
    [{"max_steps": 0}, {"max_depth": True}, {"max_values": 1.5}, {"max_depth": 201}],
)
def test_invalid_limits_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ab.ConfigurationError, match="LoadLimits"):
        ab.LoadLimits(**options)


def test_limits_of_the_wrong_type_are_configuration_errors() -> None:
    with pytest.raises(ab.ConfigurationError, match="LoadLimits"):
        ab.Workflow.from_dict({"name": "x", "steps": []}, limits={"max_steps": 3})  # type: ignore[arg-type]


def test_the_defaults_are_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")
    defaults = ab.LoadLimits()
    for name in (
        "max_bytes",
        "max_steps",
        "max_depth",
        "max_values",
        "max_string_length",
        "max_int_digits",
    ):
        assert f"`{name}`" in docs
        assert f"{getattr(defaults, name):,}" in docs, name
