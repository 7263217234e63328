"""Signature checking: a step's inputs are bound against its callable before anything runs."""

from __future__ import annotations

import functools
import textwrap
from typing import Any

import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


def problems_of(text: str, registry: ab.Registry) -> tuple[ab.Problem, ...]:
    workflow = ab.Workflow.from_yaml_string(textwrap.dedent(text))
    with pytest.raises(ab.WorkflowValidationError) as caught:
        workflow.validate(registry)
    return caught.value.problems


@pytest.fixture
def reg() -> ab.Registry:
    registry = ab.Registry()

    def save(label: str, *, force: bool = False) -> str:
        return label

    def only_positional(text: str, /) -> str:
        return text

    def optional_positional(text: str = "", /, *, mode: str = "x") -> str:
        return text

    def anything(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    class Agent:
        async def run(self, prompt: str) -> str:
            return prompt

    registry.register("function", "save", save)
    registry.register("function", "only_positional", only_positional)
    registry.register("function", "optional_positional", optional_positional)
    registry.register("function", "anything", anything)
    registry.register("function", "partial_save", functools.partial(save, "fixed"))
    registry.register("function", "builtin_dict", dict)
    registry.register("agent", "writer", Agent())
    return registry


def test_an_unknown_keyword_is_one_problem_with_a_suggestion(reg: ab.Registry) -> None:
    problems = problems_of(
        """\
        name: t
        steps:
          - id: store
            function: save
            inputs: {lable: hi}
        """,
        reg,
    )
    assert [(p.step_id, p.line) for p in problems] == [("store", 3), ("store", 3)]
    unknown, missing = problems
    assert "input 'lable' is not a parameter of function 'save'" in unknown.message
    assert "did you mean 'label'?" in unknown.message
    assert "its parameters: label, force=..." in unknown.message
    assert "needs the argument 'label'" in missing.message


def test_positional_only_parameters_are_refused(reg: ab.Registry) -> None:
    problems = problems_of(
        """\
        name: t
        steps:
          - id: a
            function: only_positional
            inputs: {text: hi}
          - id: b
            function: optional_positional
            inputs: {text: hi}
          - id: c
            function: optional_positional
        """,
        reg,
    )
    assert [p.step_id for p in problems] == ["a", "b"]
    assert all("positional-only parameter 'text'" in p.message for p in problems)
    assert "text (positional-only)" in problems[0].message


def test_fitting_inputs_pass(reg: ab.Registry) -> None:
    workflow = ab.Workflow.from_dict(
        {
            "name": "t",
            "steps": [
                {"id": "a", "function": "save", "inputs": {"label": "x", "force": True}},
                {"id": "b", "function": "anything", "inputs": {"whatever": 1}},
                {"id": "c", "function": "partial_save"},
                {"id": "d", "function": "builtin_dict", "inputs": {"key": [1]}},
                {"id": "e", "agent": "writer", "inputs": {"prompt": "hi"}},
            ],
        }
    )
    workflow.validate(reg)  # dict's signature cannot be read: not checked


def test_an_agent_object_is_checked_against_its_run_method(reg: ab.Registry) -> None:
    problems = problems_of(
        """\
        name: t
        steps:
          - id: w
            agent: writer
            inputs: {promt: hi}
        """,
        reg,
    )
    assert "did you mean 'prompt'?" in problems[0].message
    assert len(problems) == 2


def test_a_callable_given_in_python_is_checked_too() -> None:
    def needs(a: int, b: int) -> int:
        return a + b

    workflow = ab.Workflow.from_dict(
        {"name": "t", "steps": [{"id": "s", "function": needs, "inputs": {"a": 1}}]}
    )
    with pytest.raises(ab.WorkflowValidationError, match="needs the argument 'b'"):
        workflow.validate(ab.Registry())


def test_an_unreadable_signature_is_not_checked() -> None:
    class Opaque:
        @property
        def __signature__(self) -> Any:
            raise RuntimeError("no signature here")

        def __call__(self, **kwargs: Any) -> None:
            return None

    workflow = ab.Workflow.from_dict(
        {"name": "t", "steps": [{"id": "s", "function": Opaque(), "inputs": {"a": 1}}]}
    )
    workflow.validate(ab.Registry())


@pytest.mark.anyio
async def test_the_runtime_refuses_before_any_step_runs(reg: ab.Registry) -> None:
    ran: list[str] = []

    async def first() -> None:
        ran.append("first")

    reg.register("tool", "first", first)
    workflow = {
        "name": "t",
        "steps": [
            {"id": "a", "tool": "first"},
            {"id": "b", "function": "save", "inputs": {"lable": "${steps.a.output}"}},
        ],
    }
    with pytest.raises(ab.WorkflowValidationError, match="lable"):
        await ab.Runtime(reg).run_async(workflow)
    assert ran == []


def test_an_agent_framework_object_is_left_to_its_adapter() -> None:
    # A class that looks like LangChain's Runnable by module and name, as framework
    # detection reads it: its adapter, not its __call__, takes the step's inputs.
    base = type("Runnable", (), {"__module__": "langchain_core.runnables.base"})

    class Chain(base):  # type: ignore[misc, valid-type]
        def __call__(self, tool_input: str, /) -> str:
            return tool_input

    registry = ab.Registry()
    registry.register("tool", "chain", Chain())
    workflow = ab.Workflow.from_dict(
        {"name": "t", "steps": [{"id": "c", "tool": "chain", "inputs": {"question": "hi"}}]}
    )
    workflow.validate(registry)
