"""A workflow file can never import, execute or grant anything by itself."""

from __future__ import annotations

import pathlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "template",
    [
        "!!python/object/apply:builtins.exec [\"open(r'{sentinel}', 'w').close()\"]",
        "!!python/object/apply:os.system ['touch {sentinel}']",
        "!!python/object/new:builtins.exec [\"open(r'{sentinel}', 'w').close()\"]",
        "!!python/name:os.system",
        "!!python/module:os",
        "!include {sentinel}",
    ],
)
@pytest.mark.parametrize("where", ["step-input", "top-level"])
def test_unsafe_yaml_tags_are_rejected_and_never_run(
    tmp_path: pathlib.Path, template: str, where: str
) -> None:
    sentinel = tmp_path / "pwned"
    value = template.format(sentinel=sentinel)
    if where == "step-input":
        text = f"name: x\nsteps:\n  - id: a\n    function: f\n    inputs:\n      v: {value}\n"
    else:
        text = f"name: x\nevil: {value}\nsteps:\n  - id: a\n    function: f\n"
    path = tmp_path / "evil.yaml"
    path.write_text(text)

    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml_string(text)
    assert caught.value.problems
    with pytest.raises(ab.WorkflowValidationError):
        ab.Workflow.from_yaml(path)
    with pytest.raises(ab.WorkflowValidationError):
        ab.run_workflow(path, registry=ab.Registry())
    assert not sentinel.exists(), "the YAML tag was executed"


class StepPackage:
    """Two importable packages whose import leaves a mark: ``<name>`` and ``<name>_evil``."""

    def __init__(self, root: pathlib.Path) -> None:
        self.name = f"abwf_{uuid.uuid4().hex[:12]}"
        self.evil = f"{self.name}_evil"
        self.root = root
        for package in (self.name, self.evil):
            directory = root / package
            directory.mkdir()
            (directory / "__init__.py").write_text("")
            (directory / "steps.py").write_text(
                textwrap.dedent(
                    f"""\
                    import pathlib
                    pathlib.Path(r"{self.marker(package)}").write_text("imported")

                    def double(x):
                        return x * 2

                    async def adouble(x):
                        return x * 2
                    """
                )
            )

    def marker(self, package: str) -> pathlib.Path:
        return self.root / f"{package}.imported"

    def imported(self, package: str) -> bool:
        return self.marker(package).exists() or f"{package}.steps" in sys.modules

    def workflow(self, target: str) -> ab.Workflow:
        return ab.Workflow.from_dict(
            {
                "name": "imports",
                "steps": [{"id": "s", "function": target, "inputs": {"x": 21}}],
                "outputs": {"value": "${steps.s.output}"},
            }
        )


