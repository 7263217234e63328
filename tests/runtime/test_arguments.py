"""Bad arguments get clear errors that name the argument."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import agentbridge as ab

from ._helpers import build

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def wf(reg: ab.Registry) -> ab.Workflow:
    reg.register("function", "f", lambda: 1)
    return build({"id": "a", "function": "f"})


CALLS = {
    "run_workflow": lambda wf, reg, **kw: ab.run_workflow(wf, registry=reg, **kw),
    "Runtime.run": lambda wf, reg, **kw: ab.Runtime(reg).run(wf, **kw),
    "Executor.run": lambda wf, reg, **kw: ab.Executor(wf, reg).run(**kw),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("inputs", [[("a", 1)], "a=1", 5])
def test_inputs_must_be_a_mapping(
    wf: ab.Workflow, reg: ab.Registry, call: Any, inputs: Any
) -> None:
    with pytest.raises((TypeError, ab.AgentBridgeError)) as caught:
        call(wf, reg, inputs=inputs)
    assert "inputs" in str(caught.value)


@pytest.mark.parametrize("registry", ["default", {"f": lambda: 1}, 3])
def test_registry_must_be_a_registry(wf: ab.Workflow, registry: Any) -> None:
    for call in (
        lambda: ab.run_workflow(wf, registry=registry),
        lambda: ab.Runtime(registry),
        lambda: ab.Executor(wf, registry),
        lambda: wf.validate(registry),
    ):
        with pytest.raises((TypeError, ab.AgentBridgeError)) as caught:
            call()
        assert "registry" in str(caught.value).lower() or "Registry" in str(caught.value)


@pytest.mark.parametrize("workflow", [42, None, ["name", "x"], b"name: x"])
def test_workflow_must_be_a_workflow_mapping_or_path(reg: ab.Registry, workflow: Any) -> None:
    with pytest.raises((TypeError, ab.AgentBridgeError)) as caught:
        ab.run_workflow(workflow, registry=reg)
    assert "workflow" in str(caught.value).lower()


def test_a_missing_workflow_file(reg: ab.Registry, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises((OSError, ab.AgentBridgeError)) as caught:
        ab.run_workflow(missing, registry=reg)
    assert "nope.yaml" in str(caught.value)


@pytest.mark.parametrize("option", ["max_concurrency", "max_threads"])
@pytest.mark.parametrize("value", [0, -1])
def test_capacity_options_must_be_positive(reg: ab.Registry, option: str, value: int) -> None:
    with pytest.raises(ValueError, match=option):
        ab.Runtime(reg, **{option: value})


@pytest.mark.parametrize("timeout", [-1, "soon"])
def test_a_bad_run_timeout(wf: ab.Workflow, reg: ab.Registry, timeout: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="timeout"):
        ab.run_workflow(wf, registry=reg, timeout=timeout)


def test_a_bad_backend(wf: ab.Workflow, reg: ab.Registry) -> None:
    with pytest.raises(ab.ConfigurationError, match="curio"):
        ab.run_workflow(wf, registry=reg, backend="curio")


def test_from_dict_needs_a_mapping() -> None:
    with pytest.raises((TypeError, ab.WorkflowValidationError)):
        ab.Workflow.from_dict(["name", "x"])  # type: ignore[arg-type]
