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

__all__ = ("FULL_TABLE_MAX", "LISTED", "failure_lines", "print_result", "print_workflow")

_FAILED = frozenset({"failed", "timed_out"})

_JSON = JSONHighlighter()


#: Runs with more steps than this get a condensed summary, unless asked for the full table.
FULL_TABLE_MAX = 30
#: How many failed, and how many of the slowest, steps a condensed summary lists.
LISTED = 10


def print_result(console: Console, result: ab.WorkflowResult, *, full: bool = False) -> None:
    """The status, attempts and duration of the steps, then the outputs.

    Every step has a row if there are at most :data:`FULL_TABLE_MAX` of them, or with
    ``full``. A larger run is condensed: its steps counted by status, the steps that
    failed or timed out, and the slowest; more outputs than that are cut to the first
    :data:`LISTED` too.
    """
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
    steps = list(result.steps.items())
    if full or len(steps) <= FULL_TABLE_MAX:
        console.print(_steps_table(steps))
    else:
        _print_condensed(console, steps)
    outputs = result.to_dict().get("outputs")
    if isinstance(outputs, Mapping) and outputs:
        _print_outputs(console, outputs, limit=None if full else FULL_TABLE_MAX)


def _print_condensed(console: Console, steps: list[tuple[str, ab.StepResult]]) -> None:
    statuses = Counter(status_name(step.status) for _, step in steps)
    by_status = ", ".join(
        f"{number:,} {status}" for status, number in sorted(statuses.items(), key=_most_first)
    )
    console.print(Text(f"{len(steps):,} steps: {by_status}"), soft_wrap=True)
    failed = [item for item in steps if status_name(item[1].status) in _FAILED]
    if failed:
        more = len(failed) - LISTED
        caption = f"and {count(more, 'more step')} (see --full)" if more > 0 else None
        console.print(_steps_table(failed[:LISTED], title="failed", caption=caption))
    timed = [item for item in steps if item[1].duration is not None]
    slowest = sorted(timed, key=lambda item: item[1].duration or 0.0, reverse=True)[:LISTED]
    if slowest:
        console.print(_steps_table(slowest, title="slowest"))
    console.print(Text("every step: run again with --full", style="dim"))


def _most_first(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _steps_table(
    steps: list[tuple[str, ab.StepResult]], *, title: str | None = None, caption: str | None = None
) -> Table:
    errors = any(step.error is not None for _, step in steps)
    table = Table(
        title=Text(title, style="bold") if title else None,
        title_justify="left",
        caption=Text(caption, style="dim") if caption else None,
        caption_justify="left",
    )
    for name in ("step", "kind", "status", "attempts", "duration", *(["error"] if errors else [])):
        table.add_column(name, justify="right" if name in {"attempts", "duration"} else "left")
    for step_id, step in steps:
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
    return table


def _print_outputs(console: Console, outputs: Mapping[str, object], *, limit: int | None) -> None:
    console.print(Text("outputs", style="bold"))
    # A workflow that declares no outputs has every step's: a large run has too many.
    shown = list(outputs.items())
    if limit is not None and len(shown) > limit:
        shown = shown[:LISTED]
    for name, value in shown:
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
    if len(shown) < len(outputs):
        more = count(len(outputs) - len(shown), "more output")
        console.print(Text(f"  and {more}: run again with --full, or --json", style="dim"))


def failure_lines(result: ab.WorkflowResult) -> list[str]:
    """One line per step that failed or timed out, or one for the run as a whole."""
    lines = []
    for step_id, step in result.steps.items():
        status = status_name(step.status)
        if status in _FAILED:
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
