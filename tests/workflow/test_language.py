"""Loading ``for_each``, ``max_concurrency`` and ``when``: what is accepted, and what is
refused with which message."""

from __future__ import annotations

from typing import Any

import pytest

import agentbridge as ab

from ._helpers import build, yaml_workflow

pytestmark = pytest.mark.timeout(30)

SOURCE = {"id": "src", "tool": "t"}


def refused(*steps: dict[str, Any], **workflow: Any) -> list[str]:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        build(*steps, **workflow)
    return [problem.message for problem in caught.value.problems]


def test_for_each_and_when_imply_dependencies() -> None:
    workflow = build(
        SOURCE,
        {"id": "gate", "tool": "t"},
        {
            "id": "each",
            "tool": "t",
            "for_each": "${steps.src.output.items}",
            "when": "${steps.gate.output} == 'go'",
            "max_concurrency": 4,
        },
    )
    each = workflow.steps_by_id["each"]
    assert each.depends_on == ("gate", "src")
    assert (each.for_each, each.max_concurrency) == ("${steps.src.output.items}", 4)


def test_yaml_plain_scalars_work_for_both() -> None:
    workflow = yaml_workflow("""\
        name: t
        inputs: [kinds]
        steps:
          - id: src
            tool: t
          - id: each
            tool: t
            for_each: ${steps.src.output}
            when: ${inputs.kinds} in ['a', "b", 3, true, null]
            inputs: {x: "${item}", n: "${index}"}
    """)
    assert workflow.steps_by_id["each"].when == "${inputs.kinds} in ['a', \"b\", 3, true, null]"


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"inputs": {"x": "${item}"}}, "defined only in a step with for_each"),
        ({"inputs": {"x": "${index}"}}, "defined only in a step with for_each"),
        ({"max_concurrency": 2}, "max_concurrency limits the items of for_each"),
        ({"for_each": "steps.src.output"}, "for_each must be one ${...} expression"),
        ({"for_each": "${steps.src.output} and more"}, "for_each must be one ${...}"),
        ({"for_each": ["a"]}, "for_each must be one ${...} expression"),
        ({"for_each": "${item}"}, "names the items for_each gives"),
        ({"for_each": "${steps.src.output}", "max_concurrency": 0}, "1 or more"),
        ({"for_each": "${steps.src.output}", "max_concurrency": True}, "1 or more"),
        ({"for_each": "${steps.src.output}", "inputs": {"x": "${index.a}"}}, "a number"),
        ({"for_each": "${steps.src.output.__class__}"}, "is not allowed"),
        ({"when": True}, "when must be a condition"),
        ({"when": "${item}"}, "not defined in when:"),
        ({"when": "${steps.src.output} == bug"}, "quote text"),
        ({"when": "${steps.src.output.__class__}"}, "is not allowed"),
    ],
)
def test_malformed_fields_are_refused(step: dict[str, Any], expected: str) -> None:
    problems = refused(SOURCE, {"id": "s", "tool": "t", **step})
    assert any(expected in problem for problem in problems), problems


def test_references_of_for_each_and_when_are_checked() -> None:
    problems = refused(
        {"id": "s", "tool": "t", "for_each": "${steps.nope.output}", "when": "${inputs.no}"}
    )
    assert any("unknown step 'nope'" in problem for problem in problems)
    assert any("undeclared input 'no'" in problem for problem in problems)


def test_item_in_outputs_is_refused() -> None:
    problems = refused(SOURCE, outputs={"x": "${item}"})
    assert any("defined only in the inputs of a step with for_each" in p for p in problems)


def test_unknown_keys_list_the_new_ones() -> None:
    problems = refused({"id": "s", "tool": "t", "forEach": "x"})
    assert "for_each" in problems[0]
    assert "when" in problems[0]
