"""Validation: one error lists every problem, with step ids and lines, before anything runs."""

from __future__ import annotations

import pathlib
import re
import textwrap
from typing import Any

import pytest
import yaml

import agentbridge as ab

from ._helpers import build

pytestmark = pytest.mark.timeout(30)


def load_problems(text: str) -> tuple[ab.WorkflowValidationError, tuple[ab.Problem, ...]]:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml_string(textwrap.dedent(text))
    return caught.value, caught.value.problems


def only(problems: tuple[ab.Problem, ...]) -> ab.Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_the_error_type() -> None:
    assert issubclass(ab.WorkflowValidationError, ab.WorkflowError)
    assert issubclass(ab.WorkflowValidationError, ValueError)
    assert issubclass(ab.WorkflowError, ab.AgentBridgeError)


def test_problem_renders_line_step_and_message() -> None:
    problem = ab.Problem("unknown agent 'x'", step_id="classify", line=7)
    text = str(problem)
    assert "line 7" in text
    assert "step 'classify'" in text
    assert "unknown agent 'x'" in text
    assert "plain" in str(ab.Problem("plain"))
    with pytest.raises(AttributeError):
        problem.message = "other"  # type: ignore[misc]


def test_malformed_yaml_names_the_line() -> None:
    _, problems = load_problems("name: x\n  bad: 1\nsteps: []\n")
    assert only(problems).line == 2


def test_unclosed_flow_sequence() -> None:
    _, problems = load_problems("name: x\nsteps: [\n")
    assert only(problems).line is not None


STEPS = "steps:\n  - id: a\n    function: f\n"


def test_an_input_declared_twice() -> None:
    _, problems = load_problems("name: x\ninputs:\n  - a\n  - a\n" + STEPS)
    problem = only(problems)
    assert "'a'" in problem.message
    assert "twice" in problem.message
    assert problem.line == 4


@pytest.mark.parametrize(
    ("text", "word", "line"),
    [
        # Problems with the whole document: any line (or none) will do.
        pytest.param("- a\n- b\n", "mapping", None, id="top-level-list"),
        pytest.param(STEPS, "name", None, id="no-name"),
        pytest.param("name: x\n", "steps", None, id="no-steps"),
        # Problems with one key: the key's line.
        pytest.param("name: x\nsteps: {a: 1}\n", "steps", 2, id="steps-a-mapping"),
        pytest.param("name: x\nsteps: 5\n", "steps", 2, id="steps-a-number"),
        pytest.param("name: x\ninputs: 5\n" + STEPS, "inputs", 2, id="inputs-int"),
        pytest.param("name: x\ninputs: nope\n" + STEPS, "inputs", 2, id="inputs-str"),
        pytest.param("name: x\ninputs:\n  a: 5\n" + STEPS, "'a'", 3, id="input-spec-int"),
        pytest.param("name: x\n" + STEPS + "outputs: [a]\n", "outputs", 5, id="outputs-list"),
        pytest.param("# a comment\nname: 5\n" + STEPS, "name", 2, id="name-int"),
    ],
)
def test_wrong_top_level_shapes(text: str, word: str, line: int | None) -> None:
    error, problems = load_problems(text)
    problem = only(problems)
    assert word in problem.message
    assert problem.message in str(error)
    assert not re.search(r"\b_[A-Za-z]\w*", problem.message), "no private names in messages"
    if line is not None:
        assert problem.line == line, problem


STEP_SHAPES = [
    pytest.param("timeout: soon", "timeout", id="timeout-not-a-number"),
    pytest.param("timeout: -1", "timeout", id="timeout-negative"),
    pytest.param("retries: -1", "retries", id="retries-negative"),
    pytest.param("retries: two", "retries", id="retries-not-an-int"),
    pytest.param("retries: 1.5", "retries", id="retries-a-float"),
    pytest.param("retry_delay: -0.5", "retry_delay", id="retry-delay-negative"),
    pytest.param("retry_delay: later", "retry_delay", id="retry-delay-not-a-number"),
    pytest.param("inputs: [1, 2]", "inputs", id="inputs-a-list"),
    pytest.param("depends_on: 5", "depends_on", id="depends-on-a-number"),
]


@pytest.mark.parametrize(("line", "word"), STEP_SHAPES)
def test_wrong_step_shapes_name_the_step_and_line(line: str, word: str) -> None:
    error, problems = load_problems(
        f"""\
        name: x
        steps:
          - id: ok
            function: f
          - id: bad
            function: f
            {line}
        """
    )
    problem = only(problems)
    assert problem.step_id == "bad"
    assert problem.line in (5, 6, 7)
    assert word in problem.message
    assert "bad" in str(error)


