"""Property-based: whatever a loader is given, the only outcomes are a valid Workflow or a
WorkflowValidationError whose problems name a line (when read from a file) and no
internal name.

Deterministic: every test derandomizes hypothesis (its examples follow from the test
itself, with no example database), so CI runs the same examples every time; the
numbers of examples keep the whole module under a minute on 2 slow vCPUs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentbridge as ab

pytestmark = pytest.mark.timeout(60)

PRIVATE = re.compile(r"\b_[A-Za-z]\w*|Lined")
#: What a message quotes from the input, which may hold any name at all.
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\$\{[^}]*\}?")
#: Problems about the whole document, which has no line of its own.
WHOLE_DOCUMENT = ("a workflow must be a mapping", "the size of the workflow")

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SMALL_LIMITS = ab.LoadLimits(max_depth=20, max_values=5_000, max_steps=50)


def check_outcome(load: Any, *, lines: bool) -> None:
    """``load()`` builds a workflow or raises a WorkflowValidationError that says where."""
    try:
        workflow = load()
    except ab.WorkflowValidationError as exc:
        problems = exc.problems
    else:
        assert isinstance(workflow, ab.Workflow)
        return
    assert problems
    for problem in problems:
        assert isinstance(problem.message, str)
        assert problem.message
        assert not PRIVATE.search(QUOTED.sub("", problem.message)), problem
        if lines and not problem.message.startswith(WHOLE_DOCUMENT):
            assert problem.line is not None, problem


# --- YAML text -----------------------------------------------------------------------------

YAML_CHARACTERS = st.sampled_from(list("{}[]:,-&*!|>'\"#%@?`~ \n\t\r.0123456789abexyz_$<=\\"))


@FUZZ
@given(st.text(YAML_CHARACTERS, max_size=80))
def test_any_yaml_text(text: str) -> None:
    check_outcome(lambda: ab.Workflow.from_yaml_string(text, limits=SMALL_LIMITS), lines=True)


@FUZZ
@given(st.text(max_size=60))
def test_any_unicode_text(text: str) -> None:
    check_outcome(lambda: ab.Workflow.from_yaml_string(text), lines=True)


# --- YAML token streams --------------------------------------------------------------------

TOKENS = [
    "name:", "name: x", "steps:", "inputs:", "outputs:", "depends_on:", "timeout:",
    "retries:", "retry_delay:", "id:", "function:", "agent:", "tool:", "default:", "- ",
    "  ", "    ", "\n", "{", "}", "[", "]", ",", ":", "? ", "a", "b", "f", "x", "1", "-1",
    "0x1f", "1e309", "9" * 4400, ".inf", ".nan", "~", "null", "true", "maybe", "''",
    "'${inputs.x}'", "'${steps.a.output[0]}'", "'${steps.a.output.b}'", "'${'", "&a",
    "*a", "&b", "*b", "<<:", "<<", "!!int", "!!float", "!!bool", "!!str", "!!seq", "!!map",
    "!!set", "!!omap", "!!pairs", "!!binary", "!!timestamp", "!!null", "!!python/object:os.system",
    "!local", "!", "---", "...", "|", ">", "#c", "%YAML 1.1", "2001-12-14", "2001-13-45",
    "\t", "\x85", "\ufeff",
]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from(["", " ", "\n"]))
def test_any_yaml_token_stream(tokens: list[str], separator: str) -> None:
    text = separator.join(tokens)
    check_outcome(lambda: ab.Workflow.from_yaml_string(text, limits=SMALL_LIMITS), lines=True)


WELL_FORMED_STEP = "  - {id: a, function: f}\n"


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=12))
def test_token_streams_inside_a_valid_file(tokens: list[str]) -> None:
    value = " ".join(tokens)
    for text in (
        f"name: x\nsteps:\n{WELL_FORMED_STEP}  - id: b\n    function: f\n"
        f"    inputs: {{v: {value}}}\n",
        f"name: x\nsteps:\n{WELL_FORMED_STEP}outputs:\n  o: {value}\n",
        f"name: x\ninputs:\n  i: {{default: {value}}}\nsteps:\n{WELL_FORMED_STEP}",
    ):
        check_outcome(lambda text=text: ab.Workflow.from_yaml_string(text), lines=True)


# --- nested dict and list structures -------------------------------------------------------


def f() -> None:
    """A callable a step may name in Python."""


def huge_integer(digits: int) -> int:
    """An integer of ``digits`` digits (built here: hypothesis cannot print one)."""
    return -(10**digits)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["${inputs.x}", "${steps.a.output}", "${", f])
    | st.builds(huge_integer, st.sampled_from([400, 5_000]))
)
KEYS = st.sampled_from(
    ["name", "steps", "inputs", "outputs", "id", "function", "agent", "tool", "depends_on",
     "timeout", "retries", "retry_delay", "default", "description", "a", "x", 1, None, ""]
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=30,
)


STEP_MAPPINGS = st.dictionaries(KEYS, DATA, max_size=6)
WORKFLOW_MAPPINGS = st.fixed_dictionaries(
    {"name": st.one_of(st.just("x"), DATA), "steps": st.lists(STEP_MAPPINGS, max_size=4) | DATA},
    optional={"inputs": DATA, "outputs": DATA},
)


@FUZZ
@given(WORKFLOW_MAPPINGS, st.integers(min_value=0, max_value=3))
def test_any_mapping(data: dict[str, Any], cycle: int) -> None:
    # Some examples are made to contain themselves, at some list or mapping inside.
    containers = [data, *_containers(data)]
    target = containers[cycle % len(containers)] if cycle else None
    if isinstance(target, list):
        target.append(data)
    elif isinstance(target, dict):
        target["again"] = data
    check_outcome(lambda: ab.Workflow.from_dict(data, limits=SMALL_LIMITS), lines=False)


@FUZZ
@given(WORKFLOW_MAPPINGS)
def test_a_mapping_and_its_yaml_find_the_same_outcome(data: dict[str, Any]) -> None:
    try:
        text = yaml.safe_dump(data)
    except (yaml.YAMLError, ValueError):  # a callable, a tuple, a huge int: Python only
        return
    outcomes = []
    for load in (lambda: ab.Workflow.from_dict(data), lambda: ab.Workflow.from_yaml_string(text)):
        try:
            outcomes.append(type(load()))
        except ab.WorkflowValidationError as exc:
            outcomes.append(len(exc.problems) > 0)
    assert outcomes[0] == outcomes[1]


def _containers(value: Any) -> list[Any]:
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, list | dict):
                found.append(child)
                stack.append(child)
    return found


# --- ${...} expressions --------------------------------------------------------------------

EXPRESSION_PARTS = st.sampled_from(
    ["${", "}", "$${", "inputs.", "steps.", "x", "a", ".output", "[", "]", "'", '"', "0",
     "-1", "9" * 5000, ".", "_", "__class__", "gi_frame", " ", "\n", "\\", "${inputs.x}",
     "${steps.a.output}"]
)  # fmt: skip


@FUZZ
@given(st.lists(EXPRESSION_PARTS, max_size=12))
def test_any_expression(parts: list[str]) -> None:
    expression = "".join(parts)
    data = {
        "name": "x",
        "inputs": ["x"],
        "steps": [
            {"id": "a", "function": "f"},
            {"id": "b", "function": "f", "inputs": {"v": expression, "w": [expression]}},
        ],
        "outputs": {"o": expression},
    }
    check_outcome(lambda: ab.Workflow.from_dict(data), lines=False)
    text = yaml.safe_dump(data)
    check_outcome(lambda: ab.Workflow.from_yaml_string(text), lines=True)
