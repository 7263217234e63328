"""The click commands: ``agentbridge run``, ``agentbridge validate`` and ``agentbridge graph``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click
from rich.console import Console

import agentbridge as ab

from ..workflow import read_inputs_file
from ._durable import open_store, resume, run_id_option, runs, say_where_stored, store_option
from ._errors import reporting
from ._graph import FORMATS
from ._loading import import_modules, merge_inputs, parse_inputs
from ._options import (
    backend_option,
    debug_option,
    file_argument,
    imports_option,
    json_option,
    timeout_option,
)
from ._running import report_run, show_events
from ._setup import RunnerSpec, limits_option, open_runners, runners_option
from ._summary import print_workflow

__all__ = ("cli",)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(ab.__version__, prog_name="agentbridge")
def cli() -> None:
    """Run, validate and draw agentbridge workflow files.

    \b
        agentbridge validate triage.yaml --import myapp.steps
        agentbridge run triage.yaml --import myapp.steps --input ticket=42
        agentbridge graph triage.yaml --format mermaid

    Exit codes: 0 success, 1 a step failed, 2 a usage or validation error,
    130 interrupted.
    """


@cli.command(short_help="Run a workflow file.")
@file_argument
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_inputs,
    help="An input of the workflow (repeatable). VALUE is read as a YAML scalar:"
    " n=3 is a number, x=hello a string, x='3' the string 3.",
)
@click.option(
    "--input-json",
    "json_inputs",
    multiple=True,
    metavar="KEY=JSON",
    callback=parse_inputs,
    help='An input given as a JSON value (repeatable): --input-json \'tags=["a", "b"]\'.',
)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    default=None,
    metavar="FILE",
    help="Read inputs from FILE: a mapping in JSON (.json) or YAML, read safely, within the"
    " workflow limits. --input and --input-json override its keys.",
)
@imports_option
@runners_option
@limits_option
@backend_option
@timeout_option
@json_option
@click.option(
    "--full",
    is_flag=True,
    help="End with a row for every step, however many (default: large runs are condensed).",
)
@store_option(required=False)
@run_id_option
@debug_option
def run(
    file: Path,
    inputs: Mapping[str, object],
    json_inputs: Mapping[str, object],
    inputs_file: Path | None,
    modules: tuple[str, ...],
    runner_specs: tuple[RunnerSpec, ...],
    limits: ab.LoadLimits | None,
    backend: str | None,
    timeout: float | None,
    as_json: bool,
    full: bool,
    store: Path | None,
    run_id: str | None,
    debug: bool,
) -> None:
    """Run the workflow in FILE, with live progress per step, then a summary.

    With --json, stdout gets only the result as JSON (what the steps print goes to
    stderr). Exit code 0 if the run succeeded, 1 if a step failed or the run timed
    out, 2 if the workflow or the command line is invalid (then nothing runs).
    With --store, the run is recorded in that SQLite file as it goes; a --run-id
    already there resumes that run (see `agentbridge resume`).
    """
    with reporting(debug=debug):
        from_file = read_inputs_file(inputs_file, limits=limits) if inputs_file else {}
        inputs = merge_inputs(from_file, inputs, json_inputs)
        import_modules(modules)
        workflow = ab.Workflow.from_yaml(file, limits=limits)
        with open_runners(runner_specs) as runners:
            runtime = ab.Runtime(backend=backend, store=open_store(store), runners=runners)
            events = runtime.stream_sync(workflow, inputs, timeout=timeout, run_id=run_id)
            result = show_events(workflow, events, as_json=as_json, full=full)
    if store is not None:
        say_where_stored(result, store)
    report_run(result, debug=debug)


@cli.command(short_help="Check a workflow file without running it.")
@file_argument
@imports_option
@runners_option
@limits_option
@debug_option
def validate(
    file: Path,
    modules: tuple[str, ...],
    runner_specs: tuple[RunnerSpec, ...],
    limits: ab.LoadLimits | None,
    debug: bool,
) -> None:
    """Check the workflow in FILE against the registered steps, without running it.

    Prints OK and a summary of its steps, or every problem found. Exit code 0 if it
    is valid, 2 if not.
    """
    with reporting(debug=debug):
        import_modules(modules)
        workflow = ab.Workflow.from_yaml(file, limits=limits)
        with open_runners(runner_specs, start=False) as runners:
            ab.Runtime(runners=runners).validate(workflow)
    print_workflow(Console(highlight=False), workflow)


@cli.command(short_help="Print a workflow file's graph (Mermaid or DOT).")
@file_argument
@click.option(
    "--format",
    "form",
    type=click.Choice(list(FORMATS)),
    default="mermaid",
    show_default=True,
    help="mermaid (for Markdown pages and GitHub) or dot (for Graphviz).",
)
@limits_option
@debug_option
def graph(file: Path, form: str, limits: ab.LoadLimits | None, debug: bool) -> None:
    """Print the steps of the workflow in FILE and their dependencies as a graph.

    Each step shows its id, kind, what it calls and its runner. Nothing is imported or
    run. Exit code 0, or 2 if the file is not a valid workflow.
    """
    with reporting(debug=debug):
        workflow = ab.Workflow.from_yaml(file, limits=limits)
    click.echo(FORMATS[form](workflow), nl=False)


cli.add_command(resume)
cli.add_command(runs)
