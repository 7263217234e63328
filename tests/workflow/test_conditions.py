"""``when:`` conditions: the grammar, its evaluation, and properties of the parser."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentbridge as ab
from agentbridge.workflow._conditions import equal, parse_condition, truthy

pytestmark = pytest.mark.timeout(30)


def holds(text: str, value: object) -> bool:
    return parse_condition(text).holds({"x": value}, {})


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("${inputs.x}", "yes", True),
        ("${inputs.x}", "", False),
        ("not ${inputs.x}", [], True),
        ("  not   ${inputs.x}  ", [1], False),
        ("${inputs.x} == 'bug'", "bug", True),
        ('${inputs.x}=="bug"', "feature", False),
        ("${inputs.x} != 'bug'", "feature", True),
        ("${inputs.x} == 3", 3, True),
        ("${inputs.x} == 3", 3.0, True),
        ("${inputs.x} == 2.5", 2.5, True),
        ("${inputs.x} == -1e2", -100, True),
        ("${inputs.x} == true", True, True),
        ("${inputs.x} == true", 1, False),
        ("${inputs.x} == 1", True, False),
        ("${inputs.x} == null", None, True),
        ("${inputs.x} == null", 0, False),
        ("${inputs.x} in ['a', 'b']", "b", True),
        ("${inputs.x} in []", "b", False),
        ("${inputs.x} not in ['a', 'b']", "c", True),
        ("${inputs.x} not  in [ 'a' , 1 ]", 1, False),
        ("${inputs.x['k']} == 'v'", {"k": "v"}, True),
    ],
)
def test_the_grammar(text: str, value: object, expected: bool) -> None:
    assert holds(text, value) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "must start with a ${...}"),
        ("'a' == ${inputs.x}", "must start with a ${...}"),
        ("${inputs.x} == bug", "quote text"),
        ("${inputs.x} == True", "quote text"),
        ("${inputs.x} and ${inputs.y}", "cannot read"),
        ("${inputs.x} == 'a' or x", "no and/or"),
        ("${inputs.x} in 'ab'", "takes a list"),
        ("${inputs.x} in ['a' 'b']", "commas"),
        ("${inputs.x} in ['a'", "close it with ]"),
        ("not ${inputs.x} == 'a'", "cannot read"),
        ("${inputs.x} ==", "expected a literal"),
        ("${inputs.x.__class__}", "is not allowed"),
        ("${inputs.x.gi_frame}", "interpreter internal"),
        ("${oops}", "is not a valid expression"),
    ],
)
def test_malformed_conditions(text: str, expected: str) -> None:
    with pytest.raises(ab.ExpressionError) as caught:
        parse_condition(text)
    assert expected in str(caught.value)


def test_no_method_of_a_value_runs() -> None:
    class Hostile:
        def __bool__(self) -> bool:
            raise AssertionError("__bool__ ran")

        def __len__(self) -> int:
            raise AssertionError("__len__ ran")

        def __eq__(self, other: object) -> bool:
            raise AssertionError("__eq__ ran")

        __hash__ = object.__hash__

    class Text(str):
        def __eq__(self, other: object) -> bool:
            raise AssertionError("__eq__ ran")

        __hash__ = str.__hash__

    class Items(list[int]):
        def __len__(self) -> int:
            raise AssertionError("__len__ ran")

    assert holds("${inputs.x}", Hostile()) is True
    assert holds("${inputs.x} == 'a'", Hostile()) is False
    assert holds("${inputs.x} == 'a'", Text("a")) is True
    assert holds("${inputs.x}", Items()) is False


def test_a_missing_value_names_the_step() -> None:
    workflow = ab.Workflow.from_dict(
        {
            "name": "t",
            "inputs": ["x"],
            "steps": [{"id": "s", "tool": "t", "when": "${inputs.x.missing}"}],
        }
    )
    with pytest.raises(ab.ExpressionError, match="step 's', when: "):
        workflow.steps[0].evaluate_condition({"x": {}}, {})


# --- properties ---------------------------------------------------------------------

literals = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet=st.characters(blacklist_characters="'\"", codec="utf-8"), max_size=10),
)


def written(literal: object) -> str:
    if literal is None:
        return "null"
    if isinstance(literal, bool):
        return "true" if literal else "false"
    if isinstance(literal, float):
        return repr(literal).replace("inf", "1e999")
    if isinstance(literal, str):
        return f"'{literal}'"
    return str(literal)


def expected_equal(value: object, literal: object) -> bool:
    if literal is None or isinstance(literal, bool) or isinstance(value, bool):
        return value is literal
    if isinstance(literal, str) or isinstance(value, str):
        return type(value) is type(literal) and value == literal
    return value == literal


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_an_expression_error(text: str) -> None:
    try:
        parse_condition(text)
    except ab.ExpressionError:
        pass


@given(st.text(alphabet="${}[]'\" =!notin,.-0123456789abx_", max_size=40))
def test_near_grammar_text_parses_or_raises_an_expression_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ab.ExpressionError:
        return
    assert condition.text == text


@given(literals, literals, st.sampled_from(["==", "!="]))
def test_comparisons_match_the_reference_semantics(
    value: object, literal: object, operator: str
) -> None:
    condition = parse_condition(f"${{inputs.x}} {operator} {written(literal)}")
    parsed = condition.literals[0]
    assert expected_equal(parsed, literal) or parsed == literal
    expected = expected_equal(value, parsed)
    assert condition.holds({"x": value}, {}) is (expected if operator == "==" else not expected)


@given(literals, st.lists(literals, max_size=5), st.booleans())
def test_in_matches_any_of_the_list(value: object, items: list[object], negated: bool) -> None:
    text = f"${{inputs.x}} {'not in' if negated else 'in'} [{', '.join(map(written, items))}]"
    condition = parse_condition(text)
    found = any(expected_equal(value, item) for item in condition.literals)
    assert condition.holds({"x": value}, {}) is (not found if negated else found)


@given(st.one_of(literals, st.lists(st.integers()), st.dictionaries(st.text(), st.integers())))
def test_truthiness_is_pythons_for_builtin_types(value: Any) -> None:
    assert truthy(value) is bool(value)
    assert parse_condition("not ${inputs.x}").holds({"x": value}, {}) is (not bool(value))


@given(literals)
def test_equal_is_reflexive_for_literals(value: object) -> None:
    assert equal(value, value)
