"""Import benchmarks (issue #7): what ``import agentbridge`` costs next to anyio's own.

Each operation is one fresh interpreter that times a single import statement with
``time.perf_counter`` around it and prints the seconds, so interpreter start-up (and
whatever ``site`` imports) is left out: what is timed is the cost above a bare
interpreter. The baseline is what any bridge on anyio has to import anyway:
``import anyio, anyio.from_thread, anyio.to_thread``. Subjects take turns within every
round, so a busy moment of the machine falls on all of them alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from importlib.util import find_spec
from pathlib import Path

from _harness import Group, MaxRatio, Row, Runner, Subject

__all__ = ("groups",)

#: The target of issue #7: ``import agentbridge`` at most this many times anyio's.
RATIO = 1.5

STATEMENTS = {
    "anyio": "import anyio, anyio.from_thread, anyio.to_thread",
    "ab": "import agentbridge",
    "bridge": "import agentbridge; agentbridge.run_sync",
    "everything": "import agentbridge, yaml; agentbridge.run_workflow",
}

CHILD = """
import time
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""


def _child_env() -> dict[str, str]:
    """Our environment, with the agentbridge this process would import on the path.

    Bytecode caching stays on whatever the environment says: an installed anyio has
    its ``.pyc`` files, and a checkout compiled anew in every child would be timed
    compiling. The discarded warm-up round writes them.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    spec = find_spec("agentbridge")
    if spec is not None and spec.origin is not None:
        checkout = str(Path(spec.origin).parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    return env


@contextmanager
def fresh_import(statement: str, ops: int) -> Iterator[Runner]:
    """Run ``statement`` in ``ops`` fresh interpreters; the runner sums their import times."""
    argv = [sys.executable, "-c", CHILD.format(statement=statement)]
    env = _child_env()

    def run() -> float:
        total = 0.0
        for _ in range(ops):
            done = subprocess.run(
                argv, capture_output=True, text=True, env=env, check=True, timeout=60
            )
            total += float(done.stdout.split()[-1])
        return total

    yield run


def _subject(key: str, label: str) -> Subject:
    return Subject(key, label, partial(fresh_import, STATEMENTS[key]))


def groups() -> list[Group]:
    """The import group."""
    return [
        Group(
            "I1. import cost above a bare interpreter, fresh process each time",
            subjects=[
                _subject("anyio", "anyio + from_thread + to_thread"),
                _subject("ab", "import agentbridge"),
                _subject("bridge", "agentbridge + ab.run_sync"),
                _subject("everything", "agentbridge + runtime + yaml"),
            ],
            rows=[
                Row("ab", "anyio", MaxRatio(RATIO)),
                Row("bridge", "anyio", MaxRatio(RATIO)),
                Row("everything", "anyio"),
            ],
            ops=4,
            quick_ops=2,
            noun="import",
            note=(
                "each import timed inside its own fresh interpreter; touching ab.run_sync "
                "loads the bridge, ab.run_workflow the runtime and the workflow model"
            ),
        )
    ]
