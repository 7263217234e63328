"""What a durable run does fast does what the slow way did: inputs evaluated once,
stored steps reused before the run starts, records made without their ``__init__``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentbridge as ab
from agentbridge.runtime import _json

from .._helpers import build, collect

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Counting(Mapping[str, int]):
    """A mapping (so not JSON: never stored) that counts the reads of its keys."""

    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, key: str) -> int:
        self.reads += 1
        return 7

    def __iter__(self) -> Iterator[str]:
        return iter(["v"])

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "plain"])
@pytest.mark.parametrize("for_each", [False, True], ids=["one", "for_each"])
async def test_a_step_s_inputs_are_evaluated_once_per_attempt(
    reg: ab.Registry, db: Any, durable: bool, for_each: bool
) -> None:
    # The input key of a durable run is made of the inputs evaluated for the call: an
    # output read by an expression is read once per attempt (per item), as without one.
    probe = Counting()
    failures = {"n": 1}

    @reg.function
    async def source() -> Counting:
        return probe

    @reg.function
    def use(v: int, i: int = 0) -> int:
        if failures["n"]:
            failures["n"] -= 1
            raise ConnectionError("once")
        return v + i

    b: dict[str, Any] = {"id": "b", "function": "use", "inputs": {"v": "${steps.a.output.v}"}}
    if for_each:
        b |= {"for_each": "${inputs.items}", "inputs": {**b["inputs"], "i": "${item}"}}
    workflow = build(
        {"id": "a", "function": "source"}, {**b, "retries": 1}, inputs=["items"], name="probe"
    )
    store = ab.SqliteRunStore(db) if durable else None
    try:
        result = await ab.Runtime(reg, store=store).run_async(
            workflow, {"items": [1, 2, 3]}, run_id="once" if durable else None
        )
    finally:
        if store is not None:
            store.close()
    assert result.succeeded
    # Three items and one retry, or one step and one retry.
    assert probe.reads == (4 if for_each else 2)
    assert result.outputs["b"] == ([8, 9, 10] if for_each else 7)


async def test_the_reused_steps_are_reported_first_and_in_order(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    fail = {"d"}

    @reg.function
    async def step(v: int = 0) -> int:
        context = ab.current_step()
        assert context is not None
        if context.step_id in fail:
            raise RuntimeError("not yet")
        return v + 1

    # Listed out of order: d, b need c, a; the reuse walks the graph, not the list.
    workflow = build(
        {"id": "d", "function": "step", "inputs": {"v": "${steps.c.output}"}},
        {"id": "b", "function": "step", "inputs": {"v": "${steps.a.output}"}},
        {"id": "c", "function": "step", "inputs": {"v": "${steps.b.output}"}},
        {"id": "a", "function": "step"},
        name="ordered",
    )
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, run_id="o")
    fail.clear()
    events = await collect(runtime.stream(workflow, run_id="o"))
    names = [
        (type(event).__name__, getattr(event, "step_id", None))
        for event in events
        if not isinstance(event, ab.RunFinished)
    ]
    assert names == [
        ("RunStarted", None),
        ("StepFinished", "a"),
        ("StepFinished", "b"),
        ("StepFinished", "c"),
        ("StepStarted", "d"),
        ("StepFinished", "d"),
    ]
    result = events[-1].result  # type: ignore[attr-defined]
    assert {k: s.reused for k, s in result.steps.items()} == {
        "d": False,
        "b": True,
        "c": True,
        "a": True,
    }
    assert result.outputs["d"] == 4


async def test_records_made_fast_equal_records_made_by_their_init(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    @reg.function
    async def give(v: int = 0) -> dict[str, int]:
        return {"v": v + 1}

    workflow = build({"id": "a", "function": "give"}, {"id": "b", "function": "give"})
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, run_id="r")
    stored = await store.get_run("r")
    assert stored is not None
    resumed = await runtime.run_async(workflow, run_id="r")  # finished: every step reused
    records: list[Any] = [*stored.steps.values(), *resumed.steps.values()]
    assert len(records) == 4
    for record in records:
        # replace() builds a new record through __init__, from every field.
        again = dataclasses.replace(record)
        assert again == record
        assert repr(again) == repr(record)
        assert vars(again) == vars(record)
    assert [step.output for step in resumed.steps.values()] == [{"v": 1}, {"v": 1}]


FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(JSON)
def test_the_store_s_json_is_json_dumps_s(value: Any) -> None:
    assert _json.dump(value) == json.dumps(value)
    assert _json.load(_json.dump(value)) == value