def test_a_step_that_is_not_a_mapping() -> None:
    _, problems = load_problems("name: x\nsteps:\n  - 5\n")
    assert only(problems).line == 3


@pytest.mark.parametrize("step_id", ["'a b'", "'1a'", "''", "5"])
def test_step_ids_must_be_identifiers(step_id: str) -> None:
    _, problems = load_problems(f"name: x\nsteps:\n  - id: {step_id}\n    function: f\n")
    assert only(problems).line == 3


def test_a_step_without_id() -> None:
    _, problems = load_problems("name: x\nsteps:\n  - function: f\n")
    problem = only(problems)
    assert problem.line == 3
    assert "id" in problem.message


def test_duplicate_ids() -> None:
    _, problems = load_problems(
        """\
        name: x
        steps:
          - id: a
            function: f
          - id: a
            tool: g
        """
    )
    problem = only(problems)
    assert problem.step_id == "a"
    assert problem.line == 5
    assert "duplicate" in problem.message.lower()


def test_a_step_with_no_kind() -> None:
    _, problems = load_problems("name: x\nsteps:\n  - id: a\n    inputs: {x: 1}\n")
    problem = only(problems)
    assert problem.step_id == "a"
    assert problem.line == 3
    for kind in ("agent", "function", "tool"):
        assert kind in problem.message


def test_a_step_with_several_kinds() -> None:
    _, problems = load_problems("name: x\nsteps:\n  - id: a\n    agent: f\n    tool: g\n")
    problem = only(problems)
    assert problem.step_id == "a"
    assert problem.line in (3, 4, 5)
    assert "agent" in problem.message
    assert "tool" in problem.message


UNKNOWN_REFERENCES = [
    pytest.param(
        "name: x\nsteps:\n  - id: a\n    function: f\n  - id: b\n    function: f\n"
        "    depends_on: [a, ghost]\n",
        "b",
        (5, 6, 7),
        "ghost",
        id="step-in-depends-on",
    ),
    pytest.param(
        "name: x\nsteps:\n  - id: a\n    function: f\n    inputs: {v: 'x ${steps.ghost.output}'}\n",
        "a",
        (3, 4, 5),
        "ghost",
        id="step-in-an-expression",
    ),
    pytest.param(
        "name: x\ninputs: [known]\nsteps:\n  - id: a\n    function: f\n"
        "    inputs: {v: '${inputs.unknwn}', w: '${inputs.known}'}\n",
        "a",
        (4, 5, 6),
        "unknwn",
        id="input-in-an-expression",
    ),
]


@pytest.mark.parametrize(("text", "step_id", "lines", "unknown"), UNKNOWN_REFERENCES)
def test_an_unknown_reference_names_its_step_and_line(
    text: str, step_id: str, lines: tuple[int, ...], unknown: str
) -> None:
    _, problems = load_problems(text)
    problem = only(problems)
    assert problem.step_id == step_id
    assert problem.line in lines
    assert unknown in problem.message


def test_unknown_references_in_outputs() -> None:
    error, problems = load_problems(
        "name: x\nsteps:\n  - id: a\n    function: f\n"
        "outputs:\n  o: '${steps.ghost.output}'\n  p: '${inputs.nope}'\n"
    )
    assert len(problems) == 2
    assert "ghost" in str(error)
    assert "nope" in str(error)
    assert all(problem.line in (5, 6, 7) for problem in problems)


def test_a_cycle_names_its_steps() -> None:
    error, problems = load_problems(
        """\
        name: x
        steps:
          - id: outside
            function: f
          - id: a
            function: f
            depends_on: [c]
          - id: b
            function: f
            inputs: {v: "${steps.a.output}"}
          - id: c
            function: f
            depends_on: [b, outside]
        """
    )
    assert problems
    text = str(error)
    assert "cycle" in text.lower()
    for step_id in ("'a'", "'b'", "'c'"):
        assert step_id in text or step_id.strip("'") in text
    cycle_messages = " ".join(problem.message for problem in problems)
    assert "outside" not in cycle_messages


def test_a_step_depending_on_itself() -> None:
    error, _ = load_problems("name: x\nsteps:\n  - id: a\n    function: f\n    depends_on: [a]\n")
    assert "cycle" in str(error).lower()
    assert "a" in str(error)


