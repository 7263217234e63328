"""Scripts (``examples/script.py``): Ctrl-C cancels the running steps; exit is always clean."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ._harness import Spawner

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(60)]


@pytest.mark.parametrize("flags", [[], ["-X", "dev"]], ids=["default", "dev-mode"])
def test_exit_with_portals_open_is_clean(spawn: Spawner, flags: list[str]) -> None:
    """Portals of the main thread (asyncio and trio), a thread pool and a parked daemon
    thread are all still open when the script ends: no hang, no output on stderr."""
    script = spawn(["python", *flags, "script.py"])
    assert script.wait_exit() == 0, script.report()
    assert script.stdout.splitlines() == [
        "main thread, asyncio portal: 2",
        "main thread, trio portal: 4",
        "thread pool: [6, 8, 10, 12, 14, 16]",
        "open portals at exit: 5",
    ]
    assert script.stderr == "", script.report()


def test_sigint_cancels_the_running_steps(spawn: Spawner, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    script = spawn(["python", "script.py", "--hold", str(markers)])
    script.wait_output("left started")
    script.wait_output("right started")
    script.send(signal.SIGINT, group=True)  # what Ctrl-C in a terminal does
    assert script.wait_exit() == 130, script.report()
    # Both steps were cancelled and their finally blocks ran before the script exited.
    assert sorted(path.name for path in markers.iterdir()) == [
        "left.cancelled",
        "right.cancelled",
    ]
    assert script.stderr == "interrupted: the running steps were cancelled\n", script.report()
