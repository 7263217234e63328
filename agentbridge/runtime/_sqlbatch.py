"""One batch of writes to the SQLite store, folded into as few rows as it can be.

A batch usually holds a step's start and its end: folded, that is one attempt row
inserted already ended and one step row, instead of an insert and three updates. The
rows then go in with one ``executemany`` per statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._store import AttemptEnded, AttemptStarted, RunEnded, StepEnded, Write

if TYPE_CHECKING:
    import sqlite3

__all__ = ("apply_batch",)

_INSERT_ATTEMPT = (
    "INSERT INTO attempts (run_id, step_id, attempt, owner, status, started_at, duration, "
    "error_type, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CLOSE_ATTEMPT = (
    "UPDATE attempts SET status = ?, duration = ? - started_at, error_type = ?, "
    "error_message = ? WHERE run_id = ? AND step_id = ? AND owner = ? AND status = 'running'"
)
_UPSERT_STEP = (
    "INSERT INTO steps (run_id, step_id, kind, status, attempts, output, input_key, "
    "not_stored, started_at, duration, error_type, error_message) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, step_id) DO UPDATE SET kind = excluded.kind, "
    "status = excluded.status, attempts = excluded.attempts, "
    "started_at = excluded.started_at, duration = excluded.duration, "
    "error_type = excluded.error_type, error_message = excluded.error_message, "
    "output = excluded.output, input_key = excluded.input_key, "
    "not_stored = excluded.not_stored"
)
_END_RUN = (
    "UPDATE runs SET status = ?, duration = ?, error_type = ?, error_message = ?, "
    "outputs = ?, updated_at = ?, owner = NULL, lease_until = NULL WHERE run_id = ?"
)


def apply_batch(
    connection: sqlite3.Connection, run_id: str, owner: str, now: float, writes: list[Write]
) -> None:
    """Apply ``writes``, in their order's meaning, inside the caller's transaction."""
    # Attempts started in this batch, as rows still open for their end: by step id.
    open_rows: dict[str, list[Any]] = {}
    inserts: list[list[Any]] = []
    closes: list[tuple[Any, ...]] = []
    steps: dict[str, tuple[Any, ...]] = {}
    ended: RunEnded | None = None

    def close(step_id: str, status: str, at: float, error: str | None, text: str | None) -> None:
        row = open_rows.pop(step_id, None)
        if row is None:  # started in an earlier batch: its row is in the table
            closes.append((status, at, error, text, run_id, step_id, owner))
        else:
            row[4:] = [status, row[5], at - row[5], error, text]

    for item in writes:
        if isinstance(item, StepEnded):  # the most common: first
            step_id, _, status, _, _, _, _, started_at, duration, error_type, text = item
            close(step_id, status, (started_at or now) + (duration or 0.0), error_type, text)
            steps[step_id] = (run_id, *item)
        elif isinstance(item, AttemptStarted):
            step_id, step_kind, attempt, started_at = item
            row = [run_id, step_id, attempt, owner, "running", started_at, None, None, None]
            open_rows[step_id] = row
            inserts.append(row)
            steps[step_id] = (run_id, step_id, step_kind, "running", attempt)
            steps[step_id] += (None, None, None, started_at, None, None, None)
        elif isinstance(item, AttemptEnded):
            close(*item)
        else:
            ended = item
    # Closes first: they end attempts of earlier batches, never the ones inserted now.
    connection.executemany(_CLOSE_ATTEMPT, closes)
    connection.executemany(_INSERT_ATTEMPT, inserts)
    connection.executemany(_UPSERT_STEP, steps.values())
    if ended is not None:
        connection.execute(_END_RUN, (*ended, now, run_id))
