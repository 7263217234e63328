"""``allow_imports`` allows what the allowed modules define, never what they import."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import agentbridge as ab

from ._packages import EvilPackage

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def evil(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EvilPackage]:
    package = EvilPackage(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    package.forget()


def workflow(target: str, inputs: dict[str, Any], kind: str = "function") -> ab.Workflow:
    """One step ``s`` of ``kind`` calling ``target``; its output is the workflow's."""
    return ab.Workflow.from_dict(
        {
            "name": "imports",
            "steps": [{"id": "s", kind: target, "inputs": inputs}],
            "outputs": {"value": "${steps.s.output}"},
        }
    )


ENTRY_POINTS: dict[str, Callable[[ab.Workflow, list[str]], object]] = {
    "validate": lambda wf, allow: wf.validate(ab.Registry(), allow_imports=allow),
    "run_workflow": lambda wf, allow: ab.run_workflow(
        wf, registry=ab.Registry(), allow_imports=allow
    ),
    "Runtime.stream_sync": lambda wf, allow: list(
        ab.Runtime(ab.Registry(), allow_imports=allow).stream_sync(wf)
    ),
}


#: Paths that reach something the allowed module did not define: the target, its
#: inputs, and what the refusal must say. ``{steps}`` is the allowed step module.
ESCAPES: dict[str, tuple[str, dict[str, Any], str]] = {
    "imported module": ("{steps}:os.system", {"command": "{touch}"}, "is the module 'os'"),
    "imported function": ("{steps}:system", {"command": "{touch}"}, "defined in 'posix'"),
    "subprocess": (
        "{steps}:subprocess.check_output",
        {"args": ["touch", "{sentinel}"]},
        "is the module 'subprocess'",
    ),
    "import_module": (
        "{steps}:importlib.import_module",
        {"name": "{name}_marker"},
        "is the module 'importlib'",
    ),
    "imported class": ("{steps}:partial", {}, "defined in 'functools'"),
    "callable object of a class from elsewhere": (
        "{steps}:shell",
        {"command": "{touch}"},
        "defined in 'functools'",
    ),
    "imported callable object": ("{steps}:tool", {"x": 1}, "defined in '{lib}.agents'"),
    "imported agent class": ("{steps}:Agent", {}, "defined in '{lib}.agents'"),
    "dunder on a class": ("{steps}:Helper.__subclasses__", {}, "'__subclasses__' is private"),
    "method of type": ("{steps}:Helper.mro", {}, "which no module defines"),
    "class attribute from elsewhere": (
        "{steps}:Helper.call",
        {"command": "{touch}"},
        "defined in 'posix'",
    ),
    "static method from elsewhere": (
        "{steps}:Helper.imp",
        {"name": "{name}_marker"},
        "defined in 'importlib'",
    ),
    "property": ("{steps}:Helper.runs_code", {}, "which no module defines"),
    "class property": ("{steps}:Helper.chained", {}, "which no module defines"),
    "builtins": ("{steps}:__builtins__.exec", {"source": "{touch}"}, "private"),
    "globals": ("{steps}:double.__globals__", {}, "'__globals__' is private"),
    "private function": ("{steps}:_private", {"x": 1}, "'_private' is private"),
    "object with a sync run": ("{steps}:worker", {}, "defined in 'threading'"),
    "walk into a function": (
        "{steps}:double.x",
        {},
        "(its type is function)",
    ),
    "walk into an object": (
        "{steps}:agent.run",
        {"prompt": "p"},
        "(its type is Agent)",
    ),
    "module replaced by another": (
        "{name}.alias:system",
        {"command": "{touch}"},
        "is the module 'os'",
    ),
    "dotted form through an import": ("{steps}.os.system", {"command": "{touch}"}, "No module"),
    "a package's __main__": ("{name}.__main__:x", {}, "'__main__' is private"),
    "sys.modules": ("{steps}:sys.modules", {}, "is the module 'sys'"),
    "module __getattr__": ("{steps}:lazy", {}, "has no attribute 'lazy'"),
}


def formatted(evil: EvilPackage, value: Any) -> Any:
    """``value`` with the package's names filled in (through lists and dicts)."""
    if isinstance(value, str):
        return value.format(
            steps=f"{evil.name}.steps",
            name=evil.name,
            lib=evil.lib,
            sentinel=evil.sentinel,
            touch=f"touch {evil.sentinel}",
        )
    if isinstance(value, list | tuple):
        return type(value)(formatted(evil, item) for item in value)
    if isinstance(value, dict):
        return {key: formatted(evil, item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_an_allowed_module_does_not_allow_what_it_imports(
    evil: EvilPackage, entry: str, escape: str
) -> None:
    target, inputs, why = formatted(evil, ESCAPES[escape])
    wf = workflow(
        target, inputs, kind="agent" if escape == "object with a sync run" else "function"
    )
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ENTRY_POINTS[entry](wf, [evil.name])
    (problem,) = caught.value.problems
    assert problem.step_id == "s"
    assert target in problem.message
    assert why in problem.message
    if "refused" in problem.message:
        assert "register it with a Registry" in problem.message, "the message names the fix"
    assert evil.ran() == [], "a refused path ran something"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{steps}:double", 42),
        ("{steps}.double", 42),
        ("{steps}:Helper.triple", 63),
        ("{steps}:Helper.quadruple", 84),
        ("{steps}:Helper.Inner.quintuple", 105),
        ("{steps}:wrapped", 126),
        ("{steps}:cached", 147),
    ],
)
def test_what_an_allowed_module_defines_runs(evil: EvilPackage, target: str, expected: int) -> None:
    wf = workflow(formatted(evil, target), {"x": 21})
    result = ab.run_workflow(wf, registry=ab.Registry(), allow_imports=[evil.name])
    assert result.outputs == {"value": expected}
    assert evil.ran() == []