@pytest.fixture
def pkg(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StepPackage]:
    package = StepPackage(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for module in list(sys.modules):
        if module.startswith(package.name):
            del sys.modules[module]


def refusers(reg: ab.Registry) -> dict[str, Any]:
    """Every way to validate or run a workflow, with no imports allowed."""
    return {
        "validate": lambda wf: wf.validate(reg),
        "run_workflow": lambda wf: ab.run_workflow(wf, registry=reg),
        "Runtime.validate": lambda wf: ab.Runtime(reg).validate(wf),
        "Runtime.run": lambda wf: ab.Runtime(reg).run(wf),
        "Runtime.stream_sync": lambda wf: list(ab.Runtime(reg).stream_sync(wf)),
        "Executor": lambda wf: ab.Executor(wf, reg),
    }


@pytest.mark.parametrize(
    "entry",
    [
        "validate",
        "run_workflow",
        "Runtime.validate",
        "Runtime.run",
        "Runtime.stream_sync",
        "Executor",
    ],
)
@pytest.mark.parametrize("form", ["{}.steps:double", "{}.steps.double"])
def test_import_paths_are_refused_by_default(
    pkg: StepPackage, reg: ab.Registry, entry: str, form: str
) -> None:
    wf = pkg.workflow(form.format(pkg.name))
    with pytest.raises(ab.WorkflowValidationError) as caught:
        refusers(reg)[entry](wf)
    assert "allow_imports" in str(caught.value), "the message must say how to opt in"
    assert caught.value.problems[0].step_id == "s"
    assert not pkg.imported(pkg.name)


def test_loading_never_imports(pkg: StepPackage) -> None:
    text = f"name: x\nsteps:\n  - id: s\n    function: {pkg.name}.steps:double\n"
    ab.Workflow.from_yaml_string(text)
    assert not pkg.imported(pkg.name)


@pytest.mark.parametrize("form", ["{}.steps:double", "{}.steps.double"])
def test_allowed_imports_run(pkg: StepPackage, reg: ab.Registry, form: str) -> None:
    wf = pkg.workflow(form.format(pkg.name))
    result = ab.Runtime(reg, allow_imports=[pkg.name]).run(wf)
    assert result.outputs == {"value": 42}
    assert pkg.imported(pkg.name)


def test_allowed_imports_on_every_entry_point(pkg: StepPackage, reg: ab.Registry) -> None:
    wf = pkg.workflow(f"{pkg.name}.steps:double")
    allow = [f"{pkg.name}.steps"]
    wf.validate(reg, allow_imports=allow)
    assert ab.Runtime(reg, allow_imports=allow).validate(wf) == wf
    assert ab.run_workflow(wf, registry=reg, allow_imports=allow).outputs == {"value": 42}
    assert ab.Executor(wf, reg, allow_imports=allow).run().outputs == {"value": 42}
    events = list(ab.Runtime(reg, allow_imports=allow).stream_sync(wf))
    assert events[-1].result.outputs == {"value": 42}


@pytest.mark.anyio
async def test_allowed_async_import(pkg: StepPackage, reg: ab.Registry) -> None:
    wf = pkg.workflow(f"{pkg.name}.steps:adouble")
    with pytest.raises(ab.WorkflowValidationError):
        await ab.run_workflow_async(wf, registry=reg)
    with pytest.raises(ab.WorkflowValidationError):
        await ab.Runtime(reg).run_async(wf)
    with pytest.raises(ab.WorkflowValidationError):
        async for _ in ab.Runtime(reg).stream(wf):
            pass
    assert not pkg.imported(pkg.name)
    result = await ab.run_workflow_async(wf, registry=reg, allow_imports=[pkg.name])
    assert result.outputs == {"value": 42}
    result = await ab.Runtime(reg, allow_imports=[pkg.name]).run_async(wf)
    assert result.outputs == {"value": 42}


def test_a_prefix_is_a_module_prefix_not_a_string_prefix(
    pkg: StepPackage, reg: ab.Registry
) -> None:
    wf = pkg.workflow(f"{pkg.evil}.steps:double")
    with pytest.raises(ab.WorkflowValidationError):
        ab.Runtime(reg, allow_imports=[pkg.name]).run(wf)
    with pytest.raises(ab.WorkflowValidationError):
        ab.run_workflow(wf, registry=reg, allow_imports=[pkg.name])
    assert not pkg.imported(pkg.evil)


def test_a_submodule_prefix_does_not_allow_its_siblings(pkg: StepPackage, reg: ab.Registry) -> None:
    wf = pkg.workflow(f"{pkg.name}.steps:double")
    with pytest.raises(ab.WorkflowValidationError):
        ab.Runtime(reg, allow_imports=[f"{pkg.name}.other"]).run(wf)
    with pytest.raises(ab.WorkflowValidationError):
        ab.Runtime(reg, allow_imports=[f"{pkg.name}.step"]).run(wf)
    assert not pkg.imported(pkg.name)


def test_a_workflow_file_cannot_grant_imports(
    pkg: StepPackage, reg: ab.Registry, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "grant.yaml"
    path.write_text(
        f"name: x\nallow_imports: [{pkg.name}]\n"
        f"steps:\n  - id: s\n    function: {pkg.name}.steps:double\n    inputs: {{x: 1}}\n"
    )
    with pytest.raises(ab.WorkflowValidationError):
        ab.run_workflow(path, registry=reg)
    assert not pkg.imported(pkg.name)


def test_an_allowed_but_missing_attribute_is_a_validation_error(
    pkg: StepPackage, reg: ab.Registry
) -> None:
    wf = pkg.workflow(f"{pkg.name}.steps:nothing_here")
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Runtime(reg, allow_imports=[pkg.name]).run(wf)
    assert "nothing_here" in str(caught.value)


class Output:
    def __init__(self) -> None:
        self.value = 1

    def method(self) -> None:
        return None


@pytest.mark.parametrize(
    "expression",
    [
        "${steps.s.output.__class__}",
        "${steps.s.output.__init__.__globals__}",
        "${steps.s.output.method.__globals__['__builtins__']}",
        "${inputs.x.__class__.__mro__}",
    ],
)
def test_expressions_cannot_reach_dunder_attributes(reg: ab.Registry, expression: str) -> None:
    """Module globals hand out ``__builtins__`` (``__import__``, ``exec``) to any step."""
    reg.register("function", "source", Output)
    received: list[object] = []
    reg.register("function", "sink", lambda v: received.append(v))
    data = {
        "name": "dunder",
        "inputs": ["x"],
        "steps": [
            {"id": "s", "function": "source"},
            {"id": "t", "function": "sink", "inputs": {"v": expression}},
        ],
    }
    # Refused when loaded, or when the expression is evaluated: either way, never passed on.
    with pytest.raises(ab.AgentBridgeError):
        ab.run_workflow(data, {"x": 1}, registry=reg)
    assert received == []
