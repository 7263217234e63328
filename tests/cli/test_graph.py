"""``agentbridge graph``: the workflow as Mermaid or DOT, and the docs' copy of the demo's."""

from __future__ import annotations

import re

import pytest

from ._helpers import DEMO, REPO, Invoke, WriteWorkflow

DEMO_FILE = REPO / DEMO[1]
WORKFLOWS_PAGE = REPO / "docs" / "workflows.md"

MIXED = """\
    name: mixed
    steps:
      - {id: fetch, tool: fetch_tool}
      - id: crunch
        function: crunch_numbers
        runner: process
        inputs: {data: "${steps.fetch.output}"}
      - id: end
        agent: summariser
        inputs: {numbers: "${steps.crunch.output}"}
        depends_on: [fetch]
"""

#: A Mermaid node line: id, opening brackets, quoted label, closing brackets.
NODE = re.compile(r'^    (\w+)(\(\[|\[\[|\[)"([^"]*)"(\]\)|\]\]|\])$')
EDGE = re.compile(r"^    (\w+) --> (\w+)$")


def _mermaid(text: str) -> tuple[dict[str, tuple[str, str]], set[tuple[str, str]]]:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, tuple[str, str]] = {}
    edges: set[tuple[str, str]] = set()
    for line in lines[1:]:
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, line
        if node:
            nodes[node[1]] = (node[2], node[3])
        elif edge:
            edges.add((edge[1], edge[2]))
    return nodes, edges


def test_mermaid_shows_kinds_targets_runners_and_dependencies(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("graph", write_workflow(MIXED))
    assert result.exit_code == 0, result.output
    nodes, edges = _mermaid(result.stdout)
    # "end" is a Mermaid keyword: that step gets a node id of its own, its label keeps it.
    assert nodes == {
        "fetch": ("[[", "fetch<br/>tool: fetch_tool"),
        "crunch": ("[", "crunch<br/>function: crunch_numbers<br/>runner: process"),
        "step_2": ("([", "end<br/>agent: summariser"),
    }
    assert edges == {("fetch", "crunch"), ("crunch", "step_2"), ("fetch", "step_2")}


def test_dot_shows_the_same_graph(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    result = invoke("graph", write_workflow(MIXED), "--format", "dot")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == 'digraph "mixed" {'
    assert lines[-1] == "}"
    assert (
        '    "crunch" [label="crunch\\nfunction: crunch_numbers\\nrunner: process", shape=box];'
        in lines
    )
    assert '    "end" [label="end\\nagent: summariser", shape=ellipse];' in lines
    edges = {tuple(re.findall(r'"([^"]+)"', line)) for line in lines if " -> " in line}
    assert edges == {("fetch", "crunch"), ("crunch", "end"), ("fetch", "end")}


@pytest.mark.parametrize("form", ["mermaid", "dot"])
def test_labels_cannot_break_out_of_their_quotes(
    invoke: Invoke, write_workflow: WriteWorkflow, form: str
) -> None:
    path = write_workflow("""\
        name: 'say "hi" #1'
        steps:
          - {id: greet, tool: 'say "hi" <b>#1</b>'}
    """)
    result = invoke("graph", path, "--format", form)
    assert result.exit_code == 0, result.output
    if form == "mermaid":
        nodes, _ = _mermaid(result.stdout)
        assert nodes["greet"][1] == "greet<br/>tool: say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt;"
    else:
        assert 'label="greet\\ntool: say \\"hi\\" <b>#1</b>"' in result.stdout
        assert result.stdout.startswith('digraph "say \\"hi\\" #1" {')


def test_an_invalid_file_is_a_validation_error(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("graph", write_workflow("name: x\nsteps:\n  - {id: a}\n"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid workflow:")


def test_the_workflow_page_shows_the_demo_graph_the_command_prints(invoke: Invoke) -> None:
    result = invoke("graph", DEMO_FILE)
    assert result.exit_code == 0, result.output
    page = WORKFLOWS_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", page, flags=re.MULTILINE | re.DOTALL)
    assert result.stdout in blocks
