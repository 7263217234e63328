"""``agentbridge run --json`` with a framework step: its output and usage, no private state."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from ..cli._helpers import run_cli

STEPS = """
import agentbridge as ab
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

ab.agent("writer")(Agent(TestModel(custom_output_text="a haiku"), name="writer"))
"""

WORKFLOW = """
name: write
inputs: [topic]
steps:
  - id: draft
    agent: writer
    inputs: {prompt: "${inputs.topic}"}
"""


def test_json_holds_the_agent_s_output_and_usage_and_nothing_private(tmp_path: Path) -> None:
    (tmp_path / "writer_steps.py").write_text(textwrap.dedent(STEPS), encoding="utf-8")
    (tmp_path / "write.yaml").write_text(WORKFLOW, encoding="utf-8")
    done = run_cli(
        ["run", "write.yaml", "--import", "writer_steps", "-i", "topic=tea", "--json"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    step = data["steps"]["draft"]
    assert step["output"] == "a haiku"
    assert data["outputs"] == {"draft": "a haiku"}
    assert step["usage"]["requests"] == 1
    assert "_state" not in done.stdout
