"""What ``run`` prints when a run ends, and what ``validate`` prints for a valid file."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Mapping

from rich.console import Console, RenderableType
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

import agentbridge as ab

from ._errors import describe
from ._format import STATUS_STYLES, count, duration, status_name, target_name

__all__ = ("failure_lines", "print_result", "print_workflow")

_JSON = JSONHighlighter()


def print_result(console: Console, result: ab.WorkflowResult) -> None:
    """The status, attempts and duration of every step, then the outputs."""
    status = status_name(result.status)
    console.print(
        Text.assemble(
            (result.workflow, "bold"),
            " ",
            (status, STATUS_STYLES.get(status, "")),
            f" in {duration(result.duration)}",
        ),
        soft_wrap=True,
    )
    errors = any(step.error is not None for step in result.steps.values())
    table = Table()
    for name in ("step", "kind", "status", "attempts", "duration", *(["error"] if errors else [])):
        table.add_column(name, justify="right" if name in {"attempts", "duration"} else "left")
    for step_id, step in result.steps.items():
        step_status = status_name(step.status)
        cells: list[RenderableType] = [
            Text(step_id),
            Text(step.kind, style="dim"),
            Text(step_status, style=STATUS_STYLES.get(step_status, "")),
            str(step.attempts),
            duration(step.duration),
        ]
        if errors:
            cells.append(Text(describe(step.error) if step.error is not None else "", style="red"))
        table.add_row(*cells)
    console.print(table)
    outputs = result.to_dict().get("outputs")
    if isinstance(outputs, Mapping) and outputs:
        _print_outputs(console, outputs)


def _print_outputs(console: Console, outputs: Mapping[str, object]) -> None:
    console.print(Text("outputs", style="bold"))
    for name, value in outputs.items():
        label = Text.assemble("  ", (str(name), "bold"), ": ")
        inline = json.dumps(value, ensure_ascii=False)
        # Scalars stay on their line (wrapped if long); structures that do not fit are
        # laid out as indented JSON below their name.
        if not isinstance(value, (list, dict)) or len(label) + len(inline) <= console.width:
            console.print(label + _JSON(inline), soft_wrap=True)
        else:
            label.rstrip()
            console.print(label)
            block = textwrap.indent(json.dumps(value, ensure_ascii=False, indent=2), " " * 4)
            console.print(_JSON(block), soft_wrap=True)


def failure_lines(result: ab.WorkflowResult) -> list[str]:
    """One line per step that failed or timed out, or one for the run as a whole."""
    lines = []
    for step_id, step in result.steps.items():
        status = status_name(step.status)
        if status in {"failed", "timed_out"}:
            because = f": {describe(step.error)}" if step.error is not None else ""
            lines.append(f"step {step_id!r} {status.replace('_', ' ')}{because}")
    if not lines:
        because = f": {describe(result.error)}" if result.error is not None else ""
        lines.append(
            f"workflow {result.workflow!r} {status_name(result.status).replace('_', ' ')}{because}"
        )
    return lines


def print_workflow(console: Console, workflow: ab.Workflow) -> None:
    """``OK``, then the inputs, steps, dependencies and outputs of a valid workflow."""
    steps = workflow.steps
    dependencies = sum(len(step.depends_on) for step in steps)
    kinds = Counter(step.kind for step in steps)
    console.print(
        Text.assemble(
            ("OK", "bold green"), f": workflow {workflow.name!r} from {workflow.source or '?'}"
        ),
        soft_wrap=True,
    )
    by_kind = ", ".join(f"{number} {kind}" for kind, number in sorted(kinds.items()))
    console.print(
        Text(
            f"{count(len(steps), 'step')} ({by_kind}),"
            f" {count(dependencies, 'dependency', 'dependencies')}"
        ),
        soft_wrap=True,
    )
    table = Table()
    table.add_column("step")
    table.add_column("kind", style="dim")
    table.add_column("calls")
    table.add_column("depends on")
    for step in steps:
        table.add_row(
            Text(step.id),
            step.kind,
            Text(target_name(step.target)),
            Text(", ".join(step.depends_on)),
        )
    console.print(table)
    inputs = [
        spec.name if spec.required else f"{spec.name}={json.dumps(spec.default, default=repr)}"
        for spec in workflow.inputs.values()
    ]
    console.print(Text(f"inputs: {', '.join(inputs) or '(none)'}"), soft_wrap=True)
    console.print(
        Text(f"outputs: {', '.join(workflow.outputs) or '(every step output)'}"), soft_wrap=True
    )
