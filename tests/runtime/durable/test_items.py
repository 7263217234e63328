"""A durable ``for_each`` step resumes item by item: the items that succeeded are
reused, only the failed, cancelled, unfinished or changed ones run again."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentbridge as ab

from .._helpers import build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Items:
    """``src`` returns :attr:`value` (never stored: ``persist: false``, so a resume
    sees a new list), and ``work`` is called once per item, counted by item.

    An item in :attr:`fail` fails once :attr:`before_failing` other items have
    succeeded (so they are all done, and stored, when it fails); an item in
    :attr:`block` waits until it is cancelled.
    """

    def __init__(self, reg: ab.Registry) -> None:
        self.value: list[int] = [1, 2, 3, 4, 5]
        self.calls: Counter[int] = Counter()
        self.fail: set[int] = set()
        self.block: set[int] = set()
        self.before_failing = 0
        self.as_tuple = False
        self._succeeded = 0
        self._enough: anyio.Event | None = None
        self._blocked: anyio.Event | None = None

        @reg.function
        async def src() -> list[int]:
            # Made here, on the run's loop (a fixture runs on none).
            self._succeeded, self._enough, self._blocked = 0, anyio.Event(), anyio.Event()
            return self.value

        @reg.function
        async def work(v: int) -> Any:
            assert self._enough is not None
            assert self._blocked is not None
            self.calls[v] += 1
            if v in self.block:
                self._blocked.set()
                await anyio.sleep_forever()
            if v in self.fail:
                if self.block:
                    await self._blocked.wait()  # the blocked item is running
                if self.before_failing:
                    await self._enough.wait()
                raise RuntimeError(f"item {v} fails")
            self._succeeded += 1
            if self._succeeded == self.before_failing:
                self._enough.set()
            return (v * 10,) if self.as_tuple else v * 10

    def heal(self) -> None:
        """The next run's items all succeed at once."""
        self.fail, self.block, self.before_failing = set(), set(), 0


@pytest.fixture
def items(reg: ab.Registry) -> Items:
    return Items(reg)


def fan(**b: Any) -> ab.Workflow:
    """a (src, not stored) -> b (work for each item of a's output)."""
    return build(
        {"id": "a", "function": "src", "persist": False},
        {
            "id": "b",
            "function": "work",
            "for_each": "${steps.a.output}",
            "inputs": {"v": "${item}"},
            **b,
        },
        name="fan",
    )


def item_rows(db: Path) -> dict[str, str]:
    """The stored item records of the run: id -> output (JSON)."""
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute(
            "SELECT step_id, output FROM steps WHERE instr(step_id, '[') ORDER BY step_id"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


async def test_a_resume_runs_only_the_item_that_failed_and_then_reuses_the_whole_step(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, items: Items
) -> None:
    runtime = ab.Runtime(reg, store=store)
    items.fail, items.before_failing = {3}, 4
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(fan(), run_id="r")
    assert items.calls == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})
    assert item_rows(db) == {"b[0]": "10", "b[1]": "20", "b[3]": "40", "b[4]": "50"}

    items.heal()
    resumed = await runtime.run_async(fan(), run_id="r")
    assert resumed.outputs["b"] == [10, 20, 30, 40, 50]
    assert items.calls == Counter({1: 1, 2: 1, 3: 2, 4: 1, 5: 1})
    step = resumed.steps["b"]
    # The step ran (one item of it): not reused; its attempts are this execution's.
    assert (step.reused, step.attempts, step.status) == (False, 1, ab.StepStatus.SUCCEEDED)

    # The step's own record is written too: the next resume reuses it whole.
    items.value = [1, 2, 3, 4, 5]
    again = await runtime.run_async(fan(), run_id="r")
    assert again.steps["b"].reused
    assert again.outputs["b"] == [10, 20, 30, 40, 50]
    assert items.calls == Counter({1: 1, 2: 1, 3: 2, 4: 1, 5: 1})


async def test_changed_items_run_again_and_unchanged_ones_are_reused(
    reg: ab.Registry, store: ab.SqliteRunStore, items: Items
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(fan(), run_id="c")
    # a is not stored: it runs again and returns a list with item 2 changed, so b's
    # key as a whole differs, and each item is looked up on its own.
    items.value = [1, 2, 33, 4, 5]
    result = await runtime.run_async(fan(), run_id="c")
    assert result.outputs["b"] == [10, 20, 330, 40, 50]
    assert items.calls == Counter({1: 1, 2: 1, 3: 1, 33: 1, 4: 1, 5: 1})
    # A version is part of every item's key: all run again.
    await runtime.run_async(fan(version="2"), run_id="c")
    assert items.calls == Counter({1: 2, 2: 2, 3: 1, 33: 2, 4: 2, 5: 2})


async def test_an_item_is_reused_by_its_index_and_its_inputs(
    reg: ab.Registry, store: ab.SqliteRunStore, items: Items
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(fan(), run_id="o")
    items.value = [5, 4, 3, 2, 1, 6]
    result = await runtime.run_async(fan(), run_id="o")
    assert result.outputs["b"] == [50, 40, 30, 20, 10, 60]
    # Only item 2 has the same inputs at the same index; a moved item runs again.
    assert items.calls == Counter({1: 2, 2: 2, 3: 1, 4: 2, 5: 2, 6: 1})


@pytest.mark.parametrize("why", ["persist: false", "not JSON"])
async def test_items_whose_output_is_not_stored_all_run_again(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, items: Items, why: str
) -> None:
    runtime = ab.Runtime(reg, store=store)
    workflow = fan(persist=False) if why == "persist: false" else fan()
    items.as_tuple = why == "not JSON"
    items.fail, items.before_failing = {3}, 4
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, run_id="p")
    assert item_rows(db) == {}
    items.heal()
    result = await runtime.run_async(workflow, run_id="p")
    assert result.succeeded
    assert items.calls == Counter({1: 2, 2: 2, 3: 2, 4: 2, 5: 2})


async def test_an_item_cancelled_by_another_s_failure_is_not_stored(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, items: Items
) -> None:
    runtime = ab.Runtime(reg, store=store)
    items.value = [1, 2, 3]
    # Item 3 succeeds first; item 1 fails while item 2 runs, which is cancelled.
    items.fail, items.block, items.before_failing = {1}, {2}, 1
    with pytest.raises(ab.StepFailedError) as raised:
        await runtime.run_async(fan(), run_id="x")
    assert raised.value.result.steps["b"].item == 0
    assert item_rows(db) == {"b[2]": "30"}
    items.heal()
    result = await runtime.run_async(fan(), run_id="x")
    assert result.outputs["b"] == [10, 20, 30]
    assert items.calls == Counter({1: 2, 2: 2, 3: 1})


async def test_the_stored_run_lists_its_steps_not_its_items(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, items: Items
) -> None:
    items.fail, items.before_failing = {3}, 4
    with pytest.raises(ab.StepFailedError):
        await ab.Runtime(reg, store=store).run_async(fan(), run_id="s")
    assert len(item_rows(db)) == 4
    stored = await store.get_run("s")
    assert stored is not None
    assert [(s.step_id, s.status) for s in stored.steps.values()] == [
        ("a", "succeeded"),
        ("b", "failed"),
    ]
    assert {attempt.step_id for attempt in await store.history("s")} == {"a", "b"}
