"""Durable runs on the command line: ``--store`` and ``--run-id`` for ``run``, then
``resume`` and ``runs list|show``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

import agentbridge as ab

from ._errors import UserError, reporting
from ._format import STATUS_STYLES, duration
from ._loading import import_modules
from ._options import backend_option, debug_option, imports_option, json_option, timeout_option
from ._running import report_run, show_events
from ._setup import RunnerSpec, limits_option, open_runners, runners_option

__all__ = ("open_store", "resume", "run_id_option", "runs", "say_where_stored", "store_option")

F = TypeVar("F", bound=Callable[..., Any])

run_id_option = click.option(
    "--run-id",
    metavar="ID",
    default=None,
    help="The run's id (default: a new one). With --store, an id already stored resumes"
    " that run: only what needs it runs again.",
)


def store_option(*, required: bool) -> Callable[[F], F]:
    """``--store FILE``: the SQLite file runs are recorded in."""
    return click.option(
        "--store",
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        metavar="FILE",
        help="The SQLite file runs are recorded in (created, owner-only, if missing).",
    )


def open_store(path: Path | None) -> ab.SqliteRunStore | None:
    """The store at ``path``, or ``None`` without one; closed when the command ends."""
    return None if path is None else _closed_with_command(ab.SqliteRunStore(path))


def say_where_stored(result: ab.WorkflowResult, store: Path) -> None:
    """Tell stderr the run's id, and how to resume it if it did not succeed."""
    if result.succeeded:
        click.echo(f"run {result.run_id} recorded in {store}", err=True)
    else:
        click.echo(
            f"run {result.run_id} recorded in {store}; resume it with: agentbridge resume "
            f"{result.run_id} --store {store} --import ...",
            err=True,
        )


def _existing_store(path: Path) -> ab.SqliteRunStore:
    if not path.exists():
        raise UserError(f"there is no run store {str(path)!r}; record runs there with --store")
    return _closed_with_command(ab.SqliteRunStore(path))


def _closed_with_command(store: ab.SqliteRunStore) -> ab.SqliteRunStore:
    # The command may run inside a longer-lived process (click's test runner, a caller
    # of main()), where an open connection would outlive it.
    click.get_current_context().call_on_close(store.close)
    return store


def _stored_run(store: ab.SqliteRunStore, run_id: str) -> ab.StoredRun:
    stored = ab.run_sync(store.get_run, run_id)
    if stored is None:
        raise UserError(
            f"there is no run {run_id!r} in {str(store.path)!r}; see `agentbridge runs list "
            f"--store {store.path}`"
        )
    return stored