def test_every_problem_is_listed_at_once() -> None:
    error, problems = load_problems(
        """\
        name: x
        inputs: [known]
        steps:
          - id: dup
            function: f
          - id: dup
            function: f
          - id: kindless
            inputs: {x: 1}
          - id: greedy
            agent: f
            tool: g
          - id: slow
            function: f
            timeout: soon
          - id: eager
            function: f
            retries: -2
          - id: lost
            function: f
            depends_on: [ghost]
          - id: curious
            function: f
            inputs: {v: "${inputs.missing}"}
        """
    )
    # The line range of each faulty step (the first "dup" may be named too).
    expected = {
        "dup": (4, 7),
        "kindless": (8, 9),
        "greedy": (10, 12),
        "slow": (13, 15),
        "eager": (16, 18),
        "lost": (19, 21),
        "curious": (22, 24),
    }
    assert isinstance(problems, tuple)
    assert all(isinstance(problem, ab.Problem) for problem in problems)
    by_step: dict[str, list[ab.Problem]] = {}
    for problem in problems:
        assert problem.step_id is not None, problem
        by_step.setdefault(problem.step_id, []).append(problem)
    assert set(by_step) == set(expected)
    for step_id, (first, last) in expected.items():
        for problem in by_step[step_id]:
            assert problem.line is not None
            assert first <= problem.line <= last, problem
    text = str(error)
    for problem in problems:
        assert problem.message in text
    for word in ("ghost", "missing", "timeout", "retries"):
        assert word in text


def test_mapping_problems_name_steps_without_lines() -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_dict(
            {
                "name": "x",
                "steps": [
                    {"id": "a", "function": "f"},
                    {"id": "a", "function": "f"},
                    {"id": "b", "function": "f", "depends_on": ["ghost"]},
                ],
            }
        )
    problems = caught.value.problems
    assert {problem.step_id for problem in problems} == {"a", "b"}
    assert all(problem.line is None for problem in problems)


def test_file_problems_carry_lines(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsteps:\n  - id: a\n    function: f\n    depends_on: [ghost]\n")
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.Workflow.from_yaml(path)
    problem = only(caught.value.problems)
    assert problem.line in (3, 4, 5)
    assert problem.step_id == "a"


# Registry names and run-time inputs: checked when validated against a registry or run.


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, **kwargs: Any) -> str:
        self.calls += 1
        return "ran"


@pytest.fixture
def recorder(reg: ab.Registry) -> Recorder:
    rec = Recorder()
    reg.register("function", "record", rec)
    reg.register("agent", "classifier", rec)
    reg.register("agent", "summarise", rec)
    return rec


UNKNOWN_NAMES = """\
name: x
steps:
  - id: first
    function: record
  - id: classify
    agent: clasifier
  - id: fetch
    tool: record
"""


def test_unknown_names_load_fine_but_fail_validation(reg: ab.Registry, recorder: Recorder) -> None:
    wf = ab.Workflow.from_yaml_string(UNKNOWN_NAMES)
    with pytest.raises(ab.WorkflowValidationError) as caught:
        wf.validate(reg)
    problems = caught.value.problems
    assert {problem.step_id for problem in problems} == {"classify", "fetch"}
    by_step = {problem.step_id: problem for problem in problems}

    classify = by_step["classify"]
    assert classify.line in (5, 6)
    assert "clasifier" in classify.message
    assert "classifier" in classify.message
    assert "summarise" in classify.message

    # Names are per kind: "record" is a function and an agent, not a tool.
    fetch = by_step["fetch"]
    assert fetch.line in (7, 8)
    assert "record" in fetch.message
    assert "tool" in fetch.message
    assert recorder.calls == 0


def test_validate_passes_for_known_names(reg: ab.Registry, recorder: Recorder) -> None:
    wf = build({"id": "a", "function": "record"}, {"id": "b", "agent": "summarise"})
    assert wf.validate(reg) is None
    assert ab.Runtime(reg).validate(wf) == wf


