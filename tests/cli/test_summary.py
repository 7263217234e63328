"""The summary ``run`` ends with: every step of a small run, a condensed view of a large one."""

from __future__ import annotations

import io
import re

from rich.console import Console

import agentbridge as ab
from agentbridge.cli._progress import follow_quietly
from agentbridge.cli._summary import FULL_TABLE_MAX, LISTED, print_result

from ._helpers import STEPS, Invoke, WriteWorkflow


def _large(steps: int, failing: set[int]) -> str:
    lines = ["name: large", "steps:"]
    for n in range(steps):
        if n in failing:
            lines.append(f"  - {{id: s{n}, function: cli_boom, inputs: {{message: broke {n}}}}}")
        else:
            lines.append(f"  - {{id: s{n}, function: cli_add, inputs: {{a: {n}, b: 1}}}}")
    return "\n".join(lines) + "\n"


def _summary(stdout: str, title: str) -> list[str]:
    """The lines from the summary's title on (before it: one progress line per event)."""
    lines = stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(title))
    return lines[start:]


def _step_ids(lines: list[str]) -> set[str]:
    return {word for line in lines for word in re.findall(r"\bs\d+\b", line)}


def _printed(steps: int, failing: set[int]) -> list[str]:
    """The summary of a run in which every step ran: the failures stop no other step."""
    registry = ab.Registry()

    @registry.function("cli_add")
    def add(a: int, b: int) -> int:
        return a + b

    @registry.function("cli_boom")
    def boom(message: str) -> None:
        raise ValueError(message)

    workflow = ab.Workflow.from_yaml_string(_large(steps, failing))
    events = ab.Runtime(registry, fail_fast=False).stream_sync(workflow)
    result = follow_quietly(events)
    output = io.StringIO()
    print_result(Console(file=output, width=120), result)
    return output.getvalue().splitlines()


def _between(lines: list[str], first: str, last: str | None = None) -> list[str]:
    titles = [line.strip() for line in lines]
    return lines[titles.index(first) + 1 : titles.index(last) if last else None]


def test_a_large_run_is_condensed_to_counts_failures_and_the_slowest() -> None:
    steps, failing = FULL_TABLE_MAX + 20, {3, 17, 41}
    summary = _printed(steps, failing)
    assert summary[0].startswith("large failed in")
    assert summary[1] == f"{steps} steps: {steps - 3} succeeded, 3 failed"
    failed = _between(summary, "failed", "slowest")
    assert _step_ids(failed) == {"s3", "s17", "s41"}
    assert all("ValueError: broke" in line for line in failed if re.search(r"\bs\d+\b", line))
    slowest = _between(summary, "slowest", "every step: run again with --full")
    assert len(_step_ids(slowest)) == LISTED
    outputs = _between(summary, "outputs")
    assert len(_step_ids(outputs)) == LISTED
    assert f"and {steps - 3 - LISTED} more outputs: run again with --full, or --json" in outputs[-1]


def test_many_failures_list_the_first_and_count_the_rest() -> None:
    steps = FULL_TABLE_MAX + 5
    failing = set(range(0, steps, 2))
    summary = _printed(steps, failing)
    failed = _between(summary, "failed", "slowest")
    assert _step_ids(failed) == {f"s{n}" for n in sorted(failing)[:LISTED]}
    assert f"and {len(failing) - LISTED} more steps (see --full)" in " ".join(failed)


def test_full_prints_every_step(invoke: Invoke, write_workflow: WriteWorkflow) -> None:
    steps = FULL_TABLE_MAX + 20
    path = write_workflow(_large(steps, set()))
    result = invoke("run", path, "--import", STEPS, "--full")
    assert result.exit_code == 0, result.output
    summary = _summary(result.stdout, "large succeeded in")
    table, outputs = summary[: summary.index("outputs")], _between(summary, "outputs")
    assert _step_ids(table) == _step_ids(outputs) == {f"s{n}" for n in range(steps)}
    assert "--full" not in result.stdout


def test_a_small_run_gets_every_step_without_asking(
    invoke: Invoke, write_workflow: WriteWorkflow
) -> None:
    result = invoke("run", write_workflow(_large(FULL_TABLE_MAX, set())), "--import", STEPS)
    assert result.exit_code == 0, result.output
    summary = _summary(result.stdout, "large succeeded in")
    assert len(_step_ids(summary)) == FULL_TABLE_MAX
    assert "slowest" not in summary
