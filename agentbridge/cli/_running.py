"""Running a workflow's events to the terminal: live progress or JSON, then the exit code.

Shared by ``run`` and ``resume``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import click
from rich.console import Console

import agentbridge as ab

from ._errors import EXIT_FAILED, print_traceback
from ._format import status_name
from ._progress import follow, follow_quietly
from ._summary import failure_lines, print_result

__all__ = ("report_run", "show_events")


def show_events(
    workflow: ab.Workflow, events: Iterator[ab.Event], *, as_json: bool, full: bool = False
) -> ab.WorkflowResult:
    """Follow ``events`` with live progress and a summary, or print only the result as
    JSON on stdout (what the steps print then goes to stderr); the run's result.
    ``full`` ends with a row for every step, however many."""
    if as_json:
        # Whatever the steps print must not corrupt the JSON on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = follow_quietly(events)
        click.echo(json.dumps(result.to_dict()))
        return result
    console = Console(highlight=False)
    result = follow(console, workflow, events)
    print_result(console, result, full=full)
    return result


def report_run(result: ab.WorkflowResult, *, debug: bool) -> None:
    """Exit with code 1 and the failure on stderr unless ``result`` succeeded."""
    if status_name(result.status) == "succeeded":
        return
    if debug:
        for error in _errors_of(result):
            print_traceback(error)
    for line in failure_lines(result):
        click.echo(f"Error: {line}", err=True)
    raise click.exceptions.Exit(EXIT_FAILED)


def _errors_of(result: ab.WorkflowResult) -> list[BaseException]:
    errors = [step.error for step in result.steps.values() if step.error is not None]
    if not errors and result.error is not None:
        errors.append(result.error)
    return errors
