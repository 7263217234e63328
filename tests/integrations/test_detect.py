"""Recognising framework objects: no framework imported, right kinds, clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from agents import Agent as OpenAIAgent
from langchain_core.runnables import RunnableLambda
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

import agentbridge as ab
from agentbridge.integrations import adapt, framework_of

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("pydantic_ai", "langchain_core", "langgraph", "agents", "openai")


def test_each_framework_s_objects_are_recognised() -> None:
    assert framework_of(Agent(TestModel())) == "pydantic_ai"
    assert framework_of(RunnableLambda(lambda x: x)) == "langchain"
    assert framework_of(OpenAIAgent(name="a")) == "openai_agents"


@pytest.mark.parametrize("target", [print, object(), Agent, "name", None])
def test_anything_else_is_no_framework_s_and_adapts_to_itself(target: object) -> None:
    assert framework_of(target) is None
    assert adapt(target) is target


def test_the_adapter_names_the_agent_and_lists_the_inputs_it_takes() -> None:
    import inspect

    adapted = adapt(Agent(TestModel(), name="writer"))
    assert adapted.__name__ == "writer"
    assert "prompt" in inspect.signature(adapted).parameters
    assert "deps" in inspect.signature(adapted).parameters


def test_agents_and_tools_may_be_framework_objects_but_functions_may_not(
    reg: ab.Registry,
) -> None:
    runnable = RunnableLambda(lambda x: x)
    reg.register("agent", "a", runnable)
    reg.register("tool", "t", runnable)
    with pytest.raises(ab.ConfigurationError, match=r"it must be a callable$"):
        reg.register("function", "f", runnable)
    with pytest.raises(ab.WorkflowValidationError, match="a LangChain Runnable"):
        ab.Workflow.from_dict({"name": "w", "steps": [{"id": "s", "tool": object()}]})


def test_nothing_imports_a_framework_until_one_of_its_objects_exists() -> None:
    code = (
        "import sys, agentbridge as ab\n"
        "from agentbridge.integrations import adapt, framework_of\n"
        "reg = ab.Registry()\n"
        "reg.register('agent', 'a', lambda text: text)\n"
        "result = ab.run_workflow({'name': 'w', 'steps': [{'id': 's', 'agent': 'a',"
        " 'inputs': {'text': 'x'}}]}, registry=reg)\n"
        "assert result.to_dict()['outputs'] == {'s': 'x'}\n"
        "assert framework_of(object()) is None and adapt(print) is print\n"
        f"print(sorted(set({FRAMEWORKS!r}) & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
