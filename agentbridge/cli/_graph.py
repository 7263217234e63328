"""What ``agentbridge graph`` prints: a workflow's steps and dependencies as Mermaid or DOT.

Each step is a node labelled with its id, its kind and what it calls, and its runner
when it names one; each dependency is an edge from the step depended on. The shape
tells the kind apart: an agent is rounded, a tool a subroutine box, a function a box.
Nothing is resolved or run: the file alone is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import agentbridge as ab

from ._format import target_name

__all__ = ("FORMATS", "dot", "mermaid")

#: Writes the edge from the step depended on to the step that depends on it.
_Edge = Callable[[str, str], str]

#: Mermaid's node shapes per step kind, as the brackets around the label.
_MERMAID_SHAPES = {"agent": ("([", "])"), "tool": ("[[", "]]"), "function": ("[", "]")}
_DOT_SHAPES = {"agent": "ellipse", "tool": "component", "function": "box"}
# Ids Mermaid reads as its own keywords or cannot read as ids: such steps get a node id
# of their own, and keep their step id in the label.
_MERMAID_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MERMAID_KEYWORDS = frozenset(
    {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click"}
    | {"linkstyle", "direction", "default", "call", "href"}
)


def _lines(step: ab.Step) -> list[str]:
    lines = [step.id, f"{step.kind}: {target_name(step.target)}"]
    if step.runner is not None:
        lines.append(f"runner: {step.runner}")
    return lines


def mermaid(workflow: ab.Workflow) -> str:
    """The workflow as a Mermaid flowchart, top to bottom, ending with a newline."""
    ids = _mermaid_ids(workflow)
    out = ["flowchart TD"]
    for step in workflow.steps:
        opening, closing = _MERMAID_SHAPES.get(step.kind, ("[", "]"))
        label = "<br/>".join(_mermaid_text(line) for line in _lines(step))
        out.append(f'    {ids[step.id]}{opening}"{label}"{closing}')
    out += _edges(workflow, lambda source, target: f"    {ids[source]} --> {ids[target]}")
    return "\n".join(out) + "\n"


def dot(workflow: ab.Workflow) -> str:
    """The workflow as a Graphviz DOT digraph, top to bottom, ending with a newline."""
    out = [f"digraph {_dot_text(workflow.name)} {{", "    rankdir=TB;"]
    for step in workflow.steps:
        label = _dot_text("\n".join(_lines(step)))
        shape = _DOT_SHAPES.get(step.kind, "box")
        out.append(f"    {_dot_text(step.id)} [label={label}, shape={shape}];")
    out += _edges(
        workflow, lambda source, target: f"    {_dot_text(source)} -> {_dot_text(target)};"
    )
    out.append("}")
    return "\n".join(out) + "\n"


#: The ``--format`` choices and what renders each.
FORMATS = {"mermaid": mermaid, "dot": dot}


def _edges(workflow: ab.Workflow, edge: _Edge) -> list[str]:
    return [edge(dependency, step.id) for step in workflow.steps for dependency in step.depends_on]


def _mermaid_ids(workflow: ab.Workflow) -> dict[str, str]:
    readable = {
        step.id
        for step in workflow.steps
        if _MERMAID_ID.fullmatch(step.id) and step.id.lower() not in _MERMAID_KEYWORDS
    }
    ids: dict[str, str] = {}
    for index, step in enumerate(workflow.steps):
        if step.id in readable:
            ids[step.id] = step.id
            continue
        node = f"step_{index}"
        while node in readable:  # a step may be called step_3 itself
            node += "_"
        ids[step.id] = node
    return ids


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes: a quote, a bracket or a hash in a label cannot end it.
    for character, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(character, code)
    return text


def _dot_text(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
