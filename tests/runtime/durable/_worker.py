"""A durable run in a process of its own, for the crash and ownership tests.

``python -m tests.runtime.durable._worker DB LEASE BACKEND`` prints ``ready``, then for
each line ``RUN_ID DIR`` on stdin runs :data:`WORKFLOW` with store ``DB`` and prints
``exit CODE``: 0 the run succeeded, 3 another process owns the run (or took it over),
4 another store error. Ctrl-C exits with 130. Every step appends a line to
``DIR/STEP.log`` (its side effect, counted by the tests); step ``b`` prints ``b
waiting`` and waits until the file ``DIR/gate`` exists. Lines on stdin let several
processes start a run together, and one process run many, without starting again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

import agentbridge as ab

registry = ab.Registry()

WORKFLOW = ab.Workflow.from_dict(
    {
        "name": "crashy",
        "inputs": ["dir"],
        "steps": [
            {"id": "a", "function": "side_effect", "inputs": {"dir": "${inputs.dir}", "me": "a"}},
            {
                "id": "b",
                "function": "gated",
                "inputs": {"dir": "${inputs.dir}", "after": "${steps.a.output}"},
            },
            {
                "id": "c",
                "function": "side_effect",
                "inputs": {"dir": "${inputs.dir}", "me": "c", "after": "${steps.b.output}"},
            },
        ],
    }
)


def _log(directory: str, name: str) -> None:
    context = ab.current_step()
    key = context.idempotency_key if context else "-"
    with (Path(directory) / f"{name}.log").open("a") as log:
        log.write(f"{key}\n")


@registry.function
def side_effect(dir: str, me: str, after: object = None) -> str:
    _log(dir, me)
    return me


@registry.function
async def gated(dir: str, after: object) -> str:
    _log(dir, "b")
    gate = Path(dir) / "gate"
    if not gate.exists():
        print("b waiting", flush=True)
        while not gate.exists():  # the step's own behaviour: wait for the test's signal
            await anyio.sleep(0.01)
    return "b"


def main(db: str, lease: str, backend: str) -> int:
    store = ab.SqliteRunStore(db, lease=float(lease))
    runtime = ab.Runtime(registry, store=store, backend=backend)
    print("ready", flush=True)
    for line in sys.stdin:
        run_id, directory = line.split()
        try:
            runtime.run(WORKFLOW, {"dir": directory}, run_id=run_id)
            code = 0
        except ab.RunOwnershipError as exc:
            print(f"ownership: {exc}", file=sys.stderr, flush=True)
            code = 3
        except ab.StoreError as exc:
            print(f"store: {exc}", file=sys.stderr, flush=True)
            code = 4
        except KeyboardInterrupt:
            return 130
        print(f"exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
