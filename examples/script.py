"""A plain script: the sync API from the main thread, a thread pool and a background thread.

Run it with ``python script.py``. Nothing here closes a portal: each thread's portal is
opened on its first call, reused after that, and closed for you when the thread ends or
the interpreter exits, without a hang or a warning (also under ``python -X dev``).

``python script.py --hold DIR`` runs a workflow whose two parallel steps wait forever,
to show Ctrl-C: the bridge cancels the running steps (each writes ``DIR/<step>.cancelled``
in its ``finally`` block), waits for their cleanup, then raises ``KeyboardInterrupt`` in
the main thread. This script catches it, says so on stderr, and exits with status 130,
the shell's convention for "stopped by SIGINT".
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
from host_steps import PROBE, registry

import agentbridge as ab

HOLD = ab.Workflow.from_dict(
    {
        "name": "hold",
        "inputs": ["markers"],
        "steps": [
            {
                "id": "left",
                "agent": "hold_step",
                "inputs": {"name": "left", "markers": "${inputs.markers}"},
            },
            {
                "id": "right",
                "agent": "hold_step",
                "inputs": {"name": "right", "markers": "${inputs.markers}"},
            },
        ],
    }
)


@registry.agent("hold_step")
async def hold_step(name: str, markers: str) -> None:
    """Wait forever; on cancellation, leave ``<markers>/<name>.cancelled`` behind."""
    print(f"{name} started", flush=True)
    try:
        await anyio.sleep_forever()
    finally:
        Path(markers, f"{name}.cancelled").touch()


def probe(n: int, backend: str | None = None) -> int:
    """Run the ``probe`` workflow with the sync API; return its doubled input."""
    result = ab.run_workflow(PROBE, {"n": n}, registry=registry, backend=backend)
    return int(result.outputs["offload"]["doubled"])


def background(ready: threading.Event) -> None:
    """A long-lived daemon thread: one call, then idle until the interpreter exits."""
    probe(10)
    ready.set()
    threading.Event().wait()


def demo() -> None:
    """Call the sync API from everywhere a script might; leave every portal open."""
    print("main thread, asyncio portal:", probe(1))
    print("main thread, trio portal:", probe(2, backend="trio"))
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool")
    print("thread pool:", sorted(pool.map(probe, range(3, 9))))
    ready = threading.Event()
    threading.Thread(target=background, args=(ready,), daemon=True).start()
    ready.wait()
    print("open portals at exit:", ab.get_portal_manager().open_portals)


def main() -> int:
    """Run the demo, or with ``--hold DIR`` the workflow that waits for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", metavar="DIR", help="run a workflow that waits for Ctrl-C")
    args = parser.parse_args()
    if args.hold is None:
        demo()
        return 0
    try:
        ab.run_workflow(HOLD, {"markers": args.hold}, registry=registry)
    except KeyboardInterrupt:
        print("interrupted: the running steps were cancelled", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
