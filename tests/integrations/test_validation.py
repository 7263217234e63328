"""A framework step's inputs are checked before anything runs, against what its adapter
takes: a misspelt or missing input is a validation problem, not a failed step."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from agents import Agent as OpenAIAgent
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableLambda
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


def problems_of(target: object, inputs: dict[str, Any]) -> list[str]:
    """The problems of a one-step workflow whose agent step is ``target``."""
    registry = ab.Registry()
    registry.register("agent", "writer", target)
    workflow = ab.Workflow.from_yaml_string(
        textwrap.dedent(
            f"""
            name: w
            steps:
              - id: a
                agent: writer
                inputs: {inputs!r}
            """
        )
    )
    try:
        workflow.validate(registry)
    except ab.WorkflowValidationError as error:
        problems = error.problems
    else:
        return []
    assert all(problem.step_id == "a" for problem in problems)
    return [problem.message for problem in problems]


@pytest.mark.parametrize(
    "target",
    [Agent(TestModel()), OpenAIAgent(name="a"), FakeListChatModel(responses=["x"])],
    ids=["pydantic_ai", "openai_agents", "langchain_chat_model"],
)
def test_a_misspelt_input_is_a_problem_that_suggests_the_right_name(target: object) -> None:
    messages = problems_of(target, {"promt": "hi"})
    assert any("'promt' is not a parameter" in m and "did you mean 'prompt'" in m for m in messages)


@pytest.mark.parametrize(
    "target",
    [OpenAIAgent(name="a"), FakeListChatModel(responses=["x"])],
    ids=["openai_agents", "langchain_chat_model"],
)
def test_a_missing_prompt_is_a_problem(target: object) -> None:
    messages = problems_of(target, {})
    assert any("'prompt'" in m for m in messages), messages


def test_the_framework_s_own_optional_inputs_are_accepted() -> None:
    assert problems_of(Agent(TestModel()), {"prompt": "hi", "deps": None, "metadata": {}}) == []
    assert problems_of(OpenAIAgent(name="a"), {"prompt": "hi", "max_turns": 3}) == []


def test_a_runnable_that_takes_its_inputs_as_one_dict_accepts_any_names() -> None:
    assert problems_of(RunnableLambda(lambda state: state), {"anything": 1, "else": 2}) == []


def test_a_python_built_step_is_checked_too_and_nothing_runs() -> None:
    model = TestModel()
    agent = Agent(model)
    workflow = ab.Workflow.from_dict(
        {"name": "w", "steps": [{"id": "a", "agent": agent, "inputs": {"promt": "hi"}}]}
    )
    with pytest.raises(ab.WorkflowValidationError, match="did you mean 'prompt'"):
        ab.run_workflow(workflow)
    assert model.last_model_request_parameters is None  # the model was never called
