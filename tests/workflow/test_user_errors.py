"""Mistakes users really make, each refused with a message that names the fix; and the one
rule of what a name is, shared by loading and expressions."""

from __future__ import annotations

import keyword
import textwrap
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


def problem_of(text: str) -> ab.Problem:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml_string(textwrap.dedent(text))
    problems = caught.value.problems
    assert len(problems) == 1, problems
    return problems[0]


HEAD = "name: x\ninputs: [t]\nsteps:\n  - id: a\n    tool: t\n"


@pytest.mark.parametrize(
    ("text", "line", "fix"),
    [
        ("name: x\nsteps:\n\t- id: a\n\t  tool: t\n", 3, "indented with a tab"),
        ("name: x\nsteps:\n  - id: a\n  \ttool: t\n", 4, "replace the tab"),
        (HEAD + "    inputs: {text: ${inputs.t}}\n", 6, 'quote it: {text: "${inputs.text}"}'),
        (HEAD + "    inputs: {text: [${inputs.t}]}\n", 6, "unquoted ${...} inside"),
        (HEAD + "    inputs: {text: {{inputs.t}}}\n", 6, "{{...}} is Jinja syntax"),
        (HEAD + "    inputs:\n      text: {{ inputs.t }}\n", 7, "{{...}} is Jinja syntax"),
        (HEAD + '    inputs: {text: "{{inputs.t}}"}\n', 4, "write ${inputs.t}"),
        (HEAD + '    inputs: {text: "Hi {{ steps.a.output.x }}!"}\n', 4, "${steps.a.output.x}"),
        (
            HEAD + "    inputs: {text: $inputs.t}\n",
            4,
            "would stay literal text); write ${inputs.t}",
        ),
        (HEAD + '    inputs: {text: "cost: $steps.a.output"}\n', 4, "write ${steps.a.output}"),
        ("name: x\nsteps: []\n", 2, "the workflow has no steps: add at least one"),
        (
            "name: x\ninputs: [text]\nsteps:\n  - id: a\n    tool: t\n    inputs: [text]\n",
            4,
            'not a list; write inputs: {text: "${inputs.text}"}',
        ),
        ("name: x\nsteps:\n  - id: class\n    tool: t\n", 3, "is a Python keyword"),
        ("name: x\nsteps:\n  - id: my-step\n    tool: t\n", 3, "must be an identifier"),
    ],
)
def test_each_mistake_names_its_fix(text: str, line: int, fix: str) -> None:
    problem = problem_of(text)
    assert fix in problem.message
    assert problem.line == line


def test_text_that_only_looks_like_a_mistake_stays_literal() -> None:
    workflow = ab.Workflow.from_yaml_string(
        HEAD + "    inputs: {a: 'price $5', b: '{{ user }}', c: '$${inputs.t}', d: '$input'}\n"
    )
    assert workflow.steps[0].evaluate_inputs({"t": "T"}, {}) == {
        "a": "price $5",
        "b": "{{ user }}",
        "c": "${inputs.t}",
        "d": "$input",
    }


def test_from_yaml_given_yaml_text_says_which_method_reads_text() -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml("name: x\nsteps:\n  - id: a\n    tool: t\n")
    message = str(caught.value)
    assert "looks like YAML text" in message
    assert "Workflow.from_yaml_string(text)" in message


@pytest.mark.parametrize("name", ["αβ", "分类", "ñandú", unicodedata.normalize("NFD", "ñandú")])
def test_unicode_names_work_in_expressions(name: str) -> None:
    workflow = ab.Workflow.from_dict(
        {
            "name": "x",
            "inputs": [name],
            "steps": [
                {"id": name, "tool": "t", "inputs": {"v": f"${{inputs.{name}}}"}},
                {"id": "b", "tool": "t", "inputs": {"v": f"${{steps.{name}.output.{name}}}"}},
            ],
        }
    )
    assert workflow.steps_by_id["b"].depends_on == (name,)
    assert workflow.steps_by_id[name].evaluate_inputs({name: 1}, {}) == {"v": 1}
    assert workflow.steps_by_id["b"].evaluate_inputs({}, {name: {name: 2}}) == {"v": 2}


names = st.text(min_size=1, max_size=8)


@given(names)
def test_loading_and_expressions_agree_on_what_a_name_is(name: str) -> None:
    try:
        ab.Workflow.from_dict({"name": "x", "inputs": [name], "steps": [{"id": "a", "tool": "t"}]})
        declared = True
    except ab.WorkflowValidationError:
        declared = False
    try:
        ab.Workflow.from_dict(
            {
                "name": "x",
                "inputs": {name: None} if declared else {},
                "steps": [{"id": "a", "tool": "t", "inputs": {"v": f"${{inputs.{name}}}"}}],
            }
        )
        referenced = True
    except ab.WorkflowValidationError:
        referenced = False
    assert declared is name.isidentifier()
    if declared and not name.startswith("_") and name not in ("gi_frame", "cr_frame"):
        assert referenced, "every input a workflow may declare can be referenced"
    if not declared:
        assert not referenced


@given(names)
def test_a_step_id_is_a_name_that_is_not_a_keyword(name: str) -> None:
    try:
        ab.Workflow.from_dict(
            {
                "name": "x",
                "steps": [
                    {"id": name, "tool": "t"},
                    {"id": name + "_", "tool": "t", "inputs": {"v": f"${{steps.{name}.output}}"}},
                ],
            }
        )
        loaded = True
    except ab.WorkflowValidationError:
        loaded = False
    assert loaded is (name.isidentifier() and not keyword.iskeyword(name))
