"""The live view of one run: what the events so far say of its steps, drawn on demand.

Events only update counters and a few short collections, so applying one costs the
same at 5 steps as at 5,000; a frame draws at most as many rows as the terminal has.
When every step fits, the frame is a table with a line per step. When they do not, it
shows the steps running now (the longest-running first), then the latest to finish,
and counts every step by status on a line below.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

import agentbridge as ab

from ._errors import describe
from ._format import STATUS_STYLES, duration, status_name

__all__ = ("CHROME", "Board")

#: Lines of a frame that are not step rows: title, borders, header, section, counts.
CHROME = 7
_ACTIVE = frozenset({"running", "retrying"})
#: The order statuses are counted in, in the caption of a condensed frame.
_COUNTED = ("succeeded", "failed", "timed_out", "cancelled", "skipped")


@dataclass
class _Row:
    step_id: str
    kind: str
    status: str = "pending"
    attempt: int = 0
    started_at: float | None = None
    duration: float | None = None
    note: str = ""


class Board:
    """The state of every step of one run, as far as the events so far tell."""

    def __init__(self, workflow: ab.Workflow, *, recent: int = 64) -> None:
        self._title = workflow.name
        self._rows = {step.id: _Row(step.id, step.kind) for step in workflow.steps}
        self._id_width = max((len(step_id) for step_id in self._rows), default=0)
        self._run_started_at = time.monotonic()
        self._counts: Counter[str] = Counter(pending=len(self._rows))
        # In the order they started: the first is the one running longest.
        self._active: dict[str, _Row] = {}
        # The latest to finish, newest last; a frame never shows more than a screenful.
        self._recent: deque[_Row] = deque(maxlen=recent)
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
                row = self._move(event.step_id, event.kind, "running")
                row.attempt, row.note = event.attempt, ""
                if row.started_at is None:
                    row.started_at = event.at
                return self._line(event.at, row, f"attempt {event.attempt}")
            if isinstance(event, ab.StepRetrying):
                row = self._move(event.step_id, event.kind, "retrying")
                row.attempt = event.attempt
                row.note = f"{describe(event.error)}; retry in {duration(event.delay)}"
                return self._line(event.at, row, f"attempt {event.attempt} failed: {row.note}")
            if isinstance(event, ab.StepFinished):
                return self._finish(event)
            return None

    def _finish(self, event: ab.StepFinished) -> str:
        result = event.result
        row = self._move(event.step_id, event.kind, status_name(result.status))
        row.attempt, row.duration = result.attempts, result.duration
        row.note = describe(result.error) if result.error is not None else ""
        self._recent.append(row)
        details = [duration(result.duration) or "not started"]
        if result.attempts > 1:
            details.append(f"{result.attempts} attempts")
        if row.note:
            details.append(row.note)
        return self._line(event.at, row, ", ".join(details))

    def _move(self, step_id: str, kind: str, status: str) -> _Row:
        """Give the step ``status``, keeping the counts and the active steps in step."""
        row = self._rows.get(step_id)
        if row is None:  # a step the workflow did not list: shown all the same
            row = self._rows[step_id] = _Row(step_id, kind)
            self._counts["pending"] += 1
        self._counts[row.status] -= 1
        self._counts[status] += 1
        row.status = status
        if status in _ACTIVE:
            self._active.setdefault(step_id, row)
        else:
            self._active.pop(step_id, None)
        return row

    def _line(self, at: float, row: _Row, details: str) -> str:
        elapsed = at - self._run_started_at
        return f"{elapsed:7.2f}s  {row.step_id:<{self._id_width}}  {row.status:<10} {details}"

    def render(self, max_rows: int) -> RenderableType:
        """A frame of at most ``max_rows`` step rows, with running times as of now."""
        with self._lock:
            max_rows = max(2, max_rows)
            if len(self._rows) <= max_rows:
                return self._table(list(self._rows.values()), [])
            # The running steps take up to half the rows, the latest finishes the rest.
            running = self._first_active(max(1, max_rows // 2))
            recent = self._latest(max_rows - len(running))
            # The counts on a line of their own: a caption would wrap to the table's width.
            return Group(self._table(running, recent), self._counts_line(len(running)))

    def _first_active(self, limit: int) -> list[_Row]:
        rows: list[_Row] = []
        for row in self._active.values():
            if len(rows) == limit:
                break
            rows.append(row)
        return rows

    def _latest(self, limit: int) -> list[_Row]:
        rows: list[_Row] = []
        for row in reversed(self._recent):
            if len(rows) == limit:
                break
            rows.append(row)
        return rows

    def _counts_line(self, shown_active: int) -> Text:
        total = len(self._rows)
        pending = self._counts["pending"]
        active = len(self._active)
        done = total - pending - active
        parts = [f"{done:,} of {total:,} finished"]
        parts += [
            f"{self._counts[status]:,} {status}" for status in _COUNTED if self._counts[status]
        ]
        hidden = f" ({active - shown_active:,} not shown)" if active > shown_active else ""
        parts.append(f"{active:,} running{hidden}")
        parts.append(f"{pending:,} pending")
        return Text(", ".join(parts), style="dim")

    def _table(self, first: list[_Row], second: list[_Row]) -> Table:
        now = time.monotonic()
        notes = any(row.note for row in (*first, *second))
        table = Table(
            title=Text(self._title, style="bold"),
            title_justify="left",
        )
        table.add_column("step")
        table.add_column("kind", style="dim")
        table.add_column("status")
        table.add_column("attempt", justify="right")
        table.add_column("time", justify="right")
        if notes:
            table.add_column("", overflow="fold")
        for row in first:
            self._add_row(table, row, notes, now)
        if first and second:
            table.add_section()
        for row in second:
            self._add_row(table, row, notes, now)
        return table

    def _add_row(self, table: Table, row: _Row, notes: bool, now: float) -> None:
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


def _status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))