@click.command(short_help="Resume a stored run.")
@click.argument("run_id", metavar="ID")
@store_option(required=True)
@imports_option
@click.option(
    "--file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The workflow file (default: the one the run was read from).",
)
@runners_option
@limits_option
@backend_option
@timeout_option
@json_option
@debug_option
def resume(
    run_id: str,
    store: Path,
    modules: tuple[str, ...],
    file: Path | None,
    runner_specs: tuple[RunnerSpec, ...],
    limits: ab.LoadLimits | None,
    backend: str | None,
    timeout: float | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Resume run ID from --store with its stored inputs: steps that succeeded with the
    same inputs are reused, the others run again. A finished run prints its stored
    result and runs nothing. Exit codes as for `run`.
    """
    with reporting(debug=debug):
        import_modules(modules)
        run_store = _existing_store(store)
        stored = _stored_run(run_store, run_id)
        source = file or stored.source
        if source is None or str(source).startswith("<"):
            raise UserError(f"run {run_id!r} was not read from a file: pass --file FILE")
        workflow = ab.Workflow.from_yaml(source, limits=limits)
        inputs = json.loads(stored.inputs)
        with open_runners(runner_specs) as runners:
            runtime = ab.Runtime(backend=backend, store=run_store, runners=runners)
            events = runtime.stream_sync(workflow, inputs, timeout=timeout, run_id=run_id)
            result = show_events(workflow, events, as_json=as_json)
    report_run(result, debug=debug)


@click.group(short_help="List and show stored runs.")
def runs() -> None:
    """List the runs of a store, or show one with its steps and attempts."""


@runs.command("list", short_help="List the runs of a store, newest first.")
@store_option(required=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def list_runs(store: Path, limit: int, as_json: bool) -> None:
    """The runs of --store, newest first: status, steps, duration, error."""
    with reporting(debug=False):
        run_store = _existing_store(store)
        found = ab.run_sync(run_store.list_runs, limit)
        summaries = [_summary(ab.run_sync(run_store.get_run, run.run_id) or run) for run in found]
    if as_json:
        click.echo(json.dumps(summaries))
        return
    table = Table("run", "workflow", "status", "steps", "started", "duration", "error")
    for row in summaries:
        table.add_row(
            row["run_id"],
            row["workflow"],
            _status(row["status"]),
            f"{row['steps_succeeded']}/{row['steps']}",
            row["created_at"],
            duration(row["duration"]),
            row["error"] or "",
        )
    Console(highlight=False).print(table)


@runs.command("show", short_help="Show a run, its steps and their attempts.")
@click.argument("run_id", metavar="ID")
@store_option(required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def show_run(run_id: str, store: Path, as_json: bool) -> None:
    """Run ID of --store: its status and inputs, each step, and every attempt."""
    with reporting(debug=False):
        run_store = _existing_store(store)
        stored = _stored_run(run_store, run_id)
        history = ab.run_sync(run_store.history, run_id)
    data = {
        **_summary(stored),
        "inputs": json.loads(stored.inputs),
        "steps": [_step(step) for step in stored.steps.values()],
        "attempts": [_attempt(attempt) for attempt in history],
    }
    if as_json:
        click.echo(json.dumps(data))
        return
    console = Console(highlight=False)
    console.print(
        Text.assemble(
            (f"run {run_id}", "bold"),
            f" of workflow {stored.workflow!r}: ",
            _status(stored.status),
            f" {duration(stored.duration)}".rstrip(),
        ),
        soft_wrap=True,
    )
    if data["error"]:
        console.print(f"error: {data['error']}", soft_wrap=True)
    steps = Table("step", "kind", "status", "attempts", "duration", "stored", "error")
    for step in stored.steps.values():
        steps.add_row(
            step.step_id,
            step.kind,
            _status(step.status),
            str(step.attempts),
            duration(step.duration),
            "yes" if step.output is not None else (step.not_stored or "no"),
            _error(step.error_type, step.error_message),
        )
    console.print(steps)
    attempts = Table("step", "attempt", "status", "started", "duration", "error", title="history")
    for attempt in history:
        attempts.add_row(
            attempt.step_id,
            str(attempt.attempt),
            _status(attempt.status),
            _time(attempt.started_at),
            duration(attempt.duration),
            _error(attempt.error_type, attempt.error_message),
        )
    console.print(attempts)


def _summary(run: ab.StoredRun) -> dict[str, Any]:
    return {
        **_fields(run, "run_id", "workflow", "source", "status"),
        "steps": len(run.steps),
        "steps_succeeded": sum(step.status == "succeeded" for step in run.steps.values()),
        "created_at": _time(run.created_at),
        "updated_at": _time(run.updated_at),
        "duration": run.duration,
        "error": _error(run.error_type, run.error_message),
    }


def _step(step: ab.StoredStep) -> dict[str, Any]:
    return {
        **_fields(step, "step_id", "kind", "status", "attempts"),
        "stored": step.output is not None,
        "not_stored": step.not_stored,
        **_outcome(step),
    }


def _attempt(attempt: ab.StoredAttempt) -> dict[str, Any]:
    return {**_fields(attempt, "step_id", "attempt", "status"), **_outcome(attempt)}


def _fields(record: object, *names: str) -> dict[str, Any]:
    """The attributes ``names`` of ``record``, as JSON keys of the same names."""
    return {name: getattr(record, name) for name in names}


def _outcome(record: ab.StoredStep | ab.StoredAttempt) -> dict[str, Any]:
    return {
        "started_at": _time(record.started_at),
        "duration": record.duration,
        "error": _error(record.error_type, record.error_message),
    }


def _status(status: str) -> Text:
    return Text(status, STATUS_STYLES.get(status, "yellow"))


def _time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _error(kind: str | None, message: str | None) -> str:
    if kind is None:
        return ""
    return f"{kind}: {message}" if message else kind
