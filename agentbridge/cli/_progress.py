"""Live progress of a run, fed by the runtime's events.

On a terminal it is a table redrawn in place (a rich ``Live``) with a line per step:
its status, attempt and elapsed time. Anywhere else (a pipe, a CI log) redrawing would
only leave control codes, so each event prints one plain line instead.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

import agentbridge as ab

from ._errors import describe
from ._format import STATUS_STYLES, count, duration, status_name

__all__ = ("follow", "follow_quietly")

_ACTIVE = frozenset({"running", "retrying"})
_BAD = frozenset({"failed", "timed_out", "cancelled"})
# Lines of the live table that are not step rows: title, borders, header, caption.
_TABLE_CHROME = 6


@dataclass
class _Row:
    step_id: str
    kind: str
    status: str = "pending"
    attempt: int = 0
    started_at: float | None = None
    duration: float | None = None
    note: str = ""
    #: The order in which the steps finished: 1 for the first, 0 while unfinished.
    finished: int = 0


class _Board:
    """The state of every step of one run, as far as the events so far tell."""

    def __init__(self, workflow: ab.Workflow) -> None:
        self._title = workflow.name
        self._rows = {step.id: _Row(step.id, step.kind) for step in workflow.steps}
        self._id_width = max((len(step_id) for step_id in self._rows), default=0)
        self._run_started_at = time.monotonic()
        self._finished = 0
        # One spinner for every running row: it animates by the time since it first drew.
        style = STATUS_STYLES["running"]
        self._spinner = Spinner("dots", text=Text("running", style=style), style=style)
        # The refresh thread of ``Live`` renders while the main thread applies events.
        self._lock = threading.Lock()

    def apply(self, event: ab.Event) -> str | None:
        """Record ``event``; return the log line that tells it, if it concerns a step."""
        with self._lock:
            if isinstance(event, ab.RunStarted):
                self._run_started_at = event.at
                return None
            if isinstance(event, ab.StepStarted):
                row = self._row(event.step_id, event.kind)
                row.status, row.attempt, row.note = "running", event.attempt, ""
                if row.started_at is None:
                    row.started_at = event.at
                return self._line(event.at, row, f"attempt {event.attempt}")
            if isinstance(event, ab.StepRetrying):
                row = self._row(event.step_id, event.kind)
                row.status, row.attempt = "retrying", event.attempt
                row.note = f"{describe(event.error)}; retry in {duration(event.delay)}"
                return self._line(event.at, row, f"attempt {event.attempt} failed: {row.note}")
            if isinstance(event, ab.StepFinished):
                return self._finish(event)
            return None

    def _finish(self, event: ab.StepFinished) -> str:
        result = event.result
        row = self._row(event.step_id, event.kind)
        row.status, row.attempt = status_name(result.status), result.attempts
        row.duration = result.duration
        row.note = describe(result.error) if result.error is not None else ""
        self._finished += 1
        row.finished = self._finished
        details = [duration(result.duration) or "not started"]
        if result.attempts > 1:
            details.append(f"{result.attempts} attempts")
        if row.note:
            details.append(row.note)
        return self._line(event.at, row, ", ".join(details))

    def _row(self, step_id: str, kind: str) -> _Row:
        return self._rows.setdefault(step_id, _Row(step_id, kind))

    def _line(self, at: float, row: _Row, details: str) -> str:
        elapsed = at - self._run_started_at
        return f"{elapsed:7.2f}s  {row.step_id:<{self._id_width}}  {row.status:<10} {details}"

    def render(self, max_rows: int) -> RenderableType:
        """The table of the steps, with running times as of now.

        With more steps than ``max_rows``, the running and failed ones are shown first,
        then the latest to finish, then the next pending; the rest are counted by status
        in the caption.
        """
        with self._lock:
            now = time.monotonic()
            shown, hidden = self._pick(max(1, max_rows))
            notes = any(row.note for row in shown)
            table = Table(
                title=Text(self._title, style="bold"),
                title_justify="left",
                caption=_hidden_caption(hidden),
                caption_justify="left",
            )
            table.add_column("step")
            table.add_column("kind", style="dim")
            table.add_column("status")
            table.add_column("attempt", justify="right")
            table.add_column("time", justify="right")
            if notes:
                table.add_column("", overflow="fold")
            for row in shown:
                elapsed = row.duration
                if elapsed is None and row.started_at is not None:
                    elapsed = now - row.started_at
                cells: list[RenderableType] = [
                    Text(row.step_id),
                    row.kind,
                    self._spinner if row.status == "running" else _status_text(row.status),
                    str(row.attempt) if row.attempt else "",
                    duration(elapsed),
                ]
                table.add_row(*cells, *([Text(row.note, style="dim")] if notes else []))
            return table

    def _pick(self, max_rows: int) -> tuple[list[_Row], list[_Row]]:
        rows = list(self._rows.values())
        if len(rows) <= max_rows:
            return rows, []
        order = {row.step_id: index for index, row in enumerate(rows)}
        by_interest = sorted(rows, key=lambda row: (_group(row), -row.finished))
        shown = sorted(by_interest[:max_rows], key=lambda row: order[row.step_id])
        return shown, by_interest[max_rows:]


def _group(row: _Row) -> int:
    """Which rows to show first when not all fit: active, bad, finished, pending."""
    if row.status in _ACTIVE:
        return 0
    if row.status in _BAD:
        return 1
    return 2 if row.finished else 3


def _hidden_caption(hidden: list[_Row]) -> Text | None:
    if not hidden:
        return None
    statuses = Counter(row.status for row in hidden)
    more = ", ".join(f"{number} {status}" for status, number in statuses.items())
    return Text(f"and {count(len(hidden), 'more step')}: {more}", style="dim")


def _status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def follow(
    console: Console, workflow: ab.Workflow, events: Iterator[ab.Event]
) -> ab.WorkflowResult:
    """Show the progress of the run that ``events`` come from; return its result."""
    board = _Board(workflow)
    if not console.is_terminal or console.is_dumb_terminal:
        console.print(Text(f"running {workflow.name} ({count(len(workflow.steps), 'step')})"))

        def log(event: ab.Event) -> None:
            line = board.apply(event)
            if line is not None:
                console.print(Text(line), soft_wrap=True)

        return _consume(events, log)

    def frame() -> RenderableType:
        return board.render(console.height - _TABLE_CHROME)

    # Transient: the summary table printed next tells the same, finished.
    with Live(get_renderable=frame, console=console, refresh_per_second=10, transient=True) as live:

        def redraw(event: ab.Event) -> None:
            # Drawn at once, so even a step shorter than a refresh period is seen.
            if board.apply(event) is not None:
                live.refresh()

        return _consume(events, redraw)


def follow_quietly(events: Iterator[ab.Event]) -> ab.WorkflowResult:
    """Consume ``events`` silently; return the result the last one carries."""
    return _consume(events, None)


def _consume(
    events: Iterator[ab.Event], on_event: Callable[[ab.Event], None] | None
) -> ab.WorkflowResult:
    result: ab.WorkflowResult | None = None
    try:
        for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, ab.RunFinished):
                result = event.result
    finally:
        # A Ctrl-C that lands here rather than inside the stream leaves the stream
        # suspended: close it now, which cancels the run, not at interpreter exit.
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if result is None:
        raise ab.WorkflowError(
            "the event stream ended without a RunFinished event, which every run sends "
            "last: this is a bug in agentbridge, please report it"
        )
    return result
