"""Run the agent workflow from a script and print its result as JSON.

From the ``examples/`` directory::

    python -m agent_app.script widget          # the sync API, from the main thread
    python -m agent_app.script widget --trio   # the async API inside trio.run

Inside ``trio.run`` the agent (asyncio-only, like pydantic-ai) runs on the bridge's
asyncio portal of the trio thread, and so does its tool's ``ab.run_sync``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import agentbridge as ab

from .agent import current_loop, registry

WORKFLOW = Path(__file__).with_name("workflow.yaml")


async def run_in_trio(item: str) -> dict[str, Any]:
    """The async API on trio's loop: the result, and the name of that loop."""
    result = await ab.run_workflow_async(WORKFLOW, {"item": item}, registry=registry)
    return {"run_loop": await current_loop(), "result": result.to_dict()}


def main() -> None:
    """Parse the command line, run the workflow, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("item")
    parser.add_argument("--trio", action="store_true", help="run it inside trio.run")
    args = parser.parse_args()
    if args.trio:
        import trio

        report = trio.run(run_in_trio, args.item)
    else:
        result = ab.run_workflow(WORKFLOW, {"item": args.item}, registry=registry)
        # The run used this thread's portal loop; so does this call.
        report = {"run_loop": ab.run_sync(current_loop), "result": result.to_dict()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