def test_a_module_reached_as_an_attribute_must_be_under_a_prefix(evil: EvilPackage) -> None:
    allow = [evil.name]
    workflow(f"{evil.name}.steps:double", {"x": 1}).validate(ab.Registry(), allow_imports=allow)
    # Importing the submodule made it an attribute of its package.
    wf = workflow(f"{evil.name}:steps.double", {"x": 21})
    assert ab.run_workflow(wf, registry=ab.Registry(), allow_imports=allow).outputs == {"value": 42}
    with pytest.raises(ab.WorkflowValidationError, match="is the module 'os'"):
        workflow(f"{evil.name}:steps.os.system", {}).validate(ab.Registry(), allow_imports=allow)


def test_an_agent_object_bound_in_an_allowed_module_runs(evil: EvilPackage) -> None:
    """``agent = Agent(...)`` in the module: its class comes from elsewhere, but the
    object can only be an agent, called through its ``run()``."""
    allow = [evil.name]
    wf = workflow(f"{evil.name}.steps:agent", {"prompt": "hi"}, kind="agent")
    assert ab.run_workflow(wf, registry=ab.Registry(), allow_imports=allow).outputs == {
        "value": "agent: hi"
    }
    with pytest.raises(ab.WorkflowValidationError, match="must be a callable"):
        workflow(f"{evil.name}.steps:agent", {}).validate(ab.Registry(), allow_imports=allow)


@pytest.mark.parametrize(
    "target",
    [
        ".steps:double",
        "..{steps}:double",
        "{name}..steps:double",
        ":double",
        "{steps}:",
        "{steps}:double.",
        "{steps}: double",
        "{steps}:double:x",
        "{steps}.",
        "{steps}:Helper..triple",
        "{steps}:_private",
        "{steps}:Helper._x",
    ],
)
def test_a_malformed_or_private_path_imports_nothing(evil: EvilPackage, target: str) -> None:
    wf = workflow(formatted(evil, target), {})
    with pytest.raises(ab.WorkflowValidationError) as caught:
        wf.validate(ab.Registry(), allow_imports=[evil.name])
    assert "import path" in str(caught.value) or "is private" in str(caught.value)
    assert not evil.imported()


@pytest.mark.parametrize("allowed", ["{name}_lib", "{name}.steps.os", "{name}.step", "os"])
def test_an_allowed_prefix_matches_whole_module_names(evil: EvilPackage, allowed: str) -> None:
    wf = workflow(f"{evil.name}.steps:double", {"x": 1})
    with pytest.raises(ab.WorkflowValidationError, match="importing is not allowed"):
        wf.validate(ab.Registry(), allow_imports=[formatted(evil, allowed)])
    assert not evil.imported()


@pytest.mark.anyio
async def test_the_async_entry_points_refuse_the_same_paths(evil: EvilPackage) -> None:
    wf = workflow(f"{evil.name}.steps:os.system", {"command": f"touch {evil.sentinel}"})
    allow = [evil.name]
    with pytest.raises(ab.WorkflowValidationError, match="is the module 'os'"):
        await ab.run_workflow_async(wf, registry=ab.Registry(), allow_imports=allow)
    with pytest.raises(ab.WorkflowValidationError, match="is the module 'os'"):
        async for _ in ab.Runtime(ab.Registry(), allow_imports=allow).stream(wf):
            pass
    assert evil.ran() == []


@pytest.mark.parametrize("error", ["RuntimeError('no config')", "KeyError('API_KEY')"])
def test_an_allowed_module_that_fails_as_it_imports_is_a_validation_problem(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    name = f"agentbridge_failing_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(f"raise {error}\n\ndef f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    wf = workflow(f"{name}:f", {})
    with pytest.raises(ab.WorkflowValidationError) as caught:
        wf.validate(ab.Registry(), allow_imports=[name])
    (problem,) = caught.value.problems
    assert problem.step_id == "s"
    kind = error.partition("(")[0]
    assert f"importing module {name!r} raised {kind}" in problem.message
    assert f"python -c 'import {name}'" in problem.message
