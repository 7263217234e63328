"""The live view, drawn on a terminal console: small runs in full, large ones condensed."""

from __future__ import annotations

import io
import re
import time

import anyio
from rich.console import Console

import agentbridge as ab
from agentbridge.cli._board import CHROME, Board
from agentbridge.cli._progress import REFRESH_PER_SECOND, follow

#: A condensed frame's caption, whose numbers the tests check against the events.
CAPTION = re.compile(
    r"([\d,]+) of ([\d,]+) finished, (?:([\d,]+) succeeded, )?([\d,]+) running"
    r"(?: \(([\d,]+) not shown\))?, ([\d,]+) pending"
)


def _terminal(height: int) -> tuple[Console, io.StringIO]:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=100, height=height)
    return console, output


def _registry() -> ab.Registry:
    registry = ab.Registry()

    @registry.function("step")
    def step(n: int) -> int:
        return n

    return registry


def _gated(total: int) -> ab.Registry:
    """A registry whose ``gate`` steps all wait until ``total`` of them have started."""
    registry = _registry()
    arrived: list[int] = []
    everyone: list[anyio.Event] = []

    @registry.tool("gate")
    async def gate(n: int) -> int:
        if not everyone:
            everyone.append(anyio.Event())
        arrived.append(n)
        if len(arrived) == total:
            everyone[0].set()
        await everyone[0].wait()
        return n

    return registry


def _chain(steps: int) -> ab.Workflow:
    chain = [{"id": "s0", "function": "step", "inputs": {"n": 0}}]
    chain += [
        {"id": f"s{n}", "function": "step", "inputs": {"n": f"${{steps.s{n - 1}.output}}"}}
        for n in range(1, steps)
    ]
    return ab.Workflow.from_dict({"name": "chain", "steps": chain})


def _fan_out(steps: int) -> ab.Workflow:
    fan = [{"id": f"f{n}", "tool": "gate", "inputs": {"n": n}} for n in range(steps)]
    return ab.Workflow.from_dict({"name": "fan", "steps": fan})


def _frame(board: Board, max_rows: int) -> list[str]:
    console, output = _terminal(height=200)
    console.print(board.render(max_rows))
    return output.getvalue().splitlines()


def test_a_small_run_is_drawn_whole_from_pending_to_finished() -> None:
    workflow = _chain(3)
    console, output = _terminal(height=40)
    result = follow(console, workflow, ab.Runtime(_registry()).stream_sync(workflow))
    assert ab.RunStatus(result.status) is ab.RunStatus.SUCCEEDED
    lines = output.getvalue().splitlines()
    # The first frame shows every step waiting, the last every step done: however
    # fast the steps, the frames in between are drawn at the view's rate, not per event.
    for step_id in ("s0", "s1", "s2"):
        assert any(step_id in line and "pending" in line for line in lines)
        assert any(step_id in line and "succeeded" in line for line in lines)


def test_redraws_are_rate_limited_not_one_per_event() -> None:
    workflow = _chain(200)
    console, output = _terminal(height=20)
    began = time.monotonic()
    follow(console, workflow, ab.Runtime(_registry()).stream_sync(workflow))
    elapsed = time.monotonic() - began
    # Every frame has the title once. 400 events would make 400 frames at one per event.
    frames = output.getvalue().count("chain")
    assert 2 <= frames <= elapsed * REFRESH_PER_SECOND + 3


def test_a_large_run_shows_what_runs_and_what_just_finished_with_counts() -> None:
    workflow = _fan_out(60)
    events = list(ab.Runtime(_gated(60)).stream_sync(workflow))
    started = [event.step_id for event in events if isinstance(event, ab.StepStarted)]
    finished = [event.step_id for event in events if isinstance(event, ab.StepFinished)]
    assert len(started) == len(finished) == 60
    # Every step started before any finished; stop after the first 15 finishes.
    cut = next(
        index
        for index, event in enumerate(events)
        if isinstance(event, ab.StepFinished) and event.step_id == finished[14]
    )
    board = Board(workflow)
    for event in events[: cut + 1]:
        board.apply(event)
    running = [step for step in started if step not in finished[:15]]
    assert len(running) == 45

    max_rows = 20
    lines = _frame(board, max_rows)
    assert len(lines) <= max_rows + CHROME
    shown = {word for line in lines for word in re.findall(r"\bf\d+\b", line)}
    # Half the rows for the steps running longest, the rest for the latest finishes.
    assert set(running[:10]) <= shown
    assert set(finished[5:15]) <= shown
    assert not shown & set(finished[:5])
    assert not shown & set(running[10:])
    caption = CAPTION.search(" ".join(lines))
    assert caption is not None, lines
    assert caption.groups() == ("15", "60", "15", "45", "35", "0")


def test_a_large_run_on_a_short_terminal_fits_it() -> None:
    workflow = _chain(40)
    console, output = _terminal(height=16)
    result = follow(console, workflow, ab.Runtime(_registry()).stream_sync(workflow))
    assert ab.RunStatus(result.status) is ab.RunStatus.SUCCEEDED
    text = output.getvalue()
    # The first frame: nothing finished, nothing running yet; the last: all 40 done.
    assert "0 of 40 finished, 0 running, 40 pending" in text
    assert "40 of 40 finished, 40 succeeded, 0 running, 0 pending" in text
    assert "s39" in text
