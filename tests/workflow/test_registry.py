"""The registry: decorators, per-kind names, and the default registry."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


def unique(prefix: str) -> str:
    """A name no other test registers in the shared default registry."""
    return f"{prefix}_{uuid.uuid4().hex}"


@pytest.mark.parametrize("kind", ["agent", "function", "tool"])
def test_bare_decorator_uses_the_function_name(reg: ab.Registry, kind: str) -> None:
    decorator = getattr(reg, kind)

    async def lookup(x: int) -> int:
        return x

    assert decorator(lookup) is lookup
    assert "lookup" in reg.names(kind)


@pytest.mark.parametrize("kind", ["agent", "function", "tool"])
def test_named_decorator(reg: ab.Registry, kind: str) -> None:
    decorator = getattr(reg, kind)

    def helper() -> None:
        return None

    assert decorator("fetch_ticket")(helper) is helper
    assert reg.names(kind) == ("fetch_ticket",)
    assert "helper" not in reg.names(kind)


def test_names_are_per_kind(reg: ab.Registry) -> None:
    @reg.tool
    def shared() -> str:
        return "tool"

    @reg.agent("other")
    async def agent() -> str:
        return "agent"

    assert reg.names("tool") == ("shared",)
    assert reg.names("agent") == ("other",)
    assert reg.names("function") == ()
    assert isinstance(reg.names("tool"), tuple)


def test_register_by_call(reg: ab.Registry) -> None:
    def a() -> None:
        return None

    def b() -> None:
        return None

    reg.register("function", "b_name", b)
    reg.register("function", "a_name", a)
    reg.register("agent", "a_name", a)
    assert set(reg.names("function")) == {"a_name", "b_name"}
    assert reg.names("agent") == ("a_name",)


def test_registered_steps_run_by_name(reg: ab.Registry) -> None:
    @reg.tool("fetch_ticket")
    async def fetch(ticket_id: int) -> dict[str, Any]:
        return {"id": ticket_id, "body": "printer on fire"}

    @reg.agent
    async def classifier(text: str) -> str:
        return "urgent" if "fire" in text else "later"

    wf = ab.Workflow.from_dict(
        {
            "name": "triage",
            "inputs": ["ticket"],
            "steps": [
                {
                    "id": "fetch",
                    "tool": "fetch_ticket",
                    "inputs": {"ticket_id": "${inputs.ticket}"},
                },
                {
                    "id": "classify",
                    "agent": "classifier",
                    "inputs": {"text": "${steps.fetch.output.body}"},
                },
            ],
            "outputs": {"label": "${steps.classify.output}"},
        }
    )
    result = ab.run_workflow(wf, {"ticket": 42}, registry=reg)
    assert result.outputs == {"label": "urgent"}
    assert result.steps["fetch"].output == {"id": 42, "body": "printer on fire"}


def test_an_unknown_kind_is_refused(reg: ab.Registry) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        reg.register("widget", "x", lambda: None)
    assert "widget" in str(caught.value)


def test_a_non_callable_is_refused(reg: ab.Registry) -> None:
    with pytest.raises((ValueError, TypeError)):
        reg.register("function", "x", 42)  # type: ignore[arg-type]


def test_the_default_registry_is_one_object() -> None:
    default = ab.get_default_registry()
    assert isinstance(default, ab.Registry)
    assert ab.get_default_registry() is default


@pytest.mark.parametrize("kind", ["agent", "function", "tool"])
def test_module_level_decorators_register_in_the_default_registry(kind: str) -> None:
    name = unique(kind)

    async def step() -> str:
        return name

    assert getattr(ab, kind)(name)(step) is step
    assert name in ab.get_default_registry().names(kind)

    wf = ab.Workflow.from_dict({"name": "t", "steps": [{"id": "s", kind: name}]})
    assert ab.run_workflow(wf).steps["s"].output == name
    assert ab.Runtime().run(wf).steps["s"].output == name


def test_bare_module_level_decorator() -> None:
    def step() -> str:
        return "bare"

    step.__name__ = unique("bare")
    assert ab.tool(step) is step
    assert step.__name__ in ab.get_default_registry().names("tool")


def test_an_explicit_registry_does_not_see_the_default_one(reg: ab.Registry) -> None:
    name = unique("hidden")
    ab.function(name)(lambda: None)
    wf = ab.Workflow.from_dict({"name": "t", "steps": [{"id": "s", "function": name}]})
    with pytest.raises(ab.WorkflowValidationError):
        wf.validate(reg)
    wf.validate()
