"""Expressions: ``${inputs.X}`` and ``${steps.ID.output}`` with field and index access."""

from __future__ import annotations

import types
from typing import Any

import pytest

import agentbridge as ab

from ._helpers import build, yaml_workflow

pytestmark = pytest.mark.timeout(30)


class Capture:
    """A step that records the keyword arguments it was called with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return kwargs

    @property
    def only(self) -> dict[str, Any]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


@pytest.fixture
def capture(reg: ab.Registry) -> Capture:
    recorder = Capture()
    reg.register("function", "capture", recorder)
    return recorder


def run(
    wf: ab.Workflow, reg: ab.Registry, inputs: dict[str, Any] | None = None
) -> ab.WorkflowResult:
    return ab.run_workflow(wf, inputs, registry=reg)


def captured(
    capture: Capture,
    reg: ab.Registry,
    step_inputs: Any,
    values: dict[str, Any] | None = None,
    *before: dict[str, Any],
) -> Any:
    """The arguments a step gets for ``step_inputs``, in a run given ``values`` (each a
    declared input of the workflow) and the steps ``before`` it."""
    values = values or {}
    step = {"id": "c", "function": "capture", "inputs": step_inputs}
    run(build(*before, step, inputs=list(values)), reg, values)
    return capture.only


def test_a_whole_expression_keeps_its_type(reg: ab.Registry, capture: Capture) -> None:
    marker = object()
    names = ("n", "items", "obj", "none")
    got = captured(
        capture,
        reg,
        {name: f"${{inputs.{name}}}" for name in names},
        {"n": 3, "items": [1, 2], "obj": marker, "none": None},
    )
    assert got["n"] == 3
    assert type(got["n"]) is int
    assert got["items"] == [1, 2]
    assert got["obj"] is marker
    assert got["none"] is None


def test_an_embedded_expression_is_stringified(reg: ab.Registry, capture: Capture) -> None:
    step_inputs = {
        "one": "n=${inputs.n}!",
        "two": "${inputs.a}-${inputs.b}",
        "listed": "items: ${inputs.items}",
    }
    values = {"n": 3, "a": "x", "b": 4.5, "items": [1, 2]}
    got = captured(capture, reg, step_inputs, values)
    assert got == {"one": "n=3!", "two": "x-4.5", "listed": "items: [1, 2]"}


def test_literals_pass_through_unchanged(reg: ab.Registry, capture: Capture) -> None:
    wf = yaml_workflow(
        """
        name: t
        steps:
          - id: c
            function: capture
            inputs: {i: 1, f: 2.5, b: true, n: null, s: plain, l: [1, two], m: {k: v}}
        """
    )
    run(wf, reg)
    assert capture.only == {
        "i": 1,
        "f": 2.5,
        "b": True,
        "n": None,
        "s": "plain",
        "l": [1, "two"],
        "m": {"k": "v"},
    }


def test_field_index_and_key_access(reg: ab.Registry, capture: Capture) -> None:
    @reg.function
    def source() -> dict[str, Any]:
        return {
            "body": "hello",
            "tags": ["x", "y"],
            "meta": {"k": "v", "rows": [{"id": 7}]},
            "obj": types.SimpleNamespace(name="attr", items=("a", "b")),
        }

    wf = yaml_workflow(
        """
        name: t
        steps:
          - id: src
            function: source
          - id: c
            function: capture
            inputs:
              body: "${steps.src.output.body}"
              tag: "${steps.src.output.tags[1]}"
              key: "${steps.src.output['meta']['k']}"
              dotted: "${steps.src.output.meta.k}"
              deep: "${steps.src.output.meta.rows[0].id}"
              attr: "${steps.src.output.obj.name}"
              attr_index: "${steps.src.output.obj.items[0]}"
              embedded: "tag=${steps.src.output.tags[0]}"
        """
    )
    run(wf, reg)
    assert capture.only == {
        "body": "hello",
        "tag": "y",
        "key": "v",
        "dotted": "v",
        "deep": 7,
        "attr": "attr",
        "attr_index": "a",
        "embedded": "tag=x",
    }


def test_access_into_inputs(reg: ab.Registry, capture: Capture) -> None:
    step_inputs = {"first": "${inputs.data.rows[0]}", "k": "${inputs.data['k']}"}
    got = captured(capture, reg, step_inputs, {"data": {"rows": [10, 20], "k": "v"}})
    assert got == {"first": 10, "k": "v"}


def test_nested_lists_and_mappings_are_substituted(reg: ab.Registry, capture: Capture) -> None:
    payload = {
        "list": ["${inputs.x}", {"inner": "${inputs.y}"}, "y=${inputs.y}", 5],
        "lit": "plain",
    }
    got = captured(capture, reg, {"payload": payload}, {"x": 1, "y": [True]})
    assert got == {"payload": {"list": [1, {"inner": [True]}, "y=[True]", 5], "lit": "plain"}}


def test_double_dollar_is_a_literal(reg: ab.Registry, capture: Capture) -> None:
    # "nope" is not a declared input: an escaped expression is not a reference.
    step_inputs = {"whole": "$${inputs.nope}", "inside": "cost: $${inputs.x} and ${inputs.x}"}
    got = captured(capture, reg, step_inputs, {"x": 5})
    assert got == {"whole": "${inputs.nope}", "inside": "cost: ${inputs.x} and 5"}


def test_substituted_text_is_never_re_expanded(reg: ab.Registry, capture: Capture) -> None:
    @reg.function
    def sneaky() -> str:
        return "${inputs.secret}"

    step_inputs = {
        "whole": "${inputs.x}",
        "inside": "got ${inputs.x}",
        "from_step": "${steps.s.output}",
        "from_step_inside": "step said ${steps.s.output}",
    }
    values = {"x": "${inputs.secret}", "secret": "leaked"}
    assert captured(capture, reg, step_inputs, values, {"id": "s", "function": "sneaky"}) == {
        "whole": "${inputs.secret}",
        "inside": "got ${inputs.secret}",
        "from_step": "${inputs.secret}",
        "from_step_inside": "step said ${inputs.secret}",
    }


def test_a_reference_implies_a_dependency(reg: ab.Registry, capture: Capture) -> None:
    order: list[str] = []

    @reg.function
    def first() -> dict[str, int]:
        order.append("first")
        return {"value": 41}

    # The consumer is listed first and has no depends_on: only the reference orders it.
    wf = build(
        {
            "id": "consumer",
            "function": "capture",
            "inputs": {"v": "${steps.producer.output.value}"},
        },
        {"id": "producer", "function": "first"},
    )
    assert wf.steps_by_id["consumer"].depends_on == ("producer",)
    run(wf, reg)
    assert order == ["first"]
    assert capture.only == {"v": 41}


def test_references_inside_nested_values_imply_dependencies() -> None:
    wf = build(
        {"id": "a", "function": "f"},
        {"id": "b", "function": "f"},
        {
            "id": "c",
            "function": "f",
            "inputs": {"deep": [{"x": "n=${steps.b.output}"}, "${steps.a.output[0]}"]},
        },
    )
    assert wf.steps_by_id["c"].depends_on == ("a", "b")


def test_input_defaults_apply_when_not_given(reg: ab.Registry, capture: Capture) -> None:
    wf = build(
        {"id": "c", "function": "capture", "inputs": {"a": "${inputs.a}", "b": "${inputs.b}"}},
        inputs={"a": {"default": 1}, "b": {"default": "bee"}},
    )
    run(wf, reg, {"b": "given"})
    assert capture.only == {"a": 1, "b": "given"}


def test_output_expressions(reg: ab.Registry) -> None:
    @reg.function
    def source() -> dict[str, Any]:
        return {"body": "hello", "n": 2}

    wf = build(
        {"id": "src", "function": "source"},
        inputs=["who"],
        outputs={
            "body": "${steps.src.output.body}",
            "n": "${steps.src.output['n']}",
            "greeting": "hi ${inputs.who}, n=${steps.src.output.n}",
            "literal": 5,
        },
    )
    result = run(wf, reg, {"who": "bob"})
    assert result.outputs == {"body": "hello", "n": 2, "greeting": "hi bob, n=2", "literal": 5}


@pytest.mark.parametrize(
    "expression",
    [
        "${nothing.here}",
        "${inputs}",
        "${steps.a}",
        "${steps.a.result}",
        "${inputs.}",
        "x ${inputs.x",
        "${inputs.x",
    ],
)
def test_malformed_references_are_rejected_at_load(expression: str) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        build(
            {"id": "a", "function": "f"},
            {"id": "b", "function": "f", "inputs": {"v": expression}},
            inputs=["x"],
        )
    assert any(problem.step_id == "b" for problem in caught.value.problems)


def test_a_mapping_key_wins_over_an_attribute(reg: ab.Registry, capture: Capture) -> None:
    @reg.function
    def source() -> dict[str, Any]:
        return {"items": [1, 2], "keys": "k", "get": "g"}

    step_inputs = {name: f"${{steps.src.output.{name}}}" for name in ("items", "keys", "get")}
    got = captured(capture, reg, step_inputs, None, {"id": "src", "function": "source"})
    assert got == {"items": [1, 2], "keys": "k", "get": "g"}


def test_escapes_inside_substituted_text_stay_as_they_are(
    reg: ab.Registry, capture: Capture
) -> None:
    step_inputs = {"whole": "${inputs.x}", "inside": "a ${inputs.x}"}
    got = captured(capture, reg, step_inputs, {"x": "$${inputs.x}"})
    assert got == {"whole": "$${inputs.x}", "inside": "a $${inputs.x}"}


def test_a_step_s_inputs_evaluate_as_their_compiled_dict_does() -> None:
    # Step.evaluate_inputs resolves a one-expression input without evaluate()'s call:
    # the same values as evaluate() of the whole dict, lists and dicts still new.
    from agentbridge.workflow._expressions import evaluate

    literal = [1, {"k": "v"}]
    step = ab.Step(
        "s",
        "function",
        "f",
        inputs={
            "whole": "${inputs.x}",
            "field": "${inputs.x.k}",
            "text": "a ${inputs.x.k} b",
            "list": [1, "${inputs.x}"],
            "dict": {"f": "${inputs.x.k}"},
            "literal": literal,
            "number": 3,
            "output": "${steps.p.output[0]}",
        },
    )
    inputs, outputs = {"x": {"k": 2}}, {"p": ["first"]}
    fast = step.evaluate_inputs(inputs, outputs)
    assert fast == evaluate(step._bindings, inputs, outputs)
    assert list(fast) == list(step.inputs)
    assert fast["whole"] is inputs["x"]
    assert fast["literal"] == literal
    assert fast["literal"] is not literal
    assert fast["literal"][1] is not literal[1]


def test_a_path_that_misses_is_still_an_error_naming_it() -> None:
    step = ab.Step("s", "function", "f", inputs={"v": "${inputs.x.k}", "w": "${inputs.x}"})
    with pytest.raises(ab.ExpressionError, match=r"\$\{inputs\.x\.k\}.*input 'x'"):
        step.evaluate_inputs({"x": {}}, {})
    assert step.evaluate_inputs({"x": {"k": 0}}, {}) == {"v": 0, "w": {"k": 0}}


def test_passed_outputs_name_each_step_read_whole_or_by_a_walk_that_evaluates_alike() -> None:
    step = ab.Step(
        "s",
        "function",
        "f",
        inputs={"whole": "${steps.a.output}", "field": "${steps.b.output.k[1]}", "n": 3},
    )
    passed = step.passed_outputs()
    assert passed is not None
    assert set(passed) == {"whole", "field"}
    assert passed["whole"] == ("a", None)  # the output itself: no walk to ship
    source, path = passed["field"]
    assert source == "b"
    assert path is not None
    output = {"k": ["x", "y"]}
    assert path(output) == step.evaluate_inputs({}, {"a": 0, "b": output})["field"] == "y"
    inside = ab.Step("t", "function", "f", inputs={"v": "a ${steps.a.output}"})
    assert inside.passed_outputs() is None
