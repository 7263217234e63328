"""Every bad workflow file or mapping is a WorkflowValidationError, never Python's own.

Each case here once escaped as another type (ValueError, KeyError, AttributeError,
IndexError, TypeError, OverflowError, RecursionError) or was silently accepted. YAML
cases run on both parsers: libyaml's and PyYAML's pure one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentbridge as ab
from agentbridge.workflow import _yaml

pytestmark = pytest.mark.timeout(30)

PRIVATE = re.compile(r"\b_[A-Za-z]\w*|Lined")
STEP = "steps:\n  - {id: a, function: f}\n"


@pytest.fixture(
    params=[
        pytest.param(yaml.SafeLoader, id="pure"),
        pytest.param(
            getattr(yaml, "CSafeLoader", None),
            id="libyaml",
            marks=pytest.mark.skipif(not yaml.__with_libyaml__, reason="no libyaml"),
        ),
    ]
)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Read YAML with each of PyYAML's parsers in turn."""
    monkeypatch.setattr(_yaml, "_Loader", request.param)
    return request.param


def refused(text: str) -> tuple[ab.Problem, ...]:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml_string(text)
    problems = caught.value.problems
    assert problems
    for problem in problems:
        assert not PRIVATE.search(problem.message), problem
    return problems


def refused_mapping(data: object) -> tuple[ab.Problem, ...]:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_dict(data)  # type: ignore[arg-type]
    problems = caught.value.problems
    for problem in problems:
        assert not PRIVATE.search(problem.message), problem
    return problems


HUGE = "1" + "0" * 5_000

# The rows of the table in issue #8: (YAML text, line of the problem, a word it has).
TABLE = [
    pytest.param("name: !!float abc\n" + STEP, 1, "!!float", id="float-abc"),
    pytest.param("name: !!int abc\n" + STEP, 1, "!!int", id="int-abc"),
    pytest.param("name: !!bool maybe\n" + STEP, 1, "!!bool", id="bool-maybe"),
    pytest.param("name: x\n" + STEP + "outputs: {o: !!bool }\n", 4, "!!bool", id="bool-empty"),
    pytest.param("name: !!timestamp x\n" + STEP, 1, "!!timestamp", id="timestamp-x"),
    pytest.param("name: x\n" + STEP + "outputs: {o: !!int }\n", 4, "!!int", id="int-empty"),
    pytest.param("name: x\n" + STEP + "outputs: {o: !!float }\n", 4, "!!float", id="float-empty"),
    pytest.param("name: !!seq abc\n" + STEP, 1, "!!seq", id="seq-scalar"),
    pytest.param("name: !!seq {a: 1}\n" + STEP, 1, "!!seq", id="seq-mapping"),
    pytest.param("name: !!map abc\n" + STEP, 1, "!!map", id="map-scalar"),
    pytest.param("name: !!map [a, b]\n" + STEP, 1, "!!map", id="map-list"),
    pytest.param(f"name: x\n{STEP}outputs: {{o: {HUGE}}}\n", 4, "digits", id="int-digits"),
    pytest.param(f"name: x\n{STEP}outputs: {{o: 0x{'f' * 5_000}}}\n", 4, "digits", id="int-hex"),
    pytest.param(
        f"name: x\n{STEP}outputs: {{o: 0b{'1' * 30_000}}}\n", 4, "digits", id="int-binary"
    ),
    pytest.param(
        f"name: x\ninputs: [x]\n{STEP}outputs: {{o: '${{inputs.x[{HUGE}]}}'}}\n",
        5,
        "inputs.x",
        id="expression-index-digits",
    ),
    pytest.param(
        "name: x\nsteps:\n  - {id: a, function: f, timeout: 1" + "0" * 309 + "}\n",
        3,
        "timeout",
        id="timeout-overflow",
    ),
    pytest.param(
        "name: x\nsteps:\n  - {id: a, function: f, retry_delay: 1" + "0" * 309 + "}\n",
        3,
        "retry_delay",
        id="retry-delay-overflow",
    ),
    pytest.param(
        "name: x\nsteps:\n  - id: a\n    function: f\n    inputs: {v: "
        + "[" * 600
        + "]" * 600
        + "}\n",
        5,
        "deep",
        id="nesting-600",
    ),
    pytest.param(
        "name: x\nsteps:\n  - id: a\n    function: f\n    inputs: &x {k: [*x]}\n",
        5,
        "*x",
        id="self-referencing-alias",
    ),
]


@pytest.mark.parametrize(("text", "line", "word"), TABLE)
def test_every_row_of_the_table_is_a_validation_error(
    parser: Any, text: str, line: int, word: str
) -> None:
    (problem,) = refused(text)
    assert problem.line == line, problem
    assert word in problem.message


def test_a_huge_integer_in_a_message_is_described_not_printed() -> None:
    digits = "9" * 4_000  # within the limit, so it reaches the model, which refuses it
    (problem,) = refused(f"name: x\nsteps:\n  - {{id: a, function: f, retries: -{digits}}}\n")
    assert problem.line == 3
    assert "retries" in problem.message
    assert "integer of about 4,00" in problem.message
    assert len(problem.message) < 200