def test_runtime_validate_accepts_every_workflow_form(
    reg: ab.Registry, recorder: Recorder, tmp_path: pathlib.Path
) -> None:
    text = "name: x\nsteps:\n  - id: a\n    function: record\n"
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    runtime = ab.Runtime(reg)
    for form in (path, str(path), {"name": "x", "steps": [{"id": "a", "function": "record"}]}):
        validated = runtime.validate(form)
        assert isinstance(validated, ab.Workflow)
        assert [step.id for step in validated.steps] == ["a"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(UNKNOWN_NAMES)
    with pytest.raises(ab.WorkflowValidationError):
        runtime.validate(bad)
    assert recorder.calls == 0


RUNNERS = {
    "run_workflow": lambda wf, reg, inputs: ab.run_workflow(wf, inputs, registry=reg),
    "Runtime.run": lambda wf, reg, inputs: ab.Runtime(reg).run(wf, inputs),
    "Executor.run": lambda wf, reg, inputs: ab.Executor(wf, reg).run(inputs),
    "stream_sync": lambda wf, reg, inputs: list(ab.Runtime(reg).stream_sync(wf, inputs)),
}


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_running_unknown_names_runs_nothing(
    reg: ab.Registry, recorder: Recorder, runner: Any
) -> None:
    wf = ab.Workflow.from_yaml_string(UNKNOWN_NAMES)
    with pytest.raises(ab.WorkflowValidationError) as caught:
        runner(wf, reg, None)
    assert "clasifier" in str(caught.value)
    assert recorder.calls == 0


def required() -> ab.Workflow:
    return build(
        {"id": "a", "function": "record", "inputs": {"v": "${inputs.needed}"}},
        {"id": "b", "function": "record"},
        inputs={"needed": None, "also": {}, "optional": {"default": 1}},
    )


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_missing_required_inputs_run_nothing(
    reg: ab.Registry, recorder: Recorder, runner: Any
) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        runner(required(), reg, {"optional": 2})
    text = str(caught.value)
    assert "needed" in text
    assert "also" in text
    assert len(caught.value.problems) == 2
    assert recorder.calls == 0


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_unknown_extra_inputs_run_nothing(
    reg: ab.Registry, recorder: Recorder, runner: Any
) -> None:
    with pytest.raises(ab.WorkflowValidationError) as caught:
        runner(required(), reg, {"needed": 1, "also": 2, "surplus": 3})
    assert "surplus" in str(caught.value)
    assert recorder.calls == 0


def test_executor_validates_at_construction(reg: ab.Registry, recorder: Recorder) -> None:
    with pytest.raises(ab.WorkflowValidationError):
        ab.Executor(ab.Workflow.from_yaml_string(UNKNOWN_NAMES), reg)
    executor = ab.Executor(required(), reg)
    assert executor.workflow == required()
    assert recorder.calls == 0


@pytest.mark.anyio
async def test_async_entry_points_validate_before_running(
    reg: ab.Registry, recorder: Recorder
) -> None:
    wf = ab.Workflow.from_yaml_string(UNKNOWN_NAMES)
    with pytest.raises(ab.WorkflowValidationError):
        await ab.run_workflow_async(wf, registry=reg)
    with pytest.raises(ab.WorkflowValidationError):
        await ab.Runtime(reg).run_async(required(), {})
    with pytest.raises(ab.WorkflowValidationError):
        await ab.Executor(required(), reg).run_async({"needed": 1, "also": 1, "extra": 1})
    with pytest.raises(ab.WorkflowValidationError):
        async for _ in ab.Runtime(reg).stream(wf):
            pass
    assert recorder.calls == 0


def test_validation_errors_are_reported_for_mappings_given_to_run(
    reg: ab.Registry, recorder: Recorder
) -> None:
    data = {"name": "x", "steps": [{"id": "a", "function": "record", "depends_on": ["ghost"]}]}
    with pytest.raises(ab.WorkflowValidationError) as caught:
        ab.run_workflow(data, registry=reg)
    assert "ghost" in str(caught.value)
    assert recorder.calls == 0


def test_every_loader_finds_the_same_problems() -> None:
    data = {
        "name": "x",
        "inputs": ["known"],
        "steps": [
            {"id": "a", "function": "f", "depends_on": ["ghost"]},
            {"id": "a", "tool": "g"},
            {"id": "b", "inputs": {"v": "${inputs.unknown}"}},
            {"id": "c", "function": "f", "retries": -1},
        ],
    }
    with pytest.raises(ab.WorkflowValidationError) as from_dict:
        ab.Workflow.from_dict(data)
    with pytest.raises(ab.WorkflowValidationError) as from_yaml:
        ab.Workflow.from_yaml_string(yaml.safe_dump(data, sort_keys=False))

    def essence(error: ab.WorkflowValidationError) -> list[tuple[str | None, str]]:
        # Only YAML knows lines, so a message may say where else a step was defined.
        return sorted(
            (problem.step_id, re.sub(r"\s*at line \d+", "", problem.message))
            for problem in error.problems
        )

    assert essence(from_dict.value) == essence(from_yaml.value)
    assert len(from_dict.value.problems) >= 4
