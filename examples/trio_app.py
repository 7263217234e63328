"""trio: every entry point of agentbridge from inside ``trio.run``.

Run it with ``python trio_app.py``; it prints a JSON report of where each step ran:

* ``async_api``: ``await run_workflow_async`` runs the async steps on this trio loop and
  the blocking steps in trio worker threads (whose ``run_sync`` comes back to this loop).
* ``sync_api_asyncio_portal`` / ``sync_api_trio_portal``: the sync ``run_workflow``
  called from the trio thread itself. It blocks this loop for the call (avoid it in real
  code), and runs the workflow on a portal loop of the chosen backend in another thread.
* ``sync_api_in_worker``: the sync API from ``trio.to_thread.run_sync``, which goes back
  to this trio loop: no new loop, no new thread.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import trio
from host_steps import PROBE, loop_identity, registry

import agentbridge as ab


def run_blocking(n: int) -> dict[str, Any]:
    """Blocking code, as a library would have it, calling the sync API."""
    outputs = ab.run_workflow(PROBE, {"n": n}, registry=registry).outputs
    return {"caller_thread": threading.current_thread().name, **outputs}


async def main() -> dict[str, Any]:
    """Run the workflow every way there is from trio; return where each step ran."""
    report: dict[str, Any] = {"host_loop": loop_identity()}
    result = await ab.run_workflow_async(PROBE, {"n": 1}, registry=registry)
    report["async_api"] = result.outputs
    for backend in ("asyncio", "trio"):
        result = ab.run_workflow(PROBE, {"n": 2}, registry=registry, backend=backend)
        report[f"sync_api_{backend}_portal"] = result.outputs
    report["sync_api_in_worker"] = await trio.to_thread.run_sync(run_blocking, 3)
    return report


if __name__ == "__main__":
    print(json.dumps(trio.run(main), indent=2))