def test_nesting_far_past_the_recursion_limit_is_refused_at_its_line(parser: Any) -> None:
    text = "name: x\nsteps:\n  - id: a\n    function: f\n    inputs:\n      v: " + "[" * 100_000
    (problem,) = refused(text + "]" * 100_000 + "\n")
    assert problem.line == 6
    # Ours, or libyaml's own limit of 1,000, met while its scanner reads ahead.
    assert "max_depth" in problem.message or "nesting depth" in problem.message


REFUSED_SHAPES = [
    pytest.param("name: x\n" + STEP + "outputs: 0\n", "outputs", id="outputs-0"),
    pytest.param("name: x\n" + STEP + "outputs: []\n", "outputs", id="outputs-list"),
    pytest.param("name: x\n" + STEP + "outputs: ''\n", "outputs", id="outputs-empty-string"),
    pytest.param("name: x\n" + STEP + "outputs: false\n", "outputs", id="outputs-false"),
    pytest.param(
        "name: x\nsteps:\n  - {id: a, function: f, inputs: []}\n", "inputs", id="inputs-list"
    ),
    pytest.param("name: x\nsteps:\n  - {id: a, function: f, inputs: 0}\n", "inputs", id="inputs-0"),
    pytest.param(
        "name: x\nsteps:\n  - {id: a, function: f}\n  - {id: b, function: f, depends_on: {a: 1}}\n",
        "depends_on",
        id="depends-on-mapping",
    ),
]


@pytest.mark.parametrize(("text", "word"), REFUSED_SHAPES)
def test_shapes_once_accepted_are_refused(text: str, word: str) -> None:
    (problem,) = refused(text)
    assert word in problem.message
    assert problem.line is not None


@pytest.mark.parametrize(("text", "word"), REFUSED_SHAPES)
def test_the_same_shapes_are_refused_in_mappings(text: str, word: str) -> None:
    (problem,) = refused_mapping(yaml.safe_load(text))
    assert word in problem.message


def test_a_type_name_never_shows_the_loaders_classes() -> None:
    problems = refused(
        "name: x\nsteps:\n  - {id: a, function: f, inputs: [1, 2]}\n"
        "  - {id: b, function: [f], depends_on: [[a]]}\n"
    )
    assert len(problems) == 3
    assert {problem.line for problem in problems} == {3, 4}


def cyclic_list() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


def cyclic_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    return loop


@pytest.mark.parametrize("cycle", [cyclic_list, cyclic_dict])
@pytest.mark.parametrize("where", ["inputs", "outputs", "default"])
def test_a_mapping_that_contains_itself_is_refused(cycle: Any, where: str) -> None:
    data: dict[str, Any] = {"name": "x", "steps": [{"id": "a", "function": "f"}]}
    if where == "inputs":
        data["steps"][0]["inputs"] = {"v": cycle()}
    elif where == "outputs":
        data["outputs"] = {"o": cycle()}
    else:
        data["inputs"] = {"i": {"default": cycle()}}
    (problem,) = refused_mapping(data)
    assert "contains itself" in problem.message
    assert where in problem.message


def test_a_whole_workflow_that_contains_itself_is_refused() -> None:
    data: dict[str, Any] = {"name": "x", "steps": []}
    data["steps"].append(data)
    (problem,) = refused_mapping(data)
    assert "contains itself" in problem.message


def test_deep_mappings_are_refused_without_recursion() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    (problem,) = refused_mapping(
        {"name": "x", "steps": [{"id": "a", "function": "f", "inputs": {"v": deep}}]}
    )
    assert "max_depth" in problem.message
    assert "steps[0].inputs" in problem.message


def test_a_repeated_object_counts_every_time_it_appears() -> None:
    # A billion laughs in Python: 10 levels of 10 references to the level below.
    level: list[Any] = [1] * 10
    for _ in range(9):
        level = [level] * 10
    (problem,) = refused_mapping(
        {"name": "x", "steps": [{"id": "a", "function": "f", "inputs": {"v": level}}]}
    )
    assert "max_values" in problem.message


