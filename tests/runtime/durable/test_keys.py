"""Input keys keep their values: a store written by an earlier version keeps resuming.

The values below were computed by the code before the key was made faster (a hash of
the prefix fed once, then copied); a change to how a key is made must keep them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import agentbridge as ab

from .._helpers import build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

#: The input key of each record of the run below, as stored by agentbridge 0.3.
KEYS = {
    "a": "92e14033e0f90643b5d9a3d7f6dce70b12a7b7d6eeac68badf1d1850efe128c1",
    "b": "31969b695ef614bc1831b018b7d3de35d95d37f4740c25d9ddf5f49ae180a042",
    "c": "2326e6556442dff4bc4f55b3341de678ffd6fd626bc65599a79d2ecedb1ffc83",
    "c[0]": "705f9098f418faf82b70cb2fce76777bc35a7ba259219f2cfc334f4398bc8411",
    "c[1]": "92e40a845b702c5834fad6be7c54879a547a31242d258d1f56e336d72434e186",
}


def _workflow() -> ab.Workflow:
    return build(
        {"id": "a", "function": "echo"},
        {
            "id": "b",
            "function": "echo",
            "version": "2",
            "inputs": {"v": {"n": "${steps.a.output}", "s": "é\ud800", "f": 1.5}},
        },
        {
            "id": "c",
            "function": "echo",
            "for_each": "${inputs.items}",
            "inputs": {"v": ["${item}", "${index}", True]},
        },
        inputs=["items"],
        name="keys",
    )


def _stored_keys(db: Path) -> dict[str, str]:
    connection = sqlite3.connect(db)
    try:
        return dict(connection.execute("SELECT step_id, input_key FROM steps").fetchall())
    finally:
        connection.close()


async def test_the_input_keys_keep_the_values_they_had(reg: ab.Registry, db: Path) -> None:
    @reg.function
    async def echo(v: object = None) -> object:
        return v

    store = ab.SqliteRunStore(db)
    try:
        runtime = ab.Runtime(reg, store=store)
        first = await runtime.run_async(_workflow(), {"items": [None, "x"]}, run_id="k")
        assert first.succeeded
        assert _stored_keys(db) == KEYS
        # And a resume computes them again, now: every step is reused.
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE runs SET status = 'failed'")
        connection.close()
        again = await runtime.run_async(_workflow(), {"items": [None, "x"]}, run_id="k")
    finally:
        store.close()
    assert all(step.reused for step in again.steps.values())
    assert again.outputs == first.outputs
