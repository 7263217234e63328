"""Live progress of a run, fed by the runtime's events.

On a terminal it is a view redrawn in place (a rich ``Live``, see ``_board.py``) a
fixed number of times a second, however many events arrive: a redraw per event made a
2,000-step run spend nearly all its time drawing. Anywhere else (a pipe, a CI log)
redrawing would only leave control codes, so each event prints one plain line instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

import agentbridge as ab

from ._board import CHROME, Board
from ._format import count

__all__ = ("REFRESH_PER_SECOND", "follow", "follow_quietly")

#: How many frames a second the live view draws at most.
REFRESH_PER_SECOND = 5.0


def follow(
    console: Console, workflow: ab.Workflow, events: Iterator[ab.Event]
) -> ab.WorkflowResult:
    """Show the progress of the run that ``events`` come from; return its result."""
    board = Board(workflow)
    if not console.is_terminal or console.is_dumb_terminal:
        console.print(Text(f"running {workflow.name} ({count(len(workflow.steps), 'step')})"))

        def log(event: ab.Event) -> None:
            line = board.apply(event)
            if line is not None:
                console.print(Text(line), soft_wrap=True)

        return _consume(events, log)

    def frame() -> RenderableType:
        return board.render(console.height - CHROME)

    # Drawn by Live's own thread at its rate; the events only update the board. Transient:
    # the summary printed next tells the same, finished.
    with Live(
        get_renderable=frame,
        console=console,
        refresh_per_second=REFRESH_PER_SECOND,
        transient=True,
    ) as live:
        live.refresh()  # the first frame at once: every step, pending
        return _consume(events, board.apply)


def follow_quietly(events: Iterator[ab.Event]) -> ab.WorkflowResult:
    """Consume ``events`` silently; return the result the last one carries."""
    return _consume(events, None)


def _consume(
    events: Iterator[ab.Event], on_event: Callable[[ab.Event], object] | None
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