def test_huge_integers_in_mappings_are_refused() -> None:
    (problem,) = refused_mapping(
        {"name": "x", "steps": [{"id": "a", "function": "f", "retries": 10**5000}]}
    )
    assert "max_int_digits" in problem.message
    assert "steps[0].retries" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "word"),
    [
        pytest.param(
            "name: x\nname: y\n" + STEP, 2, "duplicate key 'name' (first at line 1)", id="dup"
        ),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: *nowhere}\n", 4, "*nowhere", id="undefined-alias"
        ),
        pytest.param("a: &x 1\nname: &x y\n" + STEP, 2, "&x", id="duplicate-anchor"),
        pytest.param("name: x\n" + STEP + "outputs: {[a]: 1}\n", 4, "key", id="list-key"),
        pytest.param(
            "name: x\n" + STEP + "---\nname: y\n", 4, "one YAML document", id="two-documents"
        ),
        pytest.param("name: x\n" + STEP + "outputs: {o: <<}\n", 4, "<<", id="merge-as-value"),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: !!python/name:os.system }\n",
            4,
            "not allowed",
            id="python-tag",
        ),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: !local 1}\n", 4, "not allowed", id="local-tag"
        ),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: !!binary 'aGk'}\n", 4, "!!binary", id="binary"
        ),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: 2001-13-45}\n", 4, "!!timestamp", id="bad-date"
        ),
        pytest.param("name: x\n" + STEP + "outputs: !!omap [a]\n", 4, "!!omap", id="omap-items"),
        pytest.param(
            "name: x\n" + STEP + "outputs: {o: \x01}\n", 4, "invalid YAML", id="control-char"
        ),
        pytest.param("name: x\nsteps: [\n", 3, "invalid YAML", id="unclosed"),
    ],
)
def test_malformed_yaml_names_its_line(parser: Any, text: str, line: int, word: str) -> None:
    (problem,) = refused(text)
    assert problem.line == line, problem
    assert word in problem.message


def test_the_safe_tags_still_build_plain_data(parser: Any) -> None:
    wf = ab.Workflow.from_yaml_string(
        "name: x\n"
        "inputs:\n  base: {default: &d {retries: 2, timeout: 1}}\n"
        "steps:\n  - {<<: *d, id: a, function: f, timeout: 5}\n"
        "outputs:\n  s: !!set {a, b}\n  p: !!pairs [{a: 1}, {a: 2}]\n  b: !!binary aGk=\n"
        "  t: 2001-12-14\n  i: 0x1f\n  f: 1_000.5\n  n: ~\n"
    )
    step = wf.steps[0]
    assert (step.retries, step.timeout) == (2, 5.0), "own keys win over merged ones"
    outputs = dict(wf.outputs)
    assert outputs["s"] == {"a", "b"}
    assert outputs["p"] == [("a", 1), ("a", 2)]
    assert outputs["b"] == b"hi"
    assert str(outputs["t"]) == "2001-12-14"
    assert (outputs["i"], outputs["f"], outputs["n"]) == (31, 1000.5, None)


def test_lines_are_the_same_on_both_parsers(parser: Any) -> None:
    wf = ab.Workflow.from_yaml_string(
        "name: x\nsteps:\n  - id: a\n    function: f\n\n  - {id: b, function: f}\n"
    )
    assert [step.line for step in wf.steps] == [3, 6]


def test_text_that_is_not_unicode_is_refused() -> None:
    (problem,) = refused("name: x\n" + STEP + "outputs: {o: '\ud800'}\n")
    assert problem.line == 4


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\nsteps:\n  - {id: a, function: caf\xe9}\n")
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml(path)
    (problem,) = caught.value.problems
    assert problem.line == 3
    assert "UTF-8" in problem.message


def deeply_nested() -> dict[str, Any]:
    deep: dict[str, Any] = {}
    for _ in range(10_000):
        deep = {"k": deep}
    return deep


def built_step(inputs: dict[str, Any]) -> ab.Step:
    return ab.Step(id="ask", kind="function", target="f", inputs=inputs)


def inputs_containing_themselves() -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    inputs["again"] = inputs
    return inputs


@pytest.mark.parametrize(
    ("inputs", "input_name", "what"),
    [
        pytest.param(lambda: {"v": cyclic_list()}, "v", "contains itself", id="cyclic-list"),
        pytest.param(lambda: {"v": cyclic_dict()}, "v", "contains itself", id="cyclic-dict"),
        pytest.param(inputs_containing_themselves, "again", "contains itself", id="inputs"),
        pytest.param(
            lambda: {"v": deeply_nested()}, "v", "nests lists and mappings more than 200", id="deep"
        ),
    ],
)
def test_a_step_built_in_python_with_inputs_no_copy_bounded_is_refused_by_name(
    inputs: Any, input_name: str, what: str
) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        built_step(inputs())
    (problem,) = caught.value.problems
    assert problem.step_id == "ask"
    assert problem.message.startswith(f"input '{input_name}' {what}")
    assert "step 'ask'" in str(caught.value)


@pytest.mark.parametrize("value", [cyclic_list, deeply_nested], ids=["cyclic", "deep"])
def test_a_workflow_built_in_python_with_such_an_output_is_refused(value: Any) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow(name="w", steps=(built_step({}),), outputs={"o": value()})
    (problem,) = caught.value.problems
    assert problem.message.startswith("output 'o' ")


def test_data_as_deep_as_the_loader_allows_still_builds_a_step() -> None:
    # 200 lists deep, DEPTH_CEILING, the most LoadLimits(max_depth=...) may allow.
    deep: list[Any] = ["${inputs.x}"]
    for _ in range(198):
        deep = [deep]
    step = built_step({"v": [deep], "shared": [deep, deep]})
    assert step.inputs["shared"][1] is deep
